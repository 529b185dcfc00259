"""kubelet's ``CredentialProviderConfig`` and what makes kubelet actually use it.

A provider config does nothing by itself: kubelet reads it only when started with
``--image-credential-provider-config=PATH`` and runs each provider as
``BIN_DIR/NAME`` from ``--image-credential-provider-bin-dir``; an image whose host no
``matchImages`` entry covers never reaches the provider.  So besides the file itself,
doctor reads the kubelet flag files each distribution uses (the same table regauth
writes them with, :mod:`generator.node.kubeletflags`) when it checks a node root.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from generator.core.imageref import kubelet_match
from generator.doctor.findings import FileReport, Finding
from generator.doctor.source import Options, Source
from generator.node.kubeletflags import BIN_DIR_FLAG, CONFIG_FLAG, DISTRIBUTIONS

API_VERSION = "kubelet.config.k8s.io/v1"
# Where kubelet's flags can be given, beyond regauth's table: RPM-based kubeadm nodes.
EXTRA_FLAG_FILES = ("/etc/sysconfig/kubelet",)


def node_root(path: Path) -> Path | None:
    """The node's "/" for a config at .../etc/kubernetes/NAME (None: a loose file)."""
    d = path.resolve().parent
    if d.name == "kubernetes" and d.parent.name == "etc":
        return d.parent.parent
    return None


def kubelet_flags(root: Path) -> dict[str, tuple[str, str]]:
    """flag name -> (value, file it was found in), from every flag file on the node."""
    found: dict[str, tuple[str, str]] = {}
    for path in [p for p, _ in DISTRIBUTIONS.values()] + list(EXTRA_FLAG_FILES):
        try:
            text = (root / path.lstrip("/")).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for token in _tokens(path, text):
            if token[:1].isupper() and "=" in token:
                token = token.split("=", 1)[1]  # KUBELET_EXTRA_ARGS=--first-flag
            name, _, value = token.lstrip("-").partition("=")
            if name in (CONFIG_FLAG, BIN_DIR_FLAG) and value:
                found[name] = (value, path)
    return found


def _tokens(path: str, text: str) -> list[str]:
    if path.endswith("config.yaml"):
        try:
            import yaml

            doc = yaml.safe_load(text)
        except Exception:
            return []
        args = doc.get("kubelet-arg") if isinstance(doc, dict) else None
        return [a for a in (args if isinstance(args, list) else [args]) if isinstance(a, str)]
    try:  # KUBELET_EXTRA_ARGS="--a --b": shell words, then ExecStart's whitespace split
        return [word for token in shlex.split(text, comments=True) for word in token.split()]
    except ValueError:
        return text.split()


def check(src: Source, options: Options) -> FileReport:
    report = FileReport(src.shown, src.kind)
    doc = _load(src, report)
    if doc is None:
        return report
    providers = [p for p in doc.get("providers") or [] if isinstance(p, dict) and isinstance(p.get("name"), str)]
    report.credentials = len(providers)
    root = node_root(src.real)
    if root is not None:
        _check_flags(src, root, providers, report)
    if options.image is not None and providers:
        image = options.image
        if not any(isinstance(m, str) and kubelet_match(m, image) for p in providers for m in p.get("matchImages") or []):
            names = ", ".join(p["name"] for p in providers)
            report.findings.append(
                Finding("image-host", src.shown, f"no matchImages entry of {names} covers {image.registry}, the registry of {image.text}",
                        "kubelet runs a provider only for images its matchImages match, so this pull gets no provider credentials",
                        f"add \"{image.registry}\" to matchImages (regauth: list the host under registries:)", line=1, path="providers")
            )
    return report


def _load(src: Source, report: FileReport) -> dict[str, Any] | None:
    try:
        doc = json.loads(src.text)
    except ValueError:
        import yaml

        try:
            doc = yaml.safe_load(src.text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            report.findings.append(Finding("syntax", src.shown, "not valid YAML", "kubelet refuses to start with a config it cannot parse",
                                           "fix the YAML at this line", line=mark.line + 1 if mark else 1))  # fmt: skip
            return None
    if not isinstance(doc, dict) or doc.get("kind") != "CredentialProviderConfig" or doc.get("apiVersion") != API_VERSION:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        report.findings.append(Finding("syntax", src.shown, f"not a {API_VERSION} CredentialProviderConfig (kind {kind!r})",
                                       "kubelet refuses to start when --image-credential-provider-config names a file of another kind",
                                       f"apiVersion: {API_VERSION}, kind: CredentialProviderConfig, providers: [...]", line=1))  # fmt: skip
        return None
    return doc


def _flags_left_to_the_user(root: Path) -> bool:
    """The tree's own plan (a rendered rootfs, or a node regauth set up) says regauth was
    told not to write kubelet's flags (``kubelet_flags: none``, the default for
    ``type: gcp``, whose plan has no such field): then they live where the user's tooling puts them, which doctor
    cannot see, and their absence here is not a finding."""
    import json

    try:
        plan = json.loads((root / "etc/regauth/plan.json").read_text())
    except (OSError, ValueError):
        return False
    steps = plan.get("steps") if isinstance(plan, dict) else None
    return any(isinstance(s, dict) and s.get("kind") == "kubelet" and isinstance(s.get("provider"), dict)
               and s["provider"].get("kubelet_flags", "none") == "none" for s in steps or [])  # fmt: skip


def _check_flags(src: Source, root: Path, providers: list[dict[str, Any]], report: FileReport) -> None:
    flags = kubelet_flags(root)
    on_node = "/" + src.real.resolve().relative_to(root.resolve()).as_posix()
    config = flags.get(CONFIG_FLAG)
    if config is None and _flags_left_to_the_user(root):
        return
    if config is None or config[0] != on_node:
        said = f"it names {config[0]} (in {config[1]})" if config else "none of " + ", ".join([p for p, _ in DISTRIBUTIONS.values()] + list(EXTRA_FLAG_FILES)) + " sets it"
        report.findings.append(
            Finding("provider-flags", src.shown, f"kubelet is not started with --{CONFIG_FLAG}={on_node}: {said}",
                    "kubelet reads a CredentialProviderConfig only from that flag, so none of these providers runs",
                    f"add --{CONFIG_FLAG}={on_node} and --{BIN_DIR_FLAG}=DIR where the distribution reads kubelet flags (regauth: credential_provider.kubelet_flags), then restart kubelet",
                    line=1, severity="warning")  # the flags may live in a unit file doctor does not read
        )
        return
    bin_dir = flags.get(BIN_DIR_FLAG)
    if bin_dir is None:
        report.findings.append(
            Finding("provider-flags", src.shown, f"--{CONFIG_FLAG} is set (in {config[1]}) but --{BIN_DIR_FLAG} is not",
                    "kubelet cannot find the provider programs and refuses to start", f"add --{BIN_DIR_FLAG}=DIR next to it", line=1)
        )
        return
    for provider in providers:
        binary = f"{bin_dir[0].rstrip('/')}/{provider['name']}"
        full = root / binary.lstrip("/")
        if not (full.is_file() and os.access(full, os.X_OK)):
            what = "is not executable" if full.exists() else "does not exist"
            report.findings.append(
                Finding("provider-binary", src.shown, f"{binary} {what} (provider {provider['name']})",
                        "kubelet runs BIN_DIR/NAME for every matching image; the pull fails with 'exec: ... no such file or permission denied'",
                        "install it there with mode 0755 (regauth ships regauth-credential-provider with regauth-apply)", line=1, path=f"providers.{provider['name']}")
            )
