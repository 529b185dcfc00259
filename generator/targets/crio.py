"""CRI-O: a containers-auth.json file named by a drop-in's ``global_auth_file``.

``/etc/crio/crio.conf.d/10-regauth.conf`` sets ``[crio.image] global_auth_file``
(CRI-O uses it for pulls the kubelet sends no credentials for); the auth file
itself has the Docker ``auths`` shape.  TLS files in ``/etc/containers/certs.d``
and mirrors in a ``registries.conf.d`` drop-in, as for Podman.  CRI-O reads its
config at start: restarted (if running) when the drop-in or mirrors change; the
auth file is read per pull.  Shared rules: :mod:`generator.targets.authfile`.
"""

from __future__ import annotations

from generator.targets import authfile
from generator.targets.base import SharedKind

FLAVOR = authfile.Flavor(
    name="crio",
    runtime="CRI-O",
    auth_file="/etc/containers/auth.json",
    certs_dir="/etc/containers/certs.d",
    hub_key="docker.io",
    helpers_conflict="containers",
    binaries=("crio",),
    units=("crio",),
    dropin="/etc/crio/crio.conf.d/10-regauth.conf",
    mirrors=True,
    option_keys=("auth_file", "certs_dir", "dropin", "registries_conf", "restart", "if_missing"),
)
TARGET = SharedKind(
    authfile,
    FLAVOR,
    UNITS=("crio.service",),
    EXAMPLE="crio:\n  auth_file: /etc/containers/auth.json",
    OPTION_KEYS=FLAVOR.option_keys,
    REQUIRED_KEYS=(),
)
