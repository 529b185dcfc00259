"""Interpreter paths for tests that parametrize over plain paths.

The list itself lives once, in :mod:`tests.support.nodepython` (with the cloud images
that ship each version); this module only gives it as paths and ids.  A missing
interpreter skips locally and FAILS under CI=true (``require_python``).
"""

from __future__ import annotations

from tests.support.nodepython import NODE_PYTHONS as _NODES, NodePython, pyenv_root, require


def _path(node: NodePython) -> str:
    return node.system or str(pyenv_root() / "versions" / node.version / "bin" / "python3")


NODE_PYTHONS = tuple(_path(n) for n in _NODES)
OLDEST = _path(next(n for n in _NODES if n.name == "py3.6"))
NEWEST = _path(next(n for n in _NODES if n.name == "py3.13"))
_BY_PATH = {_path(n): n for n in _NODES}


def python_id(path: str) -> str:
    node = _BY_PATH.get(str(path))
    return node.name if node else str(path)


def require_python(path: str) -> str:
    """``path`` when it is an executable interpreter; else skip (fail under CI=true)."""
    return str(require(_BY_PATH[str(path)]))
