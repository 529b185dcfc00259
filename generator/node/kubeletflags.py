"""kubelet's two credential-provider flags, written where each distribution reads them.

kubelet reads ``--image-credential-provider-config`` and
``--image-credential-provider-bin-dir`` only from its command line, and each way of
running kubelet builds that line from its own file:

- kubeadm: ``/etc/default/kubelet`` (``KUBELET_EXTRA_ARGS``), the file kubeadm's
  documentation gives users for extra flags; its ``10-kubeadm.conf`` drop-in reads it
  as an ``EnvironmentFile`` after everything else.  A drop-in of our own with
  ``Environment=KUBELET_EXTRA_ARGS=...`` would be overridden by that file whenever the
  user sets the variable there, so regauth merges into the file instead;
- MicroK8s: ``/var/snap/microk8s/current/args/kubelet``, one ``--flag=value`` per line;
- k3s / RKE2: ``kubelet-arg`` (a list of ``name=value``) in ``/etc/rancher/*/config.yaml``.

Each merge replaces only our two flags (any earlier value of them included) and keeps
every other flag, line and key; the same input gives the same bytes, so a second run
changes nothing and restarts nothing.
"""

import os
import re
import shlex
from typing import Dict, List, Optional

from .documents import dump_document, load_document
from .errors import ApplyError

CONFIG_FLAG = "image-credential-provider-config"
BIN_DIR_FLAG = "image-credential-provider-bin-dir"
MICROK8S_ARGS = "/var/snap/microk8s/current/args/kubelet"

# distribution -> (file, restart spec for files.restart_units)
DISTRIBUTIONS = {
    "kubeadm": ("/etc/default/kubelet", {"units": ["kubelet"]}),
    "microk8s": (MICROK8S_ARGS, {"units": ["snap.microk8s.daemon-kubelite"], "command": ["snap", "restart", "microk8s.daemon-kubelite"]}),
    "k3s": ("/etc/rancher/k3s/config.yaml", {"units": ["k3s", "k3s-agent"]}),
    "rke2": ("/etc/rancher/rke2/config.yaml", {"units": ["rke2-server", "rke2-agent"]}),
}
_EXTRA = re.compile(r"^(\s*)(export\s+)?KUBELET_EXTRA_ARGS=(.*)$")
_PLAIN = re.compile(r"^[A-Za-z0-9_./:=@%+,-]+$")


def detect(root: str) -> str:
    """Which distribution runs kubelet on this node (``auto``)."""
    if os.path.exists(root + MICROK8S_ARGS) or os.path.exists(root + "/snap/microk8s"):
        return "microk8s"
    for name in ("rke2", "k3s"):
        if os.path.isdir(root + "/etc/rancher/" + name) or any(os.path.exists(root + d + "/" + name) for d in ("/usr/local/bin", "/usr/bin", "/opt/rke2/bin")):
            return name
    return "kubeadm"


def flags(config: str, bin_dir: str) -> Dict[str, str]:
    for value in (config, bin_dir):
        if not _PLAIN.match(value):
            raise ApplyError("%r cannot be written as a kubelet flag value (spaces, quotes or shell characters); use a plain path" % value, code="node-cannot-merge")
    return {CONFIG_FLAG: config, BIN_DIR_FLAG: bin_dir}


def _without(args: List[str], names: Dict[str, str]) -> List[str]:
    """``args`` minus every ``--NAME=VALUE`` / ``--NAME VALUE`` of ours (leading dashes optional)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        bare = arg.lstrip("-")
        if bare in names:
            skip = True  # the value is the next argument
            continue
        if bare.split("=", 1)[0] in names:
            continue
        out.append(arg)
    return out


def merge_default_kubelet(existing: Optional[str], wanted: Dict[str, str], shown: str) -> str:
    """``KUBELET_EXTRA_ARGS="..."`` with our flags appended; other lines kept as they are."""
    lines = (existing or "").splitlines()
    ours = ["--%s=%s" % item for item in sorted(wanted.items())]
    for i in reversed(range(len(lines))):  # the shell (and systemd) keep the last assignment
        line = lines[i]
        m = _EXTRA.match(line)
        if not m:
            continue
        try:
            # The shell's (or systemd's EnvironmentFile) quoting first, then the whitespace
            # split that ExecStart's unquoted $KUBELET_EXTRA_ARGS makes.
            args = " ".join(shlex.split(m.group(3), comments=True)).split()
        except ValueError:
            raise ApplyError("%s: KUBELET_EXTRA_ARGS is not a value regauth can read (unbalanced quotes); fix the line" % shown, code="node-config-syntax")
        if any("$" in a or "`" in a for a in args):
            raise ApplyError("%s: KUBELET_EXTRA_ARGS uses shell expansion, which regauth cannot merge into; add %s by hand" % (shown, " ".join(ours)), code="node-cannot-merge")
        merged = _without(args, wanted) + ours
        lines[i] = '%s%sKUBELET_EXTRA_ARGS="%s"' % (m.group(1), m.group(2) or "", " ".join(merged))
        break
    else:
        lines.append('KUBELET_EXTRA_ARGS="%s"' % " ".join(ours))
    return "\n".join(lines) + "\n"


def merge_microk8s_args(existing: Optional[str], wanted: Dict[str, str]) -> str:
    """One ``--flag=value`` per line, ours replacing any earlier line of the same flag."""
    kept = [line for line in (existing or "").splitlines() if _without(line.split(), wanted) == line.split()]
    return "\n".join(kept + ["--%s=%s" % item for item in sorted(wanted.items())]) + "\n"


def merge_rancher_config(existing: Optional[str], wanted: Dict[str, str], shown: str) -> str:
    """``kubelet-arg: [name=value, ...]`` in k3s / RKE2 config.yaml, other keys kept."""
    doc = load_document(existing, shown)
    current = doc.get("kubelet-arg")
    if current is None:
        current = []
    elif isinstance(current, str):
        current = [current]
    elif not isinstance(current, list) or not all(isinstance(a, str) for a in current):
        raise ApplyError("%s: kubelet-arg is not a list of strings; fix or remove it" % shown, code="node-config-shape")
    doc["kubelet-arg"] = _without(current, wanted) + ["%s=%s" % item for item in sorted(wanted.items())]
    return dump_document(doc, shown).decode("utf-8")


def merged(distribution: str, existing: Optional[str], wanted: Dict[str, str], shown: str) -> str:
    if distribution == "kubeadm":
        return merge_default_kubelet(existing, wanted, shown)
    if distribution == "microk8s":
        return merge_microk8s_args(existing, wanted)
    return merge_rancher_config(existing, wanted, shown)
