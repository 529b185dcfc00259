"""Access to ``regauth-apply``, the stdlib-only script that runs on the VM.

The same file is shipped to nodes and imported here, so the rootfs preview and the
tests exercise exactly the code a node runs.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from importlib import resources
from types import ModuleType

SCRIPT_NAME = "regauth-apply.py"
VM_PATH = "/usr/local/sbin/regauth-apply"
PLAN_PATH = "/etc/regauth/plan.json"


@lru_cache(maxsize=1)
def script_bytes() -> bytes:
    return resources.files("generator.templates").joinpath(SCRIPT_NAME).read_bytes()


@lru_cache(maxsize=1)
def module() -> ModuleType:
    """The apply script imported as a module (for previews and tests)."""
    with resources.as_file(resources.files("generator.templates").joinpath(SCRIPT_NAME)) as path:
        spec = importlib.util.spec_from_file_location("regauth_apply", path)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules.setdefault("regauth_apply", mod)
        spec.loader.exec_module(mod)
    return mod
