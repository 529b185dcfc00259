"""containerd: registry auth merged into ``/etc/containerd/config.toml``.

Auth goes into the *main* config, not an ``imports`` drop-in: on containerd 1.x an
imported file replaces whole plugin tables, so a drop-in holding only registry auth
would wipe the main file's CRI settings (SystemdCgroup and friends).  The table is
chosen on the node from the file's own ``version`` (1: ``plugins.cri``, 2:
``plugins."io.containerd.grpc.v1.cri"``, 3/4: ``plugins."io.containerd.cri.v1.images"``),
because containerd 2.x still reads version-2 files and ignores a version-3 table
name inside them.  A node without a config gets the profile's version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from generator import applyscript
from generator.profile.checker import Checker
from generator.secrets.resolve import Credential
from generator.targets.base import NodeFile, Step

UNIT = "containerd"
#: systemd units that read what this target writes: the image's regauth-apply.service
#: is ordered Before= them, so the runtime starts with credentials in place.
UNITS = ("containerd.service",)
RESTART_MODES = ("if-running", "never")
OPTION_KEYS = ("version", "config", "restart")
REQUIRED_KEYS = ("version",)
EXAMPLE = 'containerd:\n  version: "1.7"'
_VERSION_RE = re.compile(r"^(1|2)\.[0-9]+(\.[0-9]+)?$")


@dataclass(frozen=True)
class ContainerdTarget:
    version: str  # containerd release on the node, e.g. "1.7" or "2.1"
    config: str = "/etc/containerd/config.toml"
    restart: str = "if-running"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def config_version(self) -> int:
        """Config schema version a *new* config gets: 2 for containerd 1.x, 3 for 2.x."""
        return 3 if self.major >= 2 else 2


def parse(c: Checker, m: dict, p: tuple) -> ContainerdTarget | None:
    version = m.get("version")
    if isinstance(version, float):
        c.add(p + ("version",), f"version {version!r} was read as a number (so 1.10 would become 1.1)", f'quote it: version: "{version}"')
        return None
    if "version" in m and not (isinstance(version, str) and _VERSION_RE.match(version)):
        c.add(p + ("version",), f"'{version}' is not a containerd release", 'write the node\'s containerd release, e.g. version: "1.6", "1.7" or "2.1" (`containerd --version`)')
        return None
    config = c.string(m, "config", p) or "/etc/containerd/config.toml"
    if not config.startswith("/"):
        c.add(p + ("config",), "the containerd config path must be absolute", "write config: /etc/containerd/config.toml")
    restart = c.choice(m, "restart", p, RESTART_MODES, "if-running")
    if not isinstance(version, str):
        return None
    return ContainerdTarget(version=version, config=config, restart=restart)


def schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(REQUIRED_KEYS),
        "properties": {
            "version": {"type": "string", "pattern": _VERSION_RE.pattern, "description": 'containerd release on the node (quoted), e.g. "1.7" or "2.1".'},
            "config": {"type": "string", "default": "/etc/containerd/config.toml"},
            "restart": {"enum": list(RESTART_MODES), "default": "if-running"},
        },
    }


def plan_step(target: ContainerdTarget, creds: list[Credential]) -> Step:
    """The apply-plan entry for this node (passwords resolved now, or fetched at boot)."""
    registries = []
    for cred in sorted(creds, key=lambda c: c.host):
        entry: dict[str, object] = {"host": cred.host, "username": cred.username}
        if cred.password is not None:
            entry["password"] = cred.password.text()
        else:
            assert cred.boot is not None
            entry["password_from"] = cred.boot.plan_entry()
        registries.append(entry)
    spec = {
        "kind": "containerd",
        "path": target.config,
        "new_config_version": target.config_version,
        "unit": UNIT,
        "restart": target.restart,
        "registries": registries,
    }
    hosts = ", ".join(c.host for c in sorted(creds, key=lambda c: c.host))
    return Step(
        kind="containerd",
        spec=spec,
        summary=f"containerd {target.version}: auth for {hosts} merged into {target.config} (restart: {target.restart})",
        holds_secret=any(c.holds_secret for c in creds),
    )


def preview(step: Step) -> list[NodeFile]:
    """The config a node with no existing file ends up with (boot-fetched values masked)."""
    apply = applyscript.module()
    creds = [
        {"host": r["host"], "username": r["username"], "password": r.get("password", "<fetched at boot>")}
        for r in step.spec["registries"]
    ]
    text = apply.containerd_merge(None, step.spec, creds)
    apply.containerd_verify(None, text, creds)
    return [
        NodeFile(
            path=step.spec["path"],
            data=text.encode("utf-8"),
            mode=0o600,
            secret=step.holds_secret,
            delivered=False,
            note="written by regauth-apply on the node (shown as on a node with no existing config)",
        )
    ]
