"""Packaging metadata (issue 17, item 14): the license ships and is declared as SPDX,
the build prints no setuptools warning, and every library regauth imports is declared."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from generator.tomlcompat import tomllib

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"yaml": "pyyaml", "google": "google-auth", "google_crc32c": "google-crc32c", "grpc": "grpcio"}


def _declared() -> set[str]:
    names = set()
    for requirement in PYPROJECT["project"]["dependencies"]:
        names.add(requirement.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower())
    return names


def _imported_top_level(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_every_library_imported_directly_is_declared() -> None:
    stdlib = set(sys.stdlib_module_names)
    third_party = {m for m in _imported_top_level(ROOT / "generator") if m not in stdlib and m != "generator"}
    third_party.discard("tomli")  # declared with a marker (Python < 3.11 only)
    third_party.discard("tomllib")  # the standard library from 3.11 (on 3.10 sys.stdlib_module_names lacks it)
    assert "requests" in third_party  # what this test is about: a direct import, not only a transitive one
    missing = {DISTRIBUTIONS.get(m, m) for m in third_party} - _declared()
    assert not missing, f"imported but not in [project].dependencies: {sorted(missing)}"


def test_license_is_spdx_and_ships_with_no_setuptools_warning(tmp_path: Path) -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in PYPROJECT["build-system"]["requires"])
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"] and "END OF TERMS AND CONDITIONS" in text
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for name in ("generator", "templates"):  # templates/ may move into generator/ (the node program)
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import setuptools.build_meta as b; print(b.build_wheel('dist'))"],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    output = build.stdout + build.stderr
    assert "Warning" not in output and "deprecated" not in output, output
    with zipfile.ZipFile(source / "dist" / build.stdout.strip().splitlines()[-1]) as wheel:
        metadata = wheel.read("regauth-0.1.0.dist-info/METADATA").decode()
        shipped = wheel.read("regauth-0.1.0.dist-info/licenses/LICENSE").decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    assert any(line.startswith("Requires-Dist: requests") for line in metadata.splitlines())
    assert shipped == text
