"""Podman (rootful): containers-auth.json ``auths`` in root's persistent location.

Podman looks in ``${XDG_RUNTIME_DIR}/containers/auth.json`` (for root
``/run/containers/0/auth.json``, a tmpfs emptied at boot), then
``$HOME/.config/containers/auth.json``: regauth writes the second, which survives
reboots.  TLS files go to ``/etc/containers/certs.d/HOST/``; mirrors to a
``registries.conf.d`` drop-in (``[[registry.mirror]]``, path included).  Podman reads
all of these per command: nothing restarts.  Shared rules: :mod:`generator.targets.authfile`.
"""

from __future__ import annotations

from generator.targets import authfile
from generator.targets.base import SharedKind

FLAVOR = authfile.Flavor(
    name="podman",
    runtime="Podman",
    auth_file="/root/.config/containers/auth.json",
    certs_dir="/etc/containers/certs.d",
    hub_key="docker.io",
    helpers_conflict="containers",
    binaries=("podman",),
    mirrors=True,
    option_keys=("auth_file", "certs_dir", "registries_conf", "if_missing"),
)
TARGET = SharedKind(
    authfile,
    FLAVOR,
    UNITS=("podman.service",),  # no daemon reads the files; ordering only (podman system service)
    EXAMPLE="podman:\n  auth_file: /root/.config/containers/auth.json",
    OPTION_KEYS=FLAVOR.option_keys,
    REQUIRED_KEYS=(),
)
