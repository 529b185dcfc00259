"""Issue 17 item 10: the generator runs on every Python it declares (3.10-3.13).

The unit suite itself runs again under 3.10 and 3.13 (scripts/test.sh); these tests
guard what made 3.10 crash (``import tomllib``) and the interpreter guard's view of
the per-Python venvs.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PY310 = Path("/root/.pyenv/versions/3.10.13/bin/python3")


def test_only_tomlcompat_imports_tomllib() -> None:
    offenders = []
    # The tests too: the fast suite runs again on 3.10 (scripts/test.sh), and a test
    # module that imports tomllib fails to even collect there.
    for path in sorted(p for top in ("generator", "tests", "testbed", "bench") for p in (ROOT / top).rglob("*.py")):
        if path.name == "tomlcompat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module] if isinstance(node, ast.ImportFrom) else []
            if any(n in ("tomllib", "tomli") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"import tomllib through generator.tomlcompat (3.10 has no tomllib): {offenders}"


@pytest.mark.skipif(not PY310.exists(), reason="pyenv's Python 3.10.13 is not on this machine")
def test_tomlcompat_takes_tomli_on_3_10(tmp_path: Path) -> None:
    """A real 3.10 interpreter: tomllib does not exist there, and the backport is used."""
    (tmp_path / "tomli.py").write_text("MARK = 'backport'\n")  # stands in for the declared tomli dependency
    code = "import generator.tomlcompat as c; print(c.tomllib.MARK)"
    proc = subprocess.run([str(PY310), "-c", code], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
                          env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0 and proc.stdout.strip() == "backport", proc.stderr


def test_interpreter_guard_skips_the_clones_per_python_venvs(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/check-interpreters.sh", clone / "scripts")
    fake_bin = clone / ".venv-3.10/bin"
    fake_bin.mkdir(parents=True)
    # an interpreter in the clone's .venv-3.10 that can import regauth (it is this suite's own)
    (fake_bin / "python3").write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec "{sys.executable}" "$@"\n')
    (fake_bin / "python3").chmod(0o755)
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", str(clone / "scripts/check-interpreters.sh")], capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    # the same interpreter outside the clone's venvs is still caught
    other = tmp_path / "elsewhere/bin"
    other.mkdir(parents=True)
    shutil.copy(fake_bin / "python3", other / "python3")
    env["PATH"] = f"{other}:/usr/bin:/bin"
    proc = subprocess.run(["bash", str(clone / "scripts/check-interpreters.sh")], capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 1 and f"{other}/python3 can import regauth" in proc.stderr, proc.stderr
