"""Shared by the k3s and RKE2 targets: ``/etc/rancher/DISTRO/registries.yaml``.

Format: rancher/wharfie ``pkg/registries`` (what k3s and RKE2 parse):
``configs: HOST: {auth: {username, password}, tls: {ca_file, cert_file, key_file}}``
and ``mirrors: NAMESPACE: {endpoint: [URL...], rewrite: {REGEX: REPLACEMENT}}``.
Both distributions read it only at service start and turn it into containerd's
config and hosts.toml themselves.

Merge: the file is read (JSON, or YAML with the node's PyYAML), our hosts' ``auth``
(and ``tls`` paths) replaced, our mirror endpoints put first, everything else kept,
and written back as JSON, which is valid YAML and needs nothing beyond the standard
library.  A mirror's ``path`` becomes ``rewrite: {"^(.*)$": "PROJECT/REPO/$1"}``:
k3s applies rewrites per namespace (to every endpoint of that mirror, a limitation
its own source notes), so two mirrors of one namespace with different paths are
refused at render time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator.messages import inputs as M
from generator.profile.checker import Checker
from generator.profile.model import Registry
from generator.secrets.resolve import Credential
from generator.targets import common
from generator.targets.base import NodeFile, Step

OPTION_KEYS = ("config", "restart", "if_missing", "tls_dir")
REQUIRED_KEYS: tuple[str, ...] = ()


@dataclass(frozen=True)
class Distro:
    name: str  # k3s | rke2
    units: tuple[str, ...]  # server and agent units; restarted only if running

    @property
    def config(self) -> str:
        return f"/etc/rancher/{self.name}/registries.yaml"

    @property
    def tls_dir(self) -> str:
        return f"/etc/rancher/{self.name}/certs.d"


@dataclass(frozen=True)
class RancherTarget:
    config: str
    tls_dir: str
    restart: str = "if-running"
    if_missing: str = "write"  # registries.yaml is meant to exist *before* the first start


def parse(distro: Distro, c: Checker, m: dict, p: tuple) -> RancherTarget:
    return RancherTarget(
        config=common.path_option(c, m, p, "config", distro.config),
        tls_dir=common.path_option(c, m, p, "tls_dir", distro.tls_dir),
        restart=c.choice(m, "restart", p, common.RESTART_MODES, "if-running"),
        if_missing=common.if_missing_option(c, m, p),
    )


def rewrite_for(path: str) -> dict[str, str]:
    """``/v2/PROJECT/REPO`` -> every repository of the namespace under ``PROJECT/REPO/``."""
    return {"^(.*)$": path.removeprefix("/v2/") + "/$1"}


# Credentials stay keyed by the exact host: k3s looks Docker Hub's up under
# registry-1.docker.io first, then docker.io (k3s-io/k3s pkg/agent/containerd/config.go).


def check(distro: Distro, c: Checker, target: RancherTarget, registries: list[Registry], p: tuple) -> None:
    seen: dict[str, Registry] = {}
    for reg in registries:
        if not reg.mirror_for:
            continue
        first = seen.setdefault(reg.mirror_for, reg)
        if first is not reg and first.path != reg.path:
            c.report(M.RANCHER_MIRROR_PATHS, p, distro=distro.name, upstream=reg.mirror_for, first=first.host, first_path=first.path or "none",
                     host=reg.host, given=reg.path or "none")


def schema(distro: Distro) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "config": {"type": "string", "default": distro.config},
            "tls_dir": {"type": "string", "default": distro.tls_dir, "description": "Where CA / client files of registries with tls: are written."},
            "restart": common.restart_schema(),
            "if_missing": common.if_missing_schema(),
        },
    }


def mirrors(creds: list[Credential]) -> list[dict[str, Any]]:
    by_ns: dict[str, dict[str, Any]] = {}
    for cred in creds:  # profile order = endpoint order
        if not cred.mirror_for:
            continue
        entry = by_ns.setdefault(cred.mirror_for, {"namespace": cred.mirror_for, "endpoints": []})
        entry["endpoints"].append(f"https://{cred.host}")
        if cred.path:
            entry["rewrite"] = rewrite_for(cred.path)
    return [by_ns[ns] for ns in sorted(by_ns)]


def plan_step(distro: Distro, target: RancherTarget, creds: list[Credential]) -> Step:
    spec: dict[str, Any] = {
        "kind": distro.name,
        "runtime": distro.name,
        "path": target.config,
        "tls_dir": target.tls_dir,
        "restart": target.restart,
        "if_missing": target.if_missing,
        "units": list(distro.units),
        "detect": {"binaries": [distro.name], "paths": [target.config]},
        "registries": common.registry_entries(creds),
        "mirrors": mirrors(creds),
    }
    return Step(
        kind=distro.name,
        spec=spec,
        summary=f"{distro.name}: auth for {common.hosts_summary(creds)} merged into {target.config} (restart {' or '.join(distro.units)} if running: {target.restart})",
        holds_secret=common.holds_secret(creds),
    )


def preview(step: Step) -> list[NodeFile]:
    return common.preview_files(step, "written by regauth-apply on the node (shown as on a node with no registries.yaml yet)")
