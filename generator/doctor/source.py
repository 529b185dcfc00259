"""One input file as doctor sees it: what it is, where it came from, its text and mode."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from generator.doctor.findings import Finding
from generator.core.imageref import ImageRef

KINDS = ("containerd", "microk8s", "k3s", "docker", "containers-auth", "kubelet", "kubelet-provider")


@dataclass(frozen=True)
class Source:
    shown: str  # the path as the user should read it
    real: Path  # where it was read from
    kind: str  # one of KINDS
    text: str = field(repr=False)
    mode: int | None = None  # st_mode, None when unknown
    root: Path | None = None  # the node's "/" for paths inside the file (containerd imports)
    node_path: str = ""  # where the file sits on the node ("/etc/containerd/config.toml"), when a node tree was read
    step: int | None = None  # for etc/regauth/plan.json: the plan step this source stands for (see doctor.plan)
    release: tuple[int, int] | None = None  # containerd (major, minor) that reads it; None: unknown (doctor.containerd_release)


@dataclass(frozen=True)
class Options:
    """Run-wide knobs every checker receives."""

    image: ImageRef | None = None


def permission_finding(src: Source, credentials: int) -> Finding | None:
    """A credential-bearing file must not be readable by group or others."""
    if not credentials or src.mode is None or not (src.mode & (stat.S_IRGRP | stat.S_IROTH)):
        return None
    mode = stat.S_IMODE(src.mode)
    return Finding(
        "permissions",
        src.shown,
        f"the file holds registry credentials and is mode {mode:04o} (readable by {'group and others' if mode & 0o044 == 0o044 else 'group' if mode & 0o040 else 'others'})",
        "every local user (or container with a host mount) who can read it can pull, and push where the account may",
        f"chmod 600 {src.real}" + ("" if src.kind in ("docker", "containers-auth") else " (owner root)"),
        line=0,
    )
