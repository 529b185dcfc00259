"""MicroK8s: registry auth merged into the snap's containerd *template*.

``/var/snap/microk8s/current/args/containerd-template.toml`` is rendered into
``containerd.toml`` by the snap's ``run-containerd-with-args`` at every start, with
``sed`` replacing ``${SNAP}``, ``${SNAP_DATA}``, ``${RUNTIME}``, ... (canonical/microk8s),
so editing ``containerd.toml`` itself would be lost.  Merged like the containerd
target (table from the template's own ``version``: old templates use ``plugins.cri``,
current ones ``plugins."io.containerd.grpc.v1.cri"``), with two differences:

- ``${``: a credential holding ``${SNAP}`` would be rewritten by that sed.  Decision:
  encode, don't refuse.  Every ``$`` in a value we write is the TOML escape
  ``\\u0024``, which sed cannot see and every TOML parser reads back as ``$``; the
  apply step proves it by running a worst-case sed (every ``${NAME}``) over the
  result and reading the credentials back.  The template's own placeholders are
  left byte for byte, and so is any ``config_path = "${SNAP_DATA}/args/certs.d"``.
- ordering: when the same user-data installs MicroK8s, the template appears only
  once the snap is installed, so the apply step waits for it (``wait_for_template``
  seconds), then fails clearly (or skips, ``if_missing: skip``).

Restart: ``snap restart microk8s.daemon-containerd``, only if that service is running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator.messages import inputs as M
from generator.profile.checker import Checker, kind_of
from generator.profile.model import Registry
from generator.secrets.resolve import Credential
from generator.targets import common, hoststoml
from generator.targets.base import NodeFile, Step

SNAP_DATA = "/var/snap/microk8s/current"
TEMPLATE = f"{SNAP_DATA}/args/containerd-template.toml"
SERVICE = "microk8s.daemon-containerd"
UNITS = ("snap.microk8s.daemon-containerd.service",)
# What the snap substitutes; used only to find the certs.d directory on disk.
# The containerd release the snap bundles (1.6/1.7 in current channels): its template is config version 2.
CONTAINERD = "1.7"
PLACEHOLDERS = {"${SNAP_DATA}": SNAP_DATA, "${SNAP}": "/snap/microk8s/current", "${SNAP_COMMON}": "/var/snap/microk8s/common"}
HOSTS_DIR = "${SNAP_DATA}/args/certs.d"  # MicroK8s' own default, kept as a placeholder
IF_MISSING = ("fail", "skip")  # "write" makes no sense: the template comes from the snap
OPTION_KEYS = ("template", "restart", "wait_for_template", "if_missing")
REQUIRED_KEYS: tuple[str, ...] = ()
EXAMPLE = "microk8s:\n  wait_for_template: 600"
DEFAULT_WAIT = 300
MAX_WAIT = 3600


@dataclass(frozen=True)
class MicroK8sTarget:
    template: str = TEMPLATE
    restart: str = "if-running"
    wait_for_template: int = DEFAULT_WAIT
    if_missing: str = "fail"


def parse(c: Checker, m: dict, p: tuple) -> MicroK8sTarget | None:
    template = common.path_option(c, m, p, "template", TEMPLATE)
    restart = c.choice(m, "restart", p, common.RESTART_MODES, "if-running")
    if_missing = common.if_missing_option(c, m, p, "fail", IF_MISSING)
    wait = m.get("wait_for_template", DEFAULT_WAIT)
    if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= MAX_WAIT:
        c.report(M.MICROK8S_WAIT, p + ("wait_for_template",), limit=MAX_WAIT, shown=kind_of(wait) if not isinstance(wait, int) else wait)
        wait = DEFAULT_WAIT
    return MicroK8sTarget(template=template, restart=restart, wait_for_template=wait, if_missing=if_missing)


def check(c: Checker, target: MicroK8sTarget, registries: list[Registry], p: tuple) -> None:
    """Nothing profile-level: template conflicts (registry.mirrors) are only known on the node."""


def schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "template": {"type": "string", "default": TEMPLATE},
            "restart": common.restart_schema(),
            "wait_for_template": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_WAIT,
                "default": DEFAULT_WAIT,
                "description": "Seconds to wait for the template when MicroK8s is installed by the same user-data (install it earlier in runcmd).",
            },
            "if_missing": {**common.if_missing_schema("fail", IF_MISSING), "description": "When the template never appears: fail, or skip this target."},
        },
    }


def plan_step(target: MicroK8sTarget, creds: list[Credential]) -> Step:
    spec: dict[str, Any] = {
        "kind": "microk8s",
        "runtime": "MicroK8s",
        "path": target.template,
        "containerd_version": CONTAINERD,
        "dollar_safe": True,
        "wait": target.wait_for_template,
        "if_missing": target.if_missing,
        "restart": target.restart,
        "units": [u.removesuffix(".service") for u in UNITS],
        "restart_command": ["snap", "restart", SERVICE],
        "placeholders": PLACEHOLDERS,
        "registries": common.registry_entries(creds),
    }
    if hoststoml.routed(creds):
        spec["hosts_dir"] = HOSTS_DIR
        spec["hosts"] = hoststoml.hosts_plan(creds)
    return Step(
        kind="microk8s",
        spec=spec,
        summary=f"MicroK8s: auth for {common.hosts_summary(creds)} merged into {target.template} (waits up to {target.wait_for_template}s for it; restart: {target.restart}, `snap restart {SERVICE}`)",
        holds_secret=common.holds_secret(creds),
    )


def preview(step: Step) -> list[NodeFile]:
    """Nothing: the result depends on the template the snap installs on the node."""
    return []
