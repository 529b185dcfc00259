"""What a target hands to the output stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

# What previews (rootfs/) show where regauth-apply will put a password it fetches at
# boot (``fetch: boot``).  ``regauth doctor`` recognises it as "fetched at boot".
BOOT_MASK = "<fetched at boot>"


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


@dataclass(frozen=True)
class SharedKind:
    """A runtime whose rules live in a shared module, bound to that runtime's variant.

    Docker, Podman and CRI-O share :mod:`~generator.targets.authfile`; k3s and RKE2
    share :mod:`~generator.targets.rancher`.  Each still has a module of its own (its
    paths, units and example in one place), which exports one of these as ``TARGET``;
    it satisfies the target protocol of :mod:`generator.targets` like a module does.
    """

    rules: ModuleType  # parse/check/schema/plan_step/preview taking the variant first
    variant: Any  # the rules module's Flavor / Distro for this runtime
    UNITS: tuple[str, ...]
    EXAMPLE: str
    OPTION_KEYS: tuple[str, ...]
    REQUIRED_KEYS: tuple[str, ...] = ()

    def parse(self, c: Any, m: dict, p: tuple) -> Any:
        return self.rules.parse(self.variant, c, m, p)

    def check(self, c: Any, target: Any, registries: list, p: tuple) -> None:
        self.rules.check(self.variant, c, target, registries, p)

    def schema(self) -> dict[str, Any]:
        return self.rules.schema(self.variant)

    def plan_step(self, target: Any, creds: list) -> Step:
        return self.rules.plan_step(self.variant, target, creds)

    def preview(self, step: Step) -> list[NodeFile]:
        return self.rules.preview(step)
