"""Layers only look down (issue 18): the import graph between generator/ subpackages, read
with ast by scripts/import_graph.py (lazy imports inside functions count too)."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(import_graph)  # type: ignore[union-attr]


def test_no_two_subpackages_import_each_other() -> None:
    arrows = import_graph.graph()
    assert len(arrows) > 20  # the script sees the package
    cycles = sorted((a, b) for a, b in arrows if (b, a) in arrows)
    assert not cycles, cycles


def test_lower_layers_do_not_reach_up_or_sideways() -> None:
    arrows = import_graph.graph()
    forbidden = {
        "core": {"profile", "secrets", "targets", "doctor", "verify", "outputs", "render", "errors", "messages"},
        "messages": {"profile", "secrets", "targets", "doctor", "verify", "outputs", "render", "core"},
        "profile": {"targets", "secrets", "outputs", "render", "doctor", "verify"},
        "verify": {"doctor"},
        "doctor": {"profile", "profiles", "verify", "render", "outputs"},  # it reads nodes' files, not profiles
        "yamlpos": {"core", "profile", "profiles", "secrets", "targets", "doctor", "verify", "outputs", "render"},  # profile and doctor share it
        "secrets": {"targets", "outputs", "render", "doctor"},
    }
    wrong = sorted((a, b) for a, b in arrows if b in forbidden.get(a, ()))
    assert not wrong, wrong
    assert ("profile", "core") in arrows and ("doctor", "core") in arrows and ("verify", "core") in arrows
    assert ("doctor", "yamlpos") in arrows and ("profile", "yamlpos") in arrows


def test_doctor_reads_toml_only_with_the_node_reader() -> None:
    """Issue 15: doctor judges containerd configs with generator/node's reader (containerd
    1.x and 2.x read header escapes differently; tomllib knows only TOML 1.0), so no
    module under generator/doctor may import another TOML parser, lazily or not."""
    import ast

    other = {"tomllib", "tomli", "tomlkit", "toml", "generator.tomlcompat"}
    wrong = []
    for path in sorted((ROOT / "generator" / "doctor").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            wrong += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in other or n in other]
    assert not wrong, wrong
