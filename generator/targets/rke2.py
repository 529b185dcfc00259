"""RKE2: registry auth (and mirrors, TLS) in ``/etc/rancher/rke2/registries.yaml``.

The format and merge rules are shared with the other Rancher distribution in
:mod:`generator.targets.rancher`; this module only names RKE2's paths and units.
RKE2 reads the file at service start: written before the first start nothing needs
restarting, otherwise the running unit is restarted.
"""

from __future__ import annotations

from typing import Any

from generator.profile.checker import Checker
from generator.profile.model import Registry
from generator.secrets.resolve import Credential
from generator.targets import rancher
from generator.targets.base import NodeFile, Step

DISTRO = rancher.Distro("rke2", ("rke2-server", "rke2-agent"))
UNITS = tuple(f"{u}.service" for u in DISTRO.units)
OPTION_KEYS = rancher.OPTION_KEYS
REQUIRED_KEYS = rancher.REQUIRED_KEYS
EXAMPLE = "rke2:\n  restart: if-running"


def parse(c: Checker, m: dict, p: tuple) -> rancher.RancherTarget:
    return rancher.parse(DISTRO, c, m, p)


def check(c: Checker, target: rancher.RancherTarget, registries: list[Registry], p: tuple) -> None:
    rancher.check(DISTRO, c, target, registries, p)


def schema() -> dict[str, Any]:
    return rancher.schema(DISTRO)


def plan_step(target: rancher.RancherTarget, creds: list[Credential]) -> Step:
    return rancher.plan_step(DISTRO, target, creds)


def preview(step: Step) -> list[NodeFile]:
    return rancher.preview(step)
