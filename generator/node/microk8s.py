"""MicroK8s: its containerd template, which the snap seds at every start."""

import os
import re
import time

from .containerd import containerd_merge, containerd_verify, effective_certs_dir, release
from .containerd_dump import dump_check
from .errors import ApplyError, log
from .files import Context, Outcome, cred_summary
from .plan import credentials, needs_hosts


# What the snap's sed replaces (doctor uses it too).
PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
# run-containerd-with-args (canonical/microk8s) seds these over the template at every
# start besides the paths the plan names (step["placeholders"]: ${SNAP}, ${SNAP_DATA},
# ${SNAP_COMMON}); the values are the wrapper's defaults (runc: no GPU lock file). For the
# `config dump` check only: it type-checks them and looks at nothing on disk, so a node
# set up with other values (nvidia runtime, zfs snapshotter) is judged the same.
SNAP_DEFAULTS = {"${RUNTIME}": "runc", "${RUNTIME_TYPE}": "io.containerd.runc.v2", "${SNAPSHOTTER}": "overlayfs"}


def snap_render(template: str) -> str:
    """What the snap's sed does at every start, with every ``${NAME}`` replaced (worst case)."""
    return PLACEHOLDER.sub("/rendered", template)


def snap_sed(template: str, step: dict) -> str:
    """The template as the snap renders it into containerd.toml: each known ``${NAME}``
    replaced (sed sees no TOML, so neither does this); unknown ones stay, as with the snap."""
    values = dict(SNAP_DEFAULTS)
    values.update(step.get("placeholders") or {})
    for placeholder, value in sorted(values.items()):
        template = template.replace(placeholder, value)
    return template


def snap_containerd(step: dict) -> str:
    """The containerd MicroK8s runs: its own, in the snap (not one on the host's PATH)."""
    return (step.get("placeholders") or {}).get("${SNAP}", "/snap/microk8s/current") + "/bin/containerd"


def wait_for(full: str, seconds: float, shown: str) -> bool:
    deadline = time.monotonic() + max(0.0, seconds)
    if os.path.exists(full):
        return True
    if seconds > 0:
        log("waiting up to %ds for %s (MicroK8s still installing?)" % (seconds, shown))
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        if os.path.exists(full):
            return True
    return os.path.exists(full)


def prepare_microk8s(step: dict, ctx: Context) -> Outcome:
    out = Outcome("microk8s", {"policy": step.get("restart", "if-running"), "units": step["units"], "command": step["restart_command"]})
    path = step["path"]
    if not wait_for(ctx.root + path, float(step.get("wait", 0)), path):
        if step.get("if_missing") == "skip":
            out.skipped = "%s does not exist (MicroK8s not installed; if_missing: skip)" % path
            return out
        raise ApplyError(
            "%s did not appear within %ss: install MicroK8s before regauth-apply runs (snap install microk8s --classic "
            "earlier in runcmd), raise wait_for_template, or set if_missing: skip" % (path, step.get("wait", 0)), code="node-runtime-missing"
        )
    creds = credentials(step["registries"], ctx.fetcher)
    out.summary = cred_summary(creds)
    existing = ctx.read(path)
    new = containerd_merge(existing, step, creds)
    containerd_verify(existing, new, creds, step)
    # The snap seds ${SNAP}, ${SNAP_DATA}, ... over the template at every start: prove
    # that our values survive any such substitution (they hold no '$' at all).
    containerd_verify(None, snap_render(new), creds, step, values_only=True)
    # And the snap's own containerd must read the template as the snap renders it.
    dump_check(ctx, path, {path: new}, release(step["containerd_version"]), [c["password"] for c in creds],
               binaries=(snap_containerd(step),), render=lambda text: snap_sed(text, step))
    out.add(ctx, path, new.encode("utf-8"), 0o600)
    if needs_hosts(creds):
        from .hoststoml import hosts_edits  # shipped only to nodes whose plan has mirrors/TLS (plan.modules)

        hosts_edits(out, ctx, effective_certs_dir(new, step), step, creds)
    return out
