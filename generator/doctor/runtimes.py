"""Which runtime reads which file on the node, and ``--image`` judged by that.

A credential only helps if the runtime that pulls reads the file holding it:
MicroK8s' containerd reads the snap's ``containerd-template.toml`` (rendered into its
own containerd.toml at every start), never ``/etc/containerd/config.toml``; k3s and
RKE2 read their ``registries.yaml``; a standalone containerd reads
``/etc/containerd/config.toml`` and what it imports; kubelet's ``config.json`` reaches
the runtime over CRI (kubeadm/k3s/RKE2 kubelets; MicroK8s' kubelet has its own root dir).

Runtimes are recognised from the node tree (snap directory, ``/etc/rancher/*``,
binaries and units, the steps of a regauth plan); a standalone containerd is assumed
when ``/etc/containerd`` exists and no other runtime is found (a copied or rendered tree
has no binaries; then any file with the credential counts, as before).  Each runtime
found must have a credential for the host the image is pulled from in a file *it* reads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from generator.doctor.findings import FileReport, Finding
from generator.core.imageref import ImageRef
from generator.doctor.source import Source


@dataclass(frozen=True)
class Runtime:
    short: str  # containerd | microk8s | k3s | rke2
    name: str  # as users call it
    config: str  # the node file holding its registry credentials
    evidence: str  # what in the tree showed it (relative to the node root)
    restart: str
    assumed: bool = False  # no binary, unit or directory of its own: only /etc/containerd was there


# short name, name, config file, evidence (any of these below the node root), restart command
_KNOWN: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    ("microk8s", "MicroK8s", "/var/snap/microk8s/current/args/containerd-template.toml", ("var/snap/microk8s", "snap/microk8s"),
     "snap restart microk8s.daemon-containerd"),
    ("k3s", "k3s", "/etc/rancher/k3s/registries.yaml", ("etc/rancher/k3s", "usr/local/bin/k3s", "var/lib/rancher/k3s", "etc/systemd/system/k3s.service"),
     "systemctl restart k3s (or k3s-agent)"),
    ("rke2", "RKE2", "/etc/rancher/rke2/registries.yaml", ("etc/rancher/rke2", "usr/local/bin/rke2", "usr/bin/rke2", "var/lib/rancher/rke2"),
     "systemctl restart rke2-server (or rke2-agent)"),
    ("containerd", "containerd", "/etc/containerd/config.toml",
     ("usr/bin/containerd", "usr/local/bin/containerd", "usr/sbin/containerd", "lib/systemd/system/containerd.service",
      "usr/lib/systemd/system/containerd.service", "etc/systemd/system/containerd.service"), "systemctl restart containerd"),
)
CRI_KEYS = ("containerd", "k3s", "rke2")  # whose kubelet passes var/lib/kubelet/config.json credentials over CRI


def detect(root: Path) -> list[Runtime]:
    """The runtimes installed (or planned by regauth) in the node tree at ``root``."""
    found: dict[str, Runtime] = {}
    for key, name, config, evidence, restart in _KNOWN:
        hit = next((e for e in evidence if os.path.lexists(root / e)), None)
        if hit:
            found[key] = Runtime(key, name, config, hit, restart)
    plan = root / "etc/regauth/plan.json"
    if plan.is_file():
        try:
            steps = json.loads(plan.read_text(encoding="utf-8")).get("steps") or []
        except (OSError, ValueError, AttributeError):
            steps = []
        for i, step in enumerate(steps if isinstance(steps, list) else []):
            for key, name, config, _, restart in _KNOWN:
                if isinstance(step, dict) and step.get("kind") == key and key not in found:
                    found[key] = Runtime(key, name, config, f"etc/regauth/plan.json steps[{i}]", restart)
    if not found and (root / "etc/containerd").is_dir():
        found["containerd"] = Runtime("containerd", "containerd", "/etc/containerd/config.toml", "etc/containerd", _KNOWN[-1][4], assumed=True)
    return [found[k] for k, *_ in _KNOWN if k in found]


def reads(runtime: Runtime, src: Source) -> bool:
    """Does ``runtime`` read registry credentials from ``src``?"""
    if src.kind == "kubelet":
        return runtime.short in CRI_KEYS
    if runtime.short == "microk8s":
        return src.kind == "microk8s"
    if runtime.short in ("k3s", "rke2"):
        return src.kind == "k3s" and f"/rancher/{runtime.short}/" in src.node_path
    return src.kind == "containerd"


def _covers(report: FileReport) -> bool:
    """The file has a usable credential and its checker found the image's host among them."""
    return bool(report.hosts) and not any(f.code == "image-host" for f in report.findings)


