"""The cached Debian 12 rootfs with cloud-init that system tests boot in a sandbox.

Why cached and built by the deps script: debootstrap + cloud-init takes ~1 min and
needs the Debian mirror, so it is built once (``scripts/deps/cloudinit.sh rootfs``)
into the git-ignored cache and only overlaid read-only afterwards.

When it cannot be had, :class:`Unavailable` says why and how to build it; the tests
turn that into a skip locally and a failure under CI (tests/support/rootfs.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from testbed.cloudinit_schema import (
    KNOWN_VERSIONS,
    REPO,
    available_versions,
    cache_dir,
)

ROOTFS_NAME = "bookworm-cloudinit"
DEPS_SCRIPT = REPO / "scripts" / "deps" / "cloudinit.sh"
BUILD_TIMEOUT_S = 900


def rootfs_path() -> Path:
    """Where the rootfs lives (it may not exist yet)."""
    return cache_dir() / "rootfs" / ROOTFS_NAME


def rootfs_info() -> dict[str, object]:
    """Build facts written by the deps script (cloud-init version, build seconds, ...)."""
    stamp = cache_dir() / "rootfs" / f"{ROOTFS_NAME}.json"
    return json.loads(stamp.read_text()) if stamp.is_file() else {}


def _recipe() -> int | None:
    """The ROOTFS_RECIPE the deps script would build now (a changed recipe means rebuild)."""
    match = re.search(r"^ROOTFS_RECIPE=(\d+)", DEPS_SCRIPT.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else None


def _is_ready(path: Path) -> bool:
    # The deps script renames a finished build into place and then writes the stamp.
    return (path / "usr/bin/cloud-init").exists() and rootfs_info().get("recipe") == _recipe()


class Unavailable(RuntimeError):
    """The rootfs or the cloud-init releases cannot be had here (the message says how)."""


def _unavailable(reason: str, what: str = "rootfs") -> None:
    raise Unavailable(f"cloud-init {what} unavailable: {reason}. Build it with: sudo {DEPS_SCRIPT} {what}")


def ensure_rootfs() -> Path:
    """Return the rootfs, building it first if it is missing.

    Building needs root, debootstrap's mirror and ~1 min; when it cannot happen this
    raises :class:`Unavailable`.
    """
    path = rootfs_path()
    if _is_ready(path):
        return path
    if os.geteuid() != 0:
        _unavailable("not root (the sandbox needs namespaces, mounts and chroot)")
    if shutil.which("unshare") is None:
        _unavailable("unshare (util-linux) not found")
    proc = subprocess.run(["bash", str(DEPS_SCRIPT), "rootfs"], capture_output=True, text=True, check=False,
                          timeout=BUILD_TIMEOUT_S, env={**os.environ, "REGAUTH_CACHE": str(cache_dir())})
    if proc.returncode != 0 or not _is_ready(path):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        _unavailable(f"building it failed (exit {proc.returncode}):\n{tail}")
    return path


def ensure_cloudinit_versions(versions: tuple[str, ...] = KNOWN_VERSIONS) -> list[str]:
    """Make sure the unpacked cloud-init releases for ``cloud-init schema`` exist.

    Same policy as :func:`ensure_rootfs`: fetched on demand (root only), else
    :class:`Unavailable`.
    """
    if all(v in available_versions() for v in versions):
        return list(versions)
    if os.geteuid() != 0:
        _unavailable("not root (apt-get download and venvs need it)", "debs")
    proc = subprocess.run(["bash", str(DEPS_SCRIPT), "debs"], capture_output=True, text=True, check=False,
                          timeout=BUILD_TIMEOUT_S, env={**os.environ, "REGAUTH_CACHE": str(cache_dir())})
    missing = [v for v in versions if v not in available_versions()]
    if proc.returncode != 0 or missing:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        _unavailable(f"missing {missing} (exit {proc.returncode}):\n{tail}", "debs")
    return list(versions)
