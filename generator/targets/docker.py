"""Docker: ``/root/.docker/config.json`` ``auths`` (and ``/etc/docker/certs.d`` for TLS).

The Docker CLI reads config.json at every pull and sends the credentials to the
daemon, so nothing restarts.  Mirrors cannot be expressed (``registry-mirrors`` in
daemon.json covers Docker Hub only and takes no path): a profile with mirror_for
gets a warning and the mirror host's own credentials.  Shared rules:
:mod:`generator.targets.authfile`.
"""

from __future__ import annotations

from generator.targets import authfile
from generator.targets.base import SharedKind

FLAVOR = authfile.Flavor(
    name="docker",
    runtime="Docker",
    auth_file="/root/.docker/config.json",
    certs_dir="/etc/docker/certs.d",
    hub_key="https://index.docker.io/v1/",
    helpers_conflict="docker",
    binaries=("docker", "dockerd"),
)
TARGET = SharedKind(
    authfile,
    FLAVOR,
    UNITS=("docker.service",),
    EXAMPLE="docker:\n  auth_file: /root/.docker/config.json",
    OPTION_KEYS=FLAVOR.option_keys,
    REQUIRED_KEYS=(),
)
