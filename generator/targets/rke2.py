"""RKE2: registry auth (and mirrors, TLS) in ``/etc/rancher/rke2/registries.yaml``.

The format and merge rules are shared with the other Rancher distribution in
:mod:`generator.targets.rancher`; this module only names RKE2's paths and units.
RKE2 reads the file at service start: written before the first start nothing needs
restarting, otherwise the running unit is restarted.
"""

from __future__ import annotations

from generator.targets import rancher
from generator.targets.base import SharedKind

DISTRO = rancher.Distro("rke2", ("rke2-server", "rke2-agent"))
TARGET = SharedKind(
    rancher,
    DISTRO,
    UNITS=tuple(f"{u}.service" for u in DISTRO.units),
    EXAMPLE="rke2:\n  restart: if-running",
    OPTION_KEYS=rancher.OPTION_KEYS,
    REQUIRED_KEYS=rancher.REQUIRED_KEYS,
)