def judge_image(shown_root: str, runtimes: list[Runtime], pairs: list[tuple[Source, FileReport]], image: ImageRef) -> list[str]:
    """Add an image-host finding for each runtime that has no credential for ``image`` in the
    files it reads; returns notes (files no runtime on this node reads)."""
    from generator.doctor import containerd, k3s

    notes: list[str] = []
    unread = [(s, r) for s, r in pairs if s.kind in ("containerd", "microk8s", "k3s", "kubelet") and not any(reads(rt, s) for rt in runtimes)]
    for src, report in unread:
        dropped = [f for f in report.findings if f.code == "image-host"]
        report.findings[:] = [f for f in report.findings if f.code != "image-host"]
        if report.credentials or dropped:
            notes.append(f"{src.shown}: no runtime found on this node ({', '.join(r.name for r in runtimes)}) reads this file, "
                         "so its credentials do not count for --image")
    for runtime in runtimes:
        if runtime.assumed and any(_covers(r) for _, r in pairs):
            continue  # a copied tree with no sign of which runtime pulls: any file with the credential may be the one used
        mine = [(s, r) for s, r in pairs if reads(runtime, s)]
        if any(_covers(r) for _, r in mine) or any(f.code == "image-host" for _, r in mine for f in r.findings):
            continue  # covered, or the file's own checker already said what is missing
        elsewhere = sorted({s.shown for s, r in pairs if r.hosts and (s, r) not in mine
                            and (image.host in r.hosts or image.registry in r.hosts)})
        also = (f"; {' and '.join(elsewhere)} {'has' if len(elsewhere) == 1 else 'have'} credentials for {image.host}, "
                f"but {runtime.name} never reads {'that file' if len(elsewhere) == 1 else 'those files'}") if elsewhere else ""
        primary = next(((s, r) for s, r in mine if s.node_path == runtime.config and s.step is None), None)
        finding: Finding | None = None
        if primary is not None and primary[0].kind in ("containerd", "microk8s"):
            finding = containerd.missing_auth(primary[0], image, runtime.name, runtime.restart, also)
        elif primary is not None and primary[0].kind == "k3s":
            finding = k3s.missing_auth(primary[0], image, runtime.name, runtime.restart, also)
        elif primary is None and not any(s.step is not None for s, _ in mine):
            where = os.path.join(shown_root, runtime.config.lstrip("/"))
            finding = Finding("image-host", where,
                              f"{runtime.name} is on this node ({runtime.evidence}) but {runtime.config} does not exist, so it has no credentials "
                              f"for {image.host}, the host it contacts to pull {image.text}{also}",
                              f"{runtime.name} reads registry credentials only from {runtime.config}; with none the pull goes anonymous "
                              "('failed to fetch anonymous token ... 401/403')",
                              f"create {runtime.config} with credentials for {image.host} (regauth render writes them), then {runtime.restart}")
        if finding is not None:
            report = primary[1] if primary is not None else (mine[0][1] if mine else pairs[0][1])
            report.findings.append(finding)
            report.findings.sort(key=lambda f: (f.line, f.code))
    return notes
