"""Access to ``regauth-apply``, the stdlib-only script that runs on the VM.

The same file is shipped to nodes and imported here, so the rootfs preview and the
tests exercise exactly the code a node runs.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import generator.templates

SCRIPT_NAME = "regauth-apply.py"
VM_PATH = "/usr/local/sbin/regauth-apply"
PLAN_PATH = "/etc/regauth/plan.json"


def templates_dir() -> Path:
    """Where the shipped templates are (a real folder in wheels and editable installs alike).

    Found from the package's own ``__file__`` rather than importlib.resources, which
    costs ~15 ms of a ~100 ms cold start.
    """
    return Path(generator.templates.__file__).parent


@lru_cache(maxsize=1)
def script_bytes() -> bytes:
    return (templates_dir() / SCRIPT_NAME).read_bytes()


@lru_cache(maxsize=1)
def module() -> ModuleType:
    """The apply script imported as a module (for previews and tests)."""
    spec = importlib.util.spec_from_file_location("regauth_apply", templates_dir() / SCRIPT_NAME)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("regauth_apply", mod)
    spec.loader.exec_module(mod)
    return mod
