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
