"""The interpreters a node may run the node program with (issue 14 item 1), named explicitly.

pyenv builds of every minor version 3.6-3.13 plus Debian's own /usr/bin/python3. Tests
parametrize over NODE_PYTHONS and call `require_python(path)`: a missing interpreter skips
locally and FAILS under CI=true (a silent skip there would hide an untested Python).
"""

from __future__ import annotations

import os

import pytest

PYENV_ROOT = os.environ.get("PYENV_ROOT", "/root/.pyenv")
PYENV_VERSIONS = ("3.6.15", "3.7.16", "3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0")
NODE_PYTHONS = tuple("%s/versions/%s/bin/python3" % (PYENV_ROOT, v) for v in PYENV_VERSIONS) + ("/usr/bin/python3",)
OLDEST, NEWEST = NODE_PYTHONS[0], NODE_PYTHONS[len(PYENV_VERSIONS) - 1]


def python_id(path: str) -> str:
    parts = path.split("/")
    return parts[-3] if "versions" in parts else "system-" + parts[-1]


def require_python(path: str) -> str:
    """`path` when it is an executable interpreter; else skip (fail under CI=true)."""
    if os.access(path, os.X_OK):
        return path
    message = "node interpreter %s is missing (pyenv builds: scripts/setup.sh / FIELD_NOTES section 8)" % path
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
