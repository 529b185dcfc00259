"""CRI-O: a containers-auth.json file named by a drop-in's ``global_auth_file``.

``/etc/crio/crio.conf.d/10-regauth.conf`` sets ``[crio.image] global_auth_file``
(CRI-O uses it for pulls the kubelet sends no credentials for); the auth file
itself has the Docker ``auths`` shape.  TLS files in ``/etc/containers/certs.d``
and mirrors in a ``registries.conf.d`` drop-in, as for Podman.  CRI-O reads its
config at start: restarted (if running) when the drop-in or mirrors change; the
auth file is read per pull.  Shared rules: :mod:`generator.targets.authfile`.
"""

from __future__ import annotations

from typing import Any

from generator.profile.checker import Checker
from generator.profile.model import Registry
from generator.secrets.resolve import Credential
from generator.targets import authfile
from generator.targets.base import NodeFile, Step

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
UNITS = ("crio.service",)
OPTION_KEYS = FLAVOR.option_keys
REQUIRED_KEYS: tuple[str, ...] = ()
EXAMPLE = "crio:\n  auth_file: /etc/containers/auth.json"


def parse(c: Checker, m: dict, p: tuple) -> authfile.AuthFileTarget:
    return authfile.parse(FLAVOR, c, m, p)


def check(c: Checker, target: authfile.AuthFileTarget, registries: list[Registry], p: tuple) -> None:
    authfile.check(FLAVOR, c, target, registries, p)


def schema() -> dict[str, Any]:
    return authfile.schema(FLAVOR)


def plan_step(target: authfile.AuthFileTarget, creds: list[Credential]) -> Step:
    return authfile.plan_step(FLAVOR, target, creds)


def preview(step: Step) -> list[NodeFile]:
    return authfile.preview(step)
