"""Which containerd release doctor judges a config for.

containerd 1.x and 2.x read the same file differently (generator/node/containerd_imports.py:
escapes in quoted [table] header keys, where a relative `imports` glob is matched, whether a
missing import is fatal), so doctor reads each file as the release that will load it, with
the node's own functions.  The release is decided here, once, in this order:

1. ``--containerd-version X.Y``: the user knows best, it wins over everything;
2. the checked tree's ``etc/regauth/plan.json``: the ``containerd_version`` of its step for
   that runtime (what regauth render wrote the node's config for);
3. the live system (the tree is ``/``): ``containerd --version`` (MicroK8s: the snap's own
   binary), with a short timeout; a missing binary is no error;
4. otherwise unknown (None): callers read with 2.x (TOML 1.0) rules and say where 1.x differs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Optional

from generator.node.containerd import release
from generator.node.containerd_imports import V2

Release = tuple[int, int]  # (major, minor), as generator.node.containerd.release gives it
# argv -> its stdout, or None when it cannot run (absent binary, timeout, failure)
Runner = Callable[[list[str]], Optional[str]]

PLAN_PATH = "etc/regauth/plan.json"
# The binary whose release the live system runs, per doctor kind (MicroK8s ships its own).
BINARY = {"containerd": "containerd", "microk8s": "/snap/microk8s/current/bin/containerd"}
# `containerd --version`: "containerd github.com/containerd/containerd v1.7.24 <commit>",
# "containerd containerd.io 1.6.20 <commit>" (Docker's packages), ".../containerd/v2 v2.1.9 ...":
# the first whitespace-separated word that is a version (the module path's "/v2" is not).
_VERSION_WORD = re.compile(r"(?:^|\s)v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+~][^\s]*)?(?=\s|$)")


def parse_version_output(text: str) -> Release | None:
    """(major, minor) from ``containerd --version`` output, or None when it names none."""
    m = _VERSION_WORD.search(text.strip().splitlines()[0] if text.strip() else "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_option(text: str) -> Release:
    """``--containerd-version X.Y`` (or X.Y.Z, leading v allowed); ValueError when it is not one."""
    got = release(text.strip().lstrip("v"))
    if got[0] < 1:
        raise ValueError(text)
    return got


def run_version(argv: list[str]) -> str | None:
    """Run ``argv`` (a version query) with a short timeout; None when it cannot run."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def from_plan(root: Path, kind: str) -> Release | None:
    """The containerd_version of the plan step for ``kind`` in ``root``'s plan, if any."""
    try:
        steps = json.loads((root / PLAN_PATH).read_text(encoding="utf-8")).get("steps")
    except (OSError, ValueError, AttributeError):
        return None
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and step.get("kind") == kind and isinstance(step.get("containerd_version"), str):
            try:
                return release(step["containerd_version"])
            except ValueError:
                return None
    return None


def decide(root: Path | None, kind: str, override: Release | None = None, run: Runner = run_version,
           live: Path = Path("/")) -> Release | None:
    """The release that reads ``kind``'s config in the node tree ``root`` (see module doc);
    ``run`` is only asked when ``root`` is the ``live`` system (tests pass both)."""
    if override is not None:
        return override
    if root is None:
        return None
    planned = from_plan(root, kind)
    if planned is not None:
        return planned
    if root.resolve() == live.resolve() and kind in BINARY:
        out = run([BINARY[kind], "--version"])
        return parse_version_output(out) if out else None
    return None


def known(release: Release | None, version: object) -> Release | None:
    """The release a file with config ``version`` is known to be read by: ``release``, else
    2.x for a version 3/4 file (written for 2.x: 1.7 refuses it, 1.6 reads it as version 2), else None (unknown)."""
    if release is None and isinstance(version, int) and not isinstance(version, bool) and version >= 3:
        return V2
    return release


def read_as(release: Release | None) -> Release:
    """The release to read a file as: ``release``, or with it unknown 2.x (TOML 1.0 header
    keys, relative globs beside the file as on 1.7+); the checks say where 1.x differs."""
    return release or V2
