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

from generator import applyscript
from generator.profile.model import ContainerdTarget
from generator.secrets.resolve import Credential
from generator.targets.base import NodeFile, Step

UNIT = "containerd"


def plan_step(target: ContainerdTarget, creds: list[Credential]) -> Step:
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
