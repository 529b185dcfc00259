"""The one catalogue of messages (generator/messages): codes are unique and stable, every
template fills, the README's list is generated from it, and a pasted node failure line
is explained by its code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from generator import messages
from generator.doctor.errors_explain import explain
from generator.doctor.findings import CODES, Unreadable
from generator.errors import Problem
from generator.messages.__main__ import with_table
from generator.node import codes as node_codes
from generator.node.errors import ApplyError, failure_line
from tests.conftest import ROOT


def test_readme_lists_every_problem_from_the_catalogue() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == with_table(readme), "README out of date: python -m generator.messages --write README.md"
    messages.load()
    for code in messages.CATALOGUE:
        assert f"| `{code}` |" in readme, code


def test_codes_are_kebab_case_and_every_template_fills() -> None:
    messages.load()
    assert len(messages.CATALOGUE) > 150
    for code, msg in messages.CATALOGUE.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code), code
        text, fix = msg.format(**{f: 7 if f in ("char", "mode") else f"<{f}>" for f in msg.fields()})
        if msg.kind == "input":  # the two pasted-key entries get their fix from Problem (errors.KEY_FIX)
            assert text and (fix or code in ("key-pasted", "username-is-key")), f"{code}: bad input says what is wrong and how to fix it"


def test_doctor_and_node_codes_are_catalogue_entries() -> None:
    assert set(CODES) == set(messages.codes("finding"))
    assert "host-key" in CODES and "provider-binary" in CODES  # codes are a contract: never renamed
    from generator.messages.node import NOT_FROM_THE_PROGRAM

    assert set(node_codes.ALL) | set(NOT_FROM_THE_PROGRAM) == set(messages.codes("node"))
    assert Unreadable("x", "missing").as_dict()["code"] == "doctor-unreadable"  # doctor --json: every item has a code
    for rule in ("oauth-token-rejected", "anonymous-token", "backoff"):
        assert messages.lookup(rule).kind == "pasted"


def test_problem_carries_its_code_into_text_and_json() -> None:
    from generator.messages import inputs as M

    p = M.UNKNOWN_KEY.problem("p.yaml", "registries[0].hots", 3, 5, key="hots", hint="did you mean 'host'?")
    assert p.render() == "p.yaml:3:5: error: [unknown-key] registries[0].hots: unknown key 'hots'\n  fix: did you mean 'host'?"
    assert p.as_dict()["code"] == "unknown-key"
    assert Problem("f", "m", "x").render() == "f: error: m\n  fix: x"  # no code: as before


def test_a_runtime_failure_shows_its_code() -> None:
    from generator.errors import RuntimeFailure
    from generator.messages import runtime as R

    failure = RuntimeFailure("cannot create output folder /x: Permission denied", "choose a writable folder with -o DIR", code=R.OUTPUT_FOLDER.code)
    assert failure.render().startswith("error: [output-folder] cannot create output folder /x")
    assert RuntimeFailure("c").render() == "error: c"


def test_a_pasted_key_is_hidden_in_a_catalogue_problem(sa_key: dict) -> None:
    from generator.messages import inputs as M

    pasted = sa_key["private_key"]
    p = M.KEY_AS_USERNAME.problem("p.yaml", "registries[0].auth.username", username=pasted)
    assert "PRIVATE KEY" not in p.render() and p.code == "username-is-key"


def test_node_failure_lines_carry_a_code_and_doctor_explains_them() -> None:
    assert str(ApplyError("plain", code=node_codes.LOCKED)) == "plain"
    exc = ApplyError("/etc/containerd/config.toml:3:1: config is not valid TOML (bad key); fix the file, then rerun", code=node_codes.CONFIG_SYNTAX)
    line = "regauth-apply: " + failure_line(str(exc), exc.code)
    assert line.startswith("regauth-apply: FAILED [node-config-syntax] /etc/containerd")
    reading = explain("Nov 30 cloud-init[812]: " + line)
    (first,) = [e for e in reading.explanations if e.code == "node-config-syntax"]
    assert "does not parse" in first.title and "config.toml:3:1" in first.title and first.checks
    assert not [e for e in explain("regauth-apply: FAILED [no-such-code] x").explanations if e.code == "no-such-code"]


def test_doctor_error_cli_explains_a_node_line_by_code(tmp_path: Path) -> None:
    line = f"regauth-apply: {failure_line('config written but `systemctl restart containerd` failed: exit 1', node_codes.RESTART_FAILED)}"
    proc = subprocess.run([sys.executable, "-m", "generator", "doctor", "--error", line, "--json"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    doc = json.loads(proc.stdout)
    codes = [e["code"] for e in doc["error"]["explanations"]]
    assert codes[0] == "node-restart-failed", proc.stdout + proc.stderr


def test_node_program_prints_the_code_of_a_coded_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from generator.node.main import failed

    assert failed(ApplyError("boom", code=node_codes.SELF_CHECK), "; nothing was changed") == 1
    assert "regauth-apply: FAILED [node-self-check] boom; nothing was changed" in capsys.readouterr().err
    assert failed(OSError(28, "No space left on device", "/etc/x"), " while writing", node_codes.WRITE_FAILED) == 1
    assert "FAILED [node-write-failed] No space left on device on /etc/x while writing" in capsys.readouterr().err
