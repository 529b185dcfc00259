"""The cached cloud-init rootfs (testbed/rootfs.py) with the tests' policy on top.

Why fail under CI but skip elsewhere: on a developer machine without root or network a
missing rootfs is an environment limit, but in CI it means the install step is broken,
and a skipped system test there would hide it (tests/support/prereq.py).
"""

from __future__ import annotations

from pathlib import Path

from testbed import rootfs as _rootfs
from testbed.rootfs import *  # noqa: F403 - the old import path, kept
from tests.support.prereq import missing


def ensure_rootfs() -> Path:
    """:func:`testbed.rootfs.ensure_rootfs`, skipped (failed under ``CI=true``) when unavailable."""
    try:
        return _rootfs.ensure_rootfs()
    except _rootfs.Unavailable as exc:
        missing(str(exc))


def ensure_cloudinit_versions(versions: tuple[str, ...] = _rootfs.KNOWN_VERSIONS) -> list[str]:
    """:func:`testbed.rootfs.ensure_cloudinit_versions`, with the same policy."""
    try:
        return _rootfs.ensure_cloudinit_versions(versions)
    except _rootfs.Unavailable as exc:
        missing(str(exc))
