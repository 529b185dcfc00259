"""The Python interpreters a node may run regauth-apply with, and a fixture over them.

Why: regauth-apply runs on whatever ``python3`` a cloud image ships (FIELD_NOTES
section 8), from RHEL 8's 3.6 platform-python to Debian 13's 3.13.  A test that
only uses the suite's own interpreter proves nothing about those nodes, so node
tests run the shipped program under each of these real interpreters: pyenv builds
of every minor version, and Debian's own ``/usr/bin/python3``.  Under ``CI=true`` a
missing interpreter fails the run (a skipped interpreter is an unproven node).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.support.containerd import missing


@dataclass(frozen=True)
class NodePython:
    """One interpreter: where it is and which cloud images ship that version as python3."""

    name: str  # test id part, e.g. "py3.6"
    version: str  # exact build, e.g. "3.6.15" (pyenv) or "3.11" (Debian's, as packaged)
    images: str  # cloud images whose python3 is this minor version
    system: str = ""  # absolute path of a distribution interpreter (else a pyenv build)

    @property
    def minor(self) -> tuple[int, int]:
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)

    def path(self) -> Path | None:
        """The interpreter, or None when this machine does not have it."""
        if self.system:
            found = Path(self.system)
        else:
            found = pyenv_root() / "versions" / self.version / "bin" / "python3"
        return found if found.is_file() and os.access(found, os.X_OK) else None


NODE_PYTHONS = (
    NodePython("py3.6", "3.6.15", "RHEL/Rocky 8 (/usr/libexec/platform-python)"),
    NodePython("py3.7", "3.7.16", "none current (Debian 10, EOL)"),
    NodePython("py3.8", "3.8.18", "Ubuntu 20.04"),
    NodePython("py3.9", "3.9.18", "Debian 11, RHEL/Rocky 9, Amazon Linux 2023"),
    NodePython("py3.10", "3.10.13", "Ubuntu 22.04"),
    NodePython("py3.11", "3.11.7", "Debian 12"),
    NodePython("py3.12", "3.12.1", "Ubuntu 24.04"),
    NodePython("py3.13", "3.13.0", "Debian 13"),
    NodePython("debian", "3.11", "Debian 12 (its own packaged python3)", system="/usr/bin/python3"),
)
# The interpreter whose results are judged by real containerd; every other one must
# produce byte-identical results (tests/system/test_node_corpus.py).
REFERENCE = NODE_PYTHONS[-1]


@cache
def pyenv_root() -> Path:
    """``$(pyenv root)``: PYENV_ROOT, else ask pyenv, else pyenv's default /root/.pyenv."""
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        proc = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return Path(proc.stdout.strip())
    return Path("/root/.pyenv")


# cloud-init imports yaml, so every node that runs regauth-apply from cloud-init has
# its python3's PyYAML (the distribution's python3-yaml / python3-pyyaml).  The pyenv
# builds have no site packages of their own, and nothing may be installed into them:
# they get a copy of Debian's pure-Python yaml package (6.0, which still runs on 3.6)
# on PYTHONPATH, as a node's distribution package would be on its path.
DEBIAN_YAML = Path("/usr/lib/python3/dist-packages/yaml")


@cache
def yaml_path() -> Path:
    """A session dir holding only a copy of Debian's pure-Python ``yaml`` package."""
    if not (DEBIAN_YAML / "__init__.py").is_file():
        missing(f"{DEBIAN_YAML} not found (Debian's python3-yaml); run: apt-get install python3-yaml")
    folder = Path(tempfile.mkdtemp(prefix="regauth-node-yaml-"))
    atexit.register(shutil.rmtree, folder, True)
    shutil.copytree(DEBIAN_YAML, folder / "yaml", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    return folder


def node_env(node: NodePython) -> dict[str, str]:
    """Environment additions a node interpreter needs to look like a cloud image's python3."""
    return {} if node.system else {"PYTHONPATH": str(yaml_path()), "PYTHONDONTWRITEBYTECODE": "1"}


def require(node: NodePython) -> Path:
    """The interpreter's path; skips with the fix (FAILS under CI=true) when it is absent."""
    found = node.path()
    if found is None:
        where = node.system or f"{pyenv_root()}/versions/{node.version}/bin/python3"
        missing(f"node Python {node.version} ({node.images}) not found at {where}; install it (pyenv install {node.version})")
    return found  # type: ignore[return-value]


# Node-program cases known to fail under some interpreters until issue 14 lands.
# Each becomes xfail(strict=True): when the fix lands they XPASS, which fails the run
# and forces the entry's removal.  (test function name, interpreter names) -> cause.
KNOWN_FAILURES: dict[tuple[str, frozenset[str]], str] = {}


def known_failure(test: str, node: NodePython) -> str | None:
    for (name, nodes), cause in KNOWN_FAILURES.items():
        if name == test and node.name in nodes:
            return cause
    return None


_current: list[Path] = []


def interpreter() -> Path:
    """The node interpreter of the running test (the ``node_python`` fixture), else the reference one.

    A module-level choice instead of an argument so that the existing helpers
    (``run_apply``) need no new parameter: decorating a test with
    :data:`on_every_node_python` is enough to run it under every interpreter.
    """
    return _current[-1] if _current else require(REFERENCE)


@pytest.fixture(params=NODE_PYTHONS, ids=lambda n: n.name)
def node_python(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> NodePython:
    """Parametrizes a test over every node interpreter; ``interpreter()`` returns it meanwhile
    (and the environment carries what that interpreter needs, see :func:`node_env`)."""
    node: NodePython = request.param
    path = require(node)
    for key, value in node_env(node).items():
        monkeypatch.setenv(key, value)
    cause = known_failure(request.function.__name__, node)
    if cause:
        request.applymarker(pytest.mark.xfail(strict=True, reason=cause))
    _current.append(path)
    yield node
    _current.pop()


on_every_node_python = pytest.mark.usefixtures("node_python")
