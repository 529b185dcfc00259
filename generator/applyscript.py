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

from generator.errors import RuntimeFailure

SCRIPT_NAME = "regauth-apply.py"
VM_PATH = "/usr/local/sbin/regauth-apply"
PLAN_PATH = "/etc/regauth/plan.json"


@lru_cache(maxsize=1)
def templates_dir() -> Path:
    """Where the shipped templates are.

    Installed (wheel or editable), they are the package ``generator.templates``; in a
    source checkout run as ``python -m generator`` (the repo on sys.path, nothing
    installed) that package does not exist, and the top-level ``templates/`` folder
    beside ``generator/`` is the same files.  Found from ``__file__`` rather than
    importlib.resources, which costs ~15 ms of a ~100 ms cold start.
    """
    try:
        import generator.templates as shipped
    except ImportError:
        beside = Path(__file__).resolve().parent.parent / "templates"
        if (beside / SCRIPT_NAME).is_file():
            return beside
        raise RuntimeFailure(
            f"regauth's templates are missing: neither the package generator.templates nor {beside} exists",
            "reinstall regauth (pip install regauth), or run it from a complete source checkout",
        ) from None
    return Path(shipped.__file__).parent


@lru_cache(maxsize=1)
def script_bytes() -> bytes:
    return (templates_dir() / SCRIPT_NAME).read_bytes()


SECTION = "# --- regauth-apply section: "
SECTION_END = "# --- regauth-apply section end ---"


@lru_cache(maxsize=64)
def script_for(kinds: frozenset[str]) -> bytes:
    """The script a node gets: core plus only the runtime sections the plan's step kinds use.

    Why: every runtime adds code, and user-data is small (AWS: 16 KB); a containerd
    node needs none of the YAML/JSON mergers.  Sections are marked in the one source
    file, so previews and tests still exercise the same code (``module()`` loads it all).
    """
    return prune(script_bytes(), kinds)


def prune(script: bytes, kinds: frozenset[str]) -> bytes:
    """Drop the marked sections none of ``kinds`` uses (pure: same input, same bytes)."""
    out: list[str] = []
    keep = True
    for line in script.decode("utf-8").splitlines(keepends=True):
        if line.startswith(SECTION):
            keep = bool(kinds & set(line[len(SECTION):].strip().rstrip("-").split()))
        elif line.startswith(SECTION_END):
            keep = True
        elif keep:
            out.append(line)
    return "".join(out).encode("utf-8")


@lru_cache(maxsize=1)
def module() -> ModuleType:
    """The apply script imported as a module (for previews and tests)."""
    spec = importlib.util.spec_from_file_location("regauth_apply", templates_dir() / SCRIPT_NAME)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("regauth_apply", mod)
    spec.loader.exec_module(mod)
    return mod
