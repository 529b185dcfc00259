"""``etc/regauth/plan.json``: the credentials regauth-apply gives each runtime at boot.

A tree written by ``regauth render`` (``out/NAME/rootfs/``) holds the plan, and a
preview of each runtime file the apply step writes on an empty node, except where
the file only exists on a real node: the MicroK8s template comes with the snap, so
there is nothing to preview.  There, and for a kubelet credential provider (no stored
credential at all), the plan step stands in for the runtime's file: doctor checks the
credentials the step carries (a build-time key must load) and judges ``--image``
against its hosts.  A step whose file is in the tree is checked through that file.

Only what every plan format has is read (step ``kind``, ``path``, ``registries`` with
``host``/``username``/``password``/``password_from``/``keys``/``mirror_for``), so the
reader stays valid while the node program's plan grows.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any

from generator.doctor.credentials import StoredCredential, boot_note, check_credential
from generator.doctor.findings import FileReport, Finding
from generator.doctor.locate import json_positions
from generator.doctor.source import Options, Source
from generator.targets.base import BOOT_MASK

PLAN_PATH = "etc/regauth/plan.json"
# plan step kind -> the doctor kind of the file that runtime reads
FILE_KIND = {"containerd": "containerd", "microk8s": "microk8s", "k3s": "k3s", "rke2": "k3s", "docker": "docker",
             "podman": "containers-auth", "crio": "containers-auth", "kubelet": "kubelet"}
RUNTIME_NAME = {"containerd": "containerd", "microk8s": "MicroK8s", "k3s": "k3s", "rke2": "RKE2", "docker": "Docker",
                "podman": "Podman", "crio": "CRI-O", "kubelet": "kubelet"}


def _step_file(step: dict[str, Any]) -> str:
    """The node file a step writes (kubelet: config.json, or its credential provider config)."""
    provider = step.get("provider") if isinstance(step.get("provider"), dict) else {}
    for value in (step.get("path"), step.get("config_json"), provider.get("config")):
        if isinstance(value, str) and value.startswith("/"):
            return value
    return ""


def add_sources(root: Path, shown_root: str, sources: list[Source]) -> list[str]:
    """Add one source per plan step whose file is not in the tree; returns notes."""
    path = root / PLAN_PATH
    if not path.is_file():
        return []
    from generator.doctor.discover import classify  # (discover imports this module lazily)

    shown = os.path.join(shown_root, PLAN_PATH)
    try:
        text = path.read_text(encoding="utf-8")
        steps = json.loads(text).get("steps")
    except (OSError, ValueError, AttributeError) as exc:
        return [f"{shown}: not read ({type(exc).__name__}); the runtime files themselves are checked"]
    if not isinstance(steps, list):
        return []
    mode = path.stat().st_mode
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or step.get("kind") not in FILE_KIND:
            continue
        node_file = _step_file(step)
        if not node_file:
            continue
        if (root / node_file.lstrip("/")).exists() and classify(node_file.lstrip("/")) is not None:
            continue  # checked as the file itself
        sources.append(Source(shown, path, FILE_KIND[step["kind"]], text, mode, root, node_file, step=index))
    return []


def check(src: Source, options: Options) -> FileReport:
    """The credentials one plan step gives its runtime (its file is not in the tree)."""
    assert src.step is not None
    step = json.loads(src.text)["steps"][src.step]
    runtime = RUNTIME_NAME[step["kind"]]
    report = FileReport(src.shown, src.kind)
    in_tree = src.root is not None and (src.root / src.node_path.lstrip("/")).exists()
    report.notes.append(f"{src.shown}: steps[{src.step}]: {runtime}: "
                        + ("doctor does not read " + src.node_path if in_tree else
                           f"{src.node_path} is not in this tree (regauth-apply merges into it on the node at boot)")
                        + "; the plan's credentials are checked instead")
    pos = json_positions(src.text)
    provider = step.get("provider") if isinstance(step.get("provider"), dict) else None
    if provider is not None:
        entry = provider.get("entry") if isinstance(provider.get("entry"), dict) else {}
        patterns = [p for p in entry.get("matchImages") or [] if isinstance(p, str)]
        report.notes.append(f"{src.shown}: steps[{src.step}]: kubelet gets credentials from its credential provider "
                            f"({provider.get('config', '')}) for {', '.join(patterns) or 'no image pattern'}; nothing is stored on the node")
        report.hosts.update({p: pos.line(("steps", str(src.step), "provider")) for p in patterns})
    registries = step.get("registries") if isinstance(step.get("registries"), list) else []
    for j, entry in enumerate(registries):
        if not isinstance(entry, dict) or not isinstance(entry.get("host"), str):
            continue
        at = ("steps", str(src.step), "registries", str(j))
        password = entry.get("password") if isinstance(entry.get("password"), str) else (BOOT_MASK if "password_from" in entry else None)
        cred = StoredCredential(src.shown, entry["host"], f"steps[{src.step}].registries[{j}]",
                                entry.get("username") if isinstance(entry.get("username"), str) else None, password,
                                lines={"": pos.line(at), "username": pos.line(at + ("username",)), "password": pos.line(at + ("password",))})
        if not cred.present:
            continue
        report.credentials += 1
        report.findings.extend(check_credential(cred))
        note = boot_note(cred)
        if note:
            report.notes.append(note)
            report.boot_hosts.add(entry["host"])
        for key in entry.get("keys") or [entry["host"]]:
            if isinstance(key, str):
                report.hosts[key] = pos.line(at)
        if isinstance(entry.get("mirror_for"), str):
            report.hosts.setdefault(entry["mirror_for"], pos.line(at))  # pulls of that registry go to this mirror
    if options.image is not None and report.hosts and not covers(report, options.image.registry, options.image.host):
        report.findings.append(
            Finding("image-host", src.shown,
                    f"the plan gives {runtime} credentials for {', '.join(sorted(report.hosts))} only; {options.image.text} is pulled from {options.image.host}",
                    f"{runtime} looks credentials up by that exact host; with no match the pull goes anonymous ('failed to fetch anonymous token ... 401/403')",
                    f"add a registry with host: {options.image.host} to the profile and render again (or check the image name)",
                    line=pos.line(("steps", str(src.step))), path=f"steps[{src.step}]")
        )
    return report


def covers(report: FileReport, registry: str, host: str) -> bool:
    """True when one of the report's host keys matches (kubelet-style globs allowed)."""
    return any(key in (registry, host) or fnmatch.fnmatchcase(host, key) for key in report.hosts)
