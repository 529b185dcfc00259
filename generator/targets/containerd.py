"""containerd: registry auth merged into ``/etc/containerd/config.toml``; mirrors and
private TLS in ``/etc/containerd/certs.d/NAME/hosts.toml``.

Auth goes into the *main* config, not an ``imports`` drop-in: on containerd 1.x an
imported file replaces whole plugin tables, so a drop-in holding only registry auth
would wipe the main file's CRI settings (SystemdCgroup and friends).  The table is
chosen on the node from the file's own ``version`` (1: ``plugins.cri``, 2:
``plugins."io.containerd.grpc.v1.cri"``, 3/4: ``plugins."io.containerd.cri.v1.images"``),
because containerd 2.x still reads version-2 files and ignores a version-3 table
name inside them.  A node without a config gets the version its release writes:
1 for containerd 1.0-1.2 (legacy ``plugins.cri``), 2 for 1.3-1.7, 3 for 2.x.

hosts.toml has no credential fields (containerd PR #7650 was rejected), so behind a
mirror the credentials stay in config.toml, keyed by the mirror host actually
contacted; ``config_path`` is set when the profile has mirrors or TLS (and refused
next to ``registry.mirrors``, which containerd rejects at startup).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from generator.messages import inputs as M
from generator.node.containerd import config_version_for, release
from generator.profile.checker import Checker
from generator.profile.model import Registry
from generator.secrets.resolve import Credential
from generator.targets import common, hoststoml
from generator.targets.base import NodeFile, Step

UNIT = "containerd"
#: systemd units that read what this target writes: the image's regauth-apply.service
#: is ordered Before= them, so the runtime starts with credentials in place.
UNITS = ("containerd.service",)
RESTART_MODES = common.RESTART_MODES
OPTION_KEYS = ("version", "config", "restart", "hosts_dir", "if_missing")
REQUIRED_KEYS = ("version",)
EXAMPLE = 'containerd:\n  version: "1.7"'
DEFAULT_CONFIG = "/etc/containerd/config.toml"
DEFAULT_HOSTS_DIR = "/etc/containerd/certs.d"
_VERSION_RE = re.compile(r"^(1|2)\.[0-9]+(\.[0-9]+)?$")
# `containerd --version` prints "containerd github.com/containerd/containerd v1.7.24 <commit>".
_RELEASE_IN_TEXT = re.compile(r"(?<![0-9.])v?((?:1|2)\.[0-9]+)(?:\.[0-9]+)?(?![0-9.])")


@dataclass(frozen=True)
class ContainerdTarget:
    version: str  # containerd release on the node, e.g. "1.7" or "2.1"
    config: str = DEFAULT_CONFIG
    restart: str = "if-running"
    hosts_dir: str = DEFAULT_HOSTS_DIR  # used when the config sets no config_path yet
    if_missing: str = "write"

    @property
    def release(self) -> tuple[int, int]:
        return release(self.version)

    @property
    def config_version(self) -> int:
        """Config schema version a *new* config gets (the node's rule)."""
        return config_version_for(self.version)


def parse(c: Checker, m: dict, p: tuple) -> ContainerdTarget | None:
    version = m.get("version")
    if isinstance(version, float):
        written = c.source_text(p + ("version",)) or repr(version)
        c.report(M.CONTAINERD_VERSION_NUMBER, p + ("version",), written=written, reading="" if written == repr(version) else f" ({version!r})")
        return None
    if "version" in m and not (isinstance(version, str) and _VERSION_RE.match(version)):
        release = _RELEASE_IN_TEXT.search(version) if isinstance(version, str) else None
        if release:  # e.g. "v1.7.24" or the whole `containerd --version` line
            fix = f'write the release as major.minor: version: "{release.group(1)}"'
        else:
            fix = 'write the node\'s containerd release, e.g. version: "1.6", "1.7" or "2.1" (`containerd --version`)'
        c.report(M.CONTAINERD_VERSION, p + ("version",), version=version, fix=fix)
        return None
    config = common.path_option(c, m, p, "config", DEFAULT_CONFIG)
    hosts_dir = common.path_option(c, m, p, "hosts_dir", DEFAULT_HOSTS_DIR)
    restart = c.choice(m, "restart", p, RESTART_MODES, "if-running")
    if_missing = common.if_missing_option(c, m, p)
    if not isinstance(version, str):
        return None
    return ContainerdTarget(version=version, config=config, restart=restart, hosts_dir=hosts_dir, if_missing=if_missing)


def check(c: Checker, target: ContainerdTarget, registries: list[Registry], p: tuple) -> None:
    """hosts.toml (mirrors, TLS) needs containerd >= 1.5."""
    if target.release < hoststoml.MIN_CONTAINERD and any(r.mirror_for or r.tls for r in registries):
        c.report(M.CONTAINERD_NO_HOSTS_TOML, p + ("version",), version=target.version)


def schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(REQUIRED_KEYS),
        "properties": {
            "version": {"type": "string", "pattern": _VERSION_RE.pattern, "description": 'containerd release on the node (quoted), e.g. "1.7" or "2.1"; "1.2" or older writes a legacy version-1 config.'},
            "config": {"type": "string", "default": DEFAULT_CONFIG},
            "restart": common.restart_schema(),
            "hosts_dir": {"type": "string", "default": DEFAULT_HOSTS_DIR, "description": "certs.d directory for hosts.toml (mirrors, TLS) when the config sets no config_path."},
            "if_missing": common.if_missing_schema(),
        },
    }


def plan_step(target: ContainerdTarget, creds: list[Credential]) -> Step:
    """The apply-plan entry for this node (passwords resolved now, or fetched at boot)."""
    spec = {
        "kind": "containerd",
        "runtime": "containerd",
        "path": target.config,
        "containerd_version": target.version,
        "unit": UNIT,
        "restart": target.restart,
        "if_missing": target.if_missing,
        "detect": {"binaries": ["containerd"], "paths": [target.config]},
        "registries": common.registry_entries(creds),
    }
    if hoststoml.routed(creds):
        spec["hosts_dir"] = target.hosts_dir
        spec["hosts"] = hoststoml.hosts_plan(creds)
    extra = f"; hosts.toml in {target.hosts_dir} (unless config_path says otherwise)" if hoststoml.routed(creds) else ""
    return Step(
        kind="containerd",
        spec=spec,
        summary=f"containerd {target.version}: auth for {common.hosts_summary(creds)} merged into {target.config}{extra} (restart: {target.restart})",
        holds_secret=common.holds_secret(creds),
    )


def preview(step: Step) -> list[NodeFile]:
    """The files a node with no existing config ends up with (boot-fetched values masked)."""
    return common.preview_files(step, "written by regauth-apply on the node (shown as on a node with no existing config)")
