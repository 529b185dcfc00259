"""Every failure of the node programs prints a code the catalogue explains.

Read from the source (AST), so a new ``raise ApplyError("...")`` without ``code=`` fails
here before it ships: each ``ApplyError`` (or subclass) built in generator/node passes
``code=`` one of :data:`generator.node.codes.ALL`, as a string literal (a named constant
would cost the shipped program bytes: issue 15), or is of a subclass whose class sets
``code``; and each code is explained by ``regauth doctor --error`` from the catalogue.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from generator import messages
from generator.doctor.errors_explain import explain
from generator.node import codes
from generator.node.errors import ApplyError, failure_line
from tests.conftest import ROOT

NODE = ROOT / "generator" / "node"
SOURCES = sorted(p for p in NODE.glob("*.py") if p.name != "codes.py")


def _error_classes() -> dict[str, str | None]:
    """ApplyError and its subclasses in generator/node -> the code their class sets (None: none)."""
    classes: dict[str, str | None] = {"ApplyError": None}
    grew = True
    while grew:
        grew = False
        for path in SOURCES:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and node.name not in classes and any(isinstance(b, ast.Name) and b.id in classes for b in node.bases):
                    own = [s.value.value for s in node.body if isinstance(s, ast.Assign) and [getattr(t, "id", "") for t in s.targets] == ["code"] and isinstance(s.value, ast.Constant)]
                    base = next(b.id for b in node.bases if isinstance(b, ast.Name) and b.id in classes)
                    classes[node.name] = own[0] if own else classes[base]
                    grew = True
    return classes


def _literals(node: ast.expr) -> list[object]:
    """The values a ``code=`` argument can take: string literals, either side of an ``a if c else b``."""
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    return [node.value] if isinstance(node, ast.Constant) else [ast.dump(node)]


def _sites() -> list[tuple[str, list[object]]]:
    """(file:line, the codes it can carry) of every ApplyError-family object the node programs build."""
    classes = _error_classes()
    out = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes:
                given = [k.value for k in node.keywords if k.arg == "code"]
                found = _literals(given[0]) if given else [classes[node.func.id]]
                out.append((f"{path.name}:{node.lineno}", found))
    return out


def test_every_apply_error_carries_a_known_code() -> None:
    sites = _sites()
    assert len(sites) > 90  # the walk really sees the raise sites
    wrong = [(where, found) for where, found in sites if not all(code in codes.ALL for code in found)]
    assert not wrong, f"ApplyError without a code from generator/node/codes.py: {wrong}"


def test_the_subclasses_set_their_code() -> None:
    classes = _error_classes()
    assert {"ApplyError", "FetchFailure", "PlanError"} <= set(classes)
    assert classes["FetchFailure"] == codes.FETCH_REFUSED and classes["PlanError"] == codes.PLAN_INVALID
    assert all(code in codes.ALL for name, code in classes.items() if name != "ApplyError")


def test_every_code_is_used() -> None:
    used = {code for _, found in _sites() for code in found} | set(_error_classes().values())
    main = (NODE / "main.py").read_text(encoding="utf-8")
    unused = [code for code in codes.ALL if code not in used and f'"{code}"' not in main]
    assert not unused, unused


@pytest.mark.parametrize("code", codes.ALL)
def test_doctor_error_explains_every_node_code(code: str) -> None:
    messages.load()
    assert messages.CATALOGUE[code].kind == "node"
    for program in ("regauth-apply", "regauth-credential-provider"):
        line = f"Nov 30 cloud-init[812]: {program}: {failure_line('/etc/x: something', code)}"
        found = [e for e in explain(line).explanations if e.code == code]
        assert found and "/etc/x: something" in found[0].title and found[0].checks, (program, code)


def test_a_subclass_keeps_its_code_and_a_site_can_name_another() -> None:
    from generator.node.errors import FetchFailure
    from generator.node.plan import PlanError

    assert FetchFailure("x").code == codes.FETCH_REFUSED and PlanError("x").code == codes.PLAN_INVALID
    assert FetchFailure("x", code=codes.SECRET_PAYLOAD).code == codes.SECRET_PAYLOAD
    assert ApplyError("x").code is None  # what test_every_apply_error_carries_a_known_code rules out in the source


def test_a_plan_this_program_cannot_read_is_a_coded_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from generator.node.main import main

    plan = tmp_path / "plan.json"
    plan.write_text('{"format": 999, "steps": []}')
    assert main(["--plan", str(plan), "--root", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"regauth-apply: FAILED [node-plan-invalid] {plan}: plan format 999 is not ") and line.endswith("; re-render with a matching regauth")


def test_a_missing_or_broken_plan_is_a_coded_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from generator.node.main import main

    plan = tmp_path / "plan.json"
    assert main(["--plan", str(plan), "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"regauth-apply: FAILED [node-plan-invalid] cannot read plan {plan}: FileNotFoundError"]
    plan.write_text('{"format": ')
    assert main(["--plan", str(plan), "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"regauth-apply: FAILED [node-plan-invalid] cannot read plan {plan}: JSONDecodeError"]


def test_a_program_built_for_another_plan_is_a_coded_line(tmp_path: Path) -> None:
    """The shipped containerd-only program given a docker node's plan: it lacks the module."""
    import subprocess
    import sys

    from generator import applyscript
    from tests.conftest import run_cli, write_profile

    profile = write_profile(tmp_path, """
        version: 1
        targets: {docker: {}}
        secrets: {robot: {source: env, var: ROBOT_PASSWORD}}
        registries:
          - {host: registry.example.com, auth: {type: basic, username: robot, secret: robot}}
        """, name="docker")
    assert run_cli("render", str(profile), "-o", str(tmp_path / "out"), env={"ROBOT_PASSWORD": "made-up-here"}).code == 0
    program = tmp_path / "regauth-apply"
    program.write_bytes(applyscript.script_for_plan([{"kind": "containerd", "registries": [{"host": "h", "password": "p"}]}]))
    plan = tmp_path / "out/docker/rootfs" / applyscript.PLAN_PATH.lstrip("/")
    run = subprocess.run([sys.executable, str(program), "--plan", str(plan), "--root", str(tmp_path / "root")], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith("regauth-apply: FAILED [node-plan-invalid] this regauth-apply was built for another plan (it lacks "), line
