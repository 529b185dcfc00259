"""K3s: registry auth (and mirrors, TLS) in ``/etc/rancher/k3s/registries.yaml``.

The format and merge rules are shared with the other Rancher distribution in
:mod:`generator.targets.rancher`; this module only names K3s's paths and units.
K3s reads the file at service start: written before the first start nothing needs
restarting, otherwise the running unit is restarted.
"""

from __future__ import annotations

from generator.targets import rancher
from generator.targets.base import SharedKind

DISTRO = rancher.Distro("k3s", ("k3s", "k3s-agent"))
TARGET = SharedKind(
    rancher,
    DISTRO,
    UNITS=tuple(f"{u}.service" for u in DISTRO.units),
    EXAMPLE="k3s:\n  restart: if-running",
    OPTION_KEYS=rancher.OPTION_KEYS,
    REQUIRED_KEYS=rancher.REQUIRED_KEYS,
)
