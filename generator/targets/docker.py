"""Docker: ``/root/.docker/config.json`` ``auths`` (and ``/etc/docker/certs.d`` for TLS).

The Docker CLI reads config.json at every pull and sends the credentials to the
daemon, so nothing restarts.  Mirrors cannot be expressed (``registry-mirrors`` in
daemon.json covers Docker Hub only and takes no path): a profile with mirror_for
gets a warning and the mirror host's own credentials.  Shared rules:
:mod:`generator.targets.authfile`.
"""

from __future__ import annotations

from typing import Any

from generator.profile.checker import Checker
from generator.profile.model import Registry
from generator.secrets.resolve import Credential
from generator.targets import authfile
from generator.targets.base import NodeFile, Step

FLAVOR = authfile.Flavor(
    name="docker",
    runtime="Docker",
    auth_file="/root/.docker/config.json",
    certs_dir="/etc/docker/certs.d",
    hub_key="https://index.docker.io/v1/",
    helpers_conflict="docker",
    binaries=("docker", "dockerd"),
)
UNITS = ("docker.service",)
OPTION_KEYS = FLAVOR.option_keys
REQUIRED_KEYS: tuple[str, ...] = ()
EXAMPLE = "docker:\n  auth_file: /root/.docker/config.json"


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
