"""Docker ``config.json``, Podman/CRI-O ``auth.json`` and kubelet's ``config.json``.

All three share one shape, ``{"auths": {KEY: {"auth": base64("user:password")}}}``,
but match KEY differently, which is where pulls break:

- Docker (``/root/.docker/config.json``): KEY may be a URL (``https://HOST``) and is
  reduced to its host; Docker Hub is looked up as ``https://index.docker.io/v1/``
  (what ``docker login`` writes); no wildcards.
- Podman / CRI-O / skopeo (``containers-auth.json``): KEY is ``host[:port]`` or
  ``host/namespace``; Docker Hub is ``docker.io``; no wildcards.
- kubelet (``/var/lib/kubelet/config.json``): KEY may hold globs (``*.pkg.dev``,
  one label per ``*``), a scheme and a path prefix; kubelet passes the match to the
  runtime over CRI, overriding containerd's own registry auth.
"""

from __future__ import annotations

import json
from typing import Any

from generator.doctor.credentials import StoredCredential, boot_note, check_credential
from generator.doctor.findings import FileReport, Finding
from generator.core.imageref import DOCKER_HUB, ImageRef, kubelet_match
from generator.doctor.locate import Positions, json_positions
from generator.doctor.source import Options, Source, permission_finding

DOCKER_HUB_DOCKER_KEY = "https://index.docker.io/v1/"
ENTRY_FIELDS = ("auth", "username", "password", "identitytoken")
WHO = {"docker": "Docker", "containers-auth": "Podman/CRI-O", "kubelet": "kubelet"}


def check(src: Source, options: Options) -> FileReport:
    report = FileReport(src.shown, src.kind)
    try:
        doc = json.loads(src.text)
    except json.JSONDecodeError as exc:
        report.findings.append(
            Finding("syntax", src.shown, f"not valid JSON: {exc.msg}",
                    f"{WHO[src.kind]} cannot read the file, so no credentials are used (pulls go anonymous)",
                    "fix the JSON at this line (python3 -m json.tool FILE shows where)", line=exc.lineno, col=exc.colno)
        )
        return report
    pos = json_positions(src.text)
    if not isinstance(doc, dict):
        report.findings.append(Finding("syntax", src.shown, "the file is not a JSON object", "no credentials are read", 'write {"auths": {...}}', line=1))
        return report
    auths = doc.get("auths")
    if auths is None:
        _missing_auths(src, doc, pos, report)
    hosts: list[str] = []
    if isinstance(auths, dict):
        for key, entry in auths.items():
            if not isinstance(entry, dict):
                continue
            path = ("auths", key)
            values = {k: entry.get(k) if isinstance(entry.get(k), str) else None for k in ENTRY_FIELDS}
            cred = StoredCredential(src.shown, key, f"auths.{json.dumps(key)}", values["username"], values["password"], values["auth"],
                                    values["identitytoken"], {"": pos.line(path), **{k: pos.line(path + (k,)) for k in ENTRY_FIELDS if k in entry}})
            if not cred.present:
                continue
            report.credentials += 1
            usable = _check_key(src, key, pos.line(path), report)
            report.findings.extend(check_credential(cred))
            note = boot_note(cred)
            if note:
                report.notes.append(note)
                report.boot_hosts.add(key)
            if usable:
                hosts.append(key)
                report.hosts[key] = pos.line(path)
    if options.image is not None and report.credentials:
        _image_host(src, options.image, hosts, pos, report)
    perm = permission_finding(src, report.credentials)
    if perm:
        report.findings.append(perm)
    return report


def _missing_auths(src: Source, doc: dict[str, Any], pos: Positions, report: FileReport) -> None:
    """Host entries at the top level (the old .dockercfg shape) or a misspelled "auths"."""
    for key, value in doc.items():
        if key in ("auth", "Auths", "auth s", "AUTHS") or (isinstance(value, dict) and isinstance(value.get("auth"), str)):
            report.credentials += 1
            report.findings.append(
                Finding("ignored-key", src.shown,
                        f"'{key}' is at the top level" + (" (did you mean \"auths\"?)" if key.lower().startswith("auth") else ""),
                        f"{WHO[src.kind]} reads credentials only from the \"auths\" object, so these are never used",
                        'wrap the entries: {"auths": {"HOST": {"auth": "..."}}}', line=pos.line((key,)), path=key)
            )


def _key_host(key: str) -> str:
    return key.split("://", 1)[-1].split("/", 1)[0]


def _check_key(src: Source, key: str, line: int, report: FileReport) -> bool:
    """Findings for an auths key this runtime never matches; True when it can match."""
    host = _key_host(key)
    who = WHO[src.kind]
    if src.kind != "kubelet" and ("*" in key or "?" in key):
        report.findings.append(
            Finding("host-key", src.shown, f"'{key}' is a wildcard", f"{who} matches credentials by exact registry host; a wildcard key never matches",
                    "write one entry per registry host you pull from, e.g. \"europe-docker.pkg.dev\"", line=line, path=f"auths.{json.dumps(key)}")
        )
        return False
    if src.kind == "docker" and host in (DOCKER_HUB, "registry-1.docker.io"):
        report.findings.append(
            Finding("host-key", src.shown, f"Docker Hub credentials are stored under '{key}'",
                    f"Docker looks Docker Hub credentials up under \"{DOCKER_HUB_DOCKER_KEY}\" (what docker login writes), so this entry is not used for Docker Hub pulls",
                    f"rename the key to \"{DOCKER_HUB_DOCKER_KEY}\" (or run docker login)", line=line, path=f"auths.{json.dumps(key)}", severity="warning")
        )
        return False
    if src.kind == "containers-auth" and host in ("registry-1.docker.io", "index.docker.io"):
        report.findings.append(
            Finding("host-key", src.shown, f"Docker Hub credentials are stored under '{key}'",
                    "Podman, CRI-O and skopeo look Docker Hub credentials up as \"docker.io\"; this entry never matches",
                    "rename the key to \"docker.io\"", line=line, path=f"auths.{json.dumps(key)}")
        )
        return False
    return True


def _matches(kind: str, key: str, image: ImageRef) -> bool:
    if kind == "kubelet":
        return kubelet_match(key, image)
    host = _key_host(key)
    if kind == "docker":
        if image.registry == DOCKER_HUB:
            return key.rstrip("/") in (DOCKER_HUB_DOCKER_KEY.rstrip("/"), "index.docker.io/v1", "index.docker.io") or host == "index.docker.io"
        return host == image.registry
    # containers-auth: host, or host/namespace prefix of the repository
    name = f"{image.registry}/{image.repository}"
    bare = key.split("://", 1)[-1].rstrip("/")
    return bare == image.registry or name == bare or name.startswith(bare + "/")


def _image_host(src: Source, image: ImageRef, hosts: list[str], pos: Positions, report: FileReport) -> None:
    if any(_matches(src.kind, key, image) for key in hosts):
        return
    who = WHO[src.kind]
    want = DOCKER_HUB_DOCKER_KEY if (src.kind == "docker" and image.registry == DOCKER_HUB) else image.registry
    report.findings.append(
        Finding("image-host", src.shown, f"no entry matches {image.registry}, the registry of {image.text}; the file has {', '.join(hosts) or 'no usable entries'}",
                f"{who} finds no credentials for the image, so the pull goes anonymous", f"add \"auths\": {{\"{want}\": {{\"auth\": \"...\"}}}}",
                line=pos.line(("auths",)) or 1, path="auths")
    )
