"""What a target hands to the output stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NodeFile:
    """A file as the VM will have it.

    ``delivered`` files travel in user-data / the image; the others are what the
    apply step produces on a node that had no config yet (shown in ``rootfs/`` so
    users can read the result, never shipped).
    """

    path: str  # absolute path on the VM
    data: bytes = field(repr=False)
    mode: int
    secret: bool
    owner: str = "root:root"
    delivered: bool = True
    note: str = ""


@dataclass(frozen=True)
class Step:
    """One entry of the apply plan (JSON-serialisable) plus what it means for humans."""

    kind: str
    spec: dict[str, Any] = field(repr=False)
    summary: str
    holds_secret: bool
