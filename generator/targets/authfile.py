"""Shared by Docker, Podman and CRI-O: a Docker-style ``auths`` JSON file plus
``certs.d/HOST/{ca.crt,client.cert,client.key}`` for registries with ``tls``.

Shape (docker/cli ``configfile``, containers-auth.json(5)): ``{"auths": {KEY:
{"auth": base64("user:pass")}}}``.  Merge: our keys get a fresh entry, every other
key and setting (``credHelpers``, ``credsStore``, ``HttpHeaders``, ...) is kept, file
0600.  The one conflict that would make our entry dead is refused on the node with
the fix: a ``credHelpers`` entry for our host (both tools ask the helper instead),
and for Docker a global ``credsStore``.

Key spelling differs for Docker Hub only: Docker files it under
``https://index.docker.io/v1/``, the containers tools under ``docker.io``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from generator.messages import inputs as M
from generator.node.tomltext import toml_string
from generator.profile.checker import Checker
from generator.profile.model import Registry
from generator.secrets.resolve import Credential
from generator.targets import common
from generator.targets.base import NodeFile, Step

DOCKER_HUB_HOST = "registry-1.docker.io"
REGISTRIES_CONF_D = "/etc/containers/registries.conf.d/50-regauth.conf"


@dataclass(frozen=True)
class Flavor:
    name: str  # step kind: docker | podman | crio
    runtime: str  # for messages
    auth_file: str
    certs_dir: str
    hub_key: str
    helpers_conflict: str  # "docker" (credHelpers + credsStore) or "containers" (credHelpers)
    binaries: tuple[str, ...]
    units: tuple[str, ...] = ()  # restarted (if running) when a file it reads at start changes
    dropin: str | None = None  # CRI-O: [crio.image] global_auth_file
    mirrors: bool = False  # containers registries.conf.d drop-in for mirror_for
    option_keys: tuple[str, ...] = field(default=("auth_file", "certs_dir", "if_missing"))


@dataclass(frozen=True)
class AuthFileTarget:
    auth_file: str
    certs_dir: str
    if_missing: str = "write"
    restart: str = "if-running"
    dropin: str | None = None
    registries_conf: str = REGISTRIES_CONF_D


def parse(flavor: Flavor, c: Checker, m: dict, p: tuple) -> AuthFileTarget:
    return AuthFileTarget(
        auth_file=common.path_option(c, m, p, "auth_file", flavor.auth_file),
        certs_dir=common.path_option(c, m, p, "certs_dir", flavor.certs_dir),
        if_missing=common.if_missing_option(c, m, p),
        restart=c.choice(m, "restart", p, common.RESTART_MODES, "if-running"),
        dropin=common.path_option(c, m, p, "dropin", flavor.dropin) if flavor.dropin else None,
        registries_conf=common.path_option(c, m, p, "registries_conf", REGISTRIES_CONF_D) if flavor.mirrors else REGISTRIES_CONF_D,
    )


def check(flavor: Flavor, c: Checker, target: AuthFileTarget, registries: list[Registry], p: tuple) -> None:
    if flavor.mirrors:
        return
    for reg in registries:
        if reg.mirror_for:
            c.report(M.AUTHFILE_MIRROR, p, runtime=flavor.runtime, host=reg.host, upstream=reg.mirror_for, target=flavor.name)


def schema(flavor: Flavor) -> dict[str, Any]:
    props: dict[str, Any] = {
        "auth_file": {"type": "string", "default": flavor.auth_file},
        "certs_dir": {"type": "string", "default": flavor.certs_dir, "description": "certs.d directory for registries with tls: (HOST/ca.crt, client.cert, client.key)."},
        "if_missing": common.if_missing_schema(),
    }
    if flavor.units:
        props["restart"] = common.restart_schema()
    if flavor.dropin:
        props["dropin"] = {"type": "string", "default": flavor.dropin, "description": "CRI-O drop-in that sets [crio.image] global_auth_file."}
    if flavor.mirrors:
        props["registries_conf"] = {"type": "string", "default": REGISTRIES_CONF_D, "description": "registries.conf.d drop-in written for mirror_for registries."}
    return {"type": "object", "additionalProperties": False, "properties": props}


def registries_conf(creds: list[Credential]) -> str | None:
    """containers-registries.conf(5) drop-in: one [[registry]] per mirrored namespace."""
    by_ns: dict[str, list[str]] = {}
    for cred in creds:
        if cred.mirror_for:
            location = cred.host + (cred.path.removeprefix("/v2") if cred.path else "")
            by_ns.setdefault(cred.mirror_for, []).append(location)
    if not by_ns:
        return None
    lines = ["# Written by regauth: mirrors from the profile (tried in order before the registry itself)."]
    for ns in sorted(by_ns):
        lines += ["", "[[registry]]", f"prefix = {toml_string(ns)}", f"location = {toml_string(ns)}"]
        for location in by_ns[ns]:
            lines += ["", "[[registry.mirror]]", f"location = {toml_string(location)}"]
    return "\n".join(lines) + "\n"


def plan_step(flavor: Flavor, target: AuthFileTarget, creds: list[Credential]) -> Step:
    spec: dict[str, Any] = {
        "kind": flavor.name,
        "runtime": flavor.runtime,
        "path": target.auth_file,
        "certs_dir": target.certs_dir,
        "helpers_conflict": flavor.helpers_conflict,
        "if_missing": target.if_missing,
        "detect": {"binaries": list(flavor.binaries)},
        "registries": common.registry_entries(creds, lambda host: [flavor.hub_key if host == DOCKER_HUB_HOST else host]),
    }
    if flavor.units:
        spec["units"] = list(flavor.units)
        spec["restart"] = target.restart
    if target.dropin:
        spec["dropin"] = target.dropin
    conf = registries_conf(creds) if flavor.mirrors else None
    if conf:
        spec["registries_conf"] = conf
        spec["registries_conf_path"] = target.registries_conf
    extra = f", {target.dropin}" if target.dropin else ""
    return Step(
        kind=flavor.name,
        spec=spec,
        summary=f"{flavor.runtime}: auth for {common.hosts_summary(creds)} merged into {target.auth_file}{extra}",
        holds_secret=common.holds_secret(creds),
    )


def preview(step: Step) -> list[NodeFile]:
    return common.preview_files(step, "written by regauth-apply on the node (shown as on a node with none of these files)")
