"""k3s / RKE2 ``registries.yaml`` (``/etc/rancher/{k3s,rke2}/registries.yaml``).

k3s reads it at service start and turns it into containerd settings: ``configs``
keyed by the registry or mirror host (``host``, ``host:port`` or a bare ``"*"`` for
every registry), each with ``auth: {username, password, auth, identity_token}`` and
``tls``; ``mirrors`` with ``endpoint`` lists and ``rewrite``.  The YAML is decoded
without strict field checks, so a misspelled key is dropped silently, like in
containerd.  A key JSON pasted into a double-quoted YAML string loses its ``\\n``
escapes to real newlines, exactly as in TOML.
"""

from __future__ import annotations

import re
from typing import Any

from generator.doctor.credentials import StoredCredential, boot_note, check_credential
from generator.doctor.findings import FileReport, Finding
from generator.core.imageref import DOCKER_HUB, ImageRef
from generator.doctor.source import Options, Source, permission_finding
from generator.core.suggest import close_match
from generator.core.hosts import host_problem
from generator.yamlpos import LoadedYaml, format_path, load_yaml

TOP_KEYS = ("mirrors", "configs")
CONFIG_KEYS = ("auth", "tls")
AUTH_KEYS = ("username", "password", "auth", "identity_token", "token")
TLS_KEYS = ("ca_file", "cert_file", "key_file", "insecure_skip_verify")
MIRROR_KEYS = ("endpoint", "rewrite")
_ALIASES = {"identitytoken": "identity_token", "user": "username", "config": "configs", "mirror": "mirrors",
            "endpoints": "endpoint", "ca": "ca_file", "auths": "auth", "credentials": "auth"}
DOCKER_HUB_KEYS = (DOCKER_HUB, "registry-1.docker.io", "index.docker.io")
WHY_DROPPED = "k3s decodes registries.yaml without strict field checks: an unknown key is dropped without a word"
RESTART = "then restart k3s (systemctl restart k3s, or k3s-agent / rke2-server / rke2-agent)"


def check(src: Source, options: Options) -> FileReport:
    report = FileReport(src.shown, src.kind)
    loaded = load_yaml(src.text, src.shown)
    if loaded.problems:
        for p in loaded.problems:
            report.findings.append(
                Finding("syntax", src.shown, p.message, "k3s fails to start (or ignores the file) when registries.yaml does not parse",
                        p.fix or "fix the YAML at this line", line=p.line, col=p.col)
            )
        return report
    doc = loaded.data if loaded.data is not None else {}
    if not isinstance(doc, dict):
        report.findings.append(Finding("syntax", src.shown, "the file is not a mapping with mirrors: and configs:",
                                       "k3s cannot use it", "write mirrors: and configs: at the top level", line=1))
        return report
    checker = _Checker(src, loaded, report)
    checker.run(doc, options.image)
    perm = permission_finding(src, report.credentials)
    if perm:
        report.findings.append(perm)
    return report


class _Checker:
    def __init__(self, src: Source, loaded: LoadedYaml, report: FileReport) -> None:
        self.src, self.loaded, self.report = src, loaded, report
        self.creds: set[str] = set()

    def line(self, path: tuple[object, ...], key: bool = False) -> int:
        if key and path + ("<key>",) in self.loaded.locs:
            return self.loaded.locs[path + ("<key>",)][0]
        return self.loaded.loc(path)[0]

    def add(self, code: str, path: tuple[object, ...], message: str, why: str, fix: str, *, key: bool = True, severity: str = "error") -> None:
        self.report.findings.append(
            Finding(code, self.src.shown, message, why, fix, line=self.line(path, key), path=format_path(path), severity=severity)
        )

    def unknown(self, path: tuple[object, ...], key: str, known: tuple[str, ...]) -> None:
        hint = close_match(key, known, _ALIASES) or ""
        self.add("ignored-key", path + (key,), f"k3s does not know the key '{key}' here" + (f" (did you mean '{hint}'?)" if hint else ""),
                 WHY_DROPPED + ("; the credentials under it are never used" if key in ("auths", "credentials", "config") or key in _ALIASES and _ALIASES[key] in ("auth", "configs") else ""),
                 (f"rename it to {hint}" if hint else "remove it") + f" (valid here: {', '.join(known)}), {RESTART}")

    def run(self, doc: dict[str, Any], image: ImageRef | None) -> None:
        for key in doc:
            if key not in TOP_KEYS:
                self.unknown((), str(key), TOP_KEYS)
        configs = doc.get("configs")
        if isinstance(configs, dict):
            for host, cfg in configs.items():
                self.config(("configs", host), str(host), cfg)
        mirrors = doc.get("mirrors")
        if isinstance(mirrors, dict):
            for host, mirror in mirrors.items():
                self.host_key(("mirrors", host), str(host), mirror=True)
                if isinstance(mirror, dict):
                    for key in mirror:
                        if key not in MIRROR_KEYS:
                            self.unknown(("mirrors", host), str(key), MIRROR_KEYS)
        if image is not None and self.report.credentials:  # files without any credential: see check_sources
            self.image_host(image, mirrors if isinstance(mirrors, dict) else {}, configs)

    def host_key(self, path: tuple[object, ...], host: str, mirror: bool = False) -> bool:
        if host == "*" or host in DOCKER_HUB_KEYS:
            return True
        problem = host_problem(host)
        if problem is None:
            return True
        what = "mirror" if mirror else "credentials"
        hosts = re.findall(r"host: ([^\s,()]+)", problem[1])
        fix = ("use the exact host as the key: " + " or ".join(f'"{h}"' for h in hosts[:2])
               + ("; one entry per host you pull from" if "*" in host else "")) if hosts else problem[1]
        self.add("host-key", path, problem[0].replace("containerd", "k3s"),
                 f"k3s matches {what} by the exact registry host (port included); only a bare \"*\" matches every registry",
                 f"{fix}, {RESTART}")
        return False

    def config(self, path: tuple[object, ...], host: str, cfg: Any) -> None:
        usable = self.host_key(path, host)
        if not isinstance(cfg, dict):
            return
        for key in cfg:
            if key not in CONFIG_KEYS:
                self.unknown(path, str(key), CONFIG_KEYS)
        tls = cfg.get("tls")
        if isinstance(tls, dict):
            for key in tls:
                if key not in TLS_KEYS:
                    self.unknown(path + ("tls",), str(key), TLS_KEYS)
        auth = cfg.get("auth")
        if not isinstance(auth, dict):
            return
        for key in auth:
            if key not in AUTH_KEYS:
                self.unknown(path + ("auth",), str(key), AUTH_KEYS)
        values = {k: auth.get(k) if isinstance(auth.get(k), str) else None for k in AUTH_KEYS}
        lines = {"": self.line(path + ("auth",), key=True)}
        lines.update({k: self.line(path + ("auth", k)) for k in AUTH_KEYS if k in auth})
        lines["identitytoken"] = lines.get("identity_token", lines[""])
        cred = StoredCredential(self.src.shown, host, format_path(path + ("auth",)), values["username"], values["password"],
                                values["auth"], values["identity_token"] or values["token"], lines)
        if cred.present:
            self.report.credentials += 1
            self.report.findings.extend(check_credential(cred))
            note = boot_note(cred)
            if note:
                self.report.notes.append(note)
                self.report.boot_hosts.add(host)
            if usable:
                self.creds.add(host)
                self.report.hosts[host] = lines[""]

    def image_host(self, image: ImageRef, mirrors: dict[str, Any], configs: Any) -> None:
        contacted: list[str] = []
        mirror = mirrors.get(image.registry) or mirrors.get("*")
        if isinstance(mirror, dict):
            for endpoint in mirror.get("endpoint") or []:
                if isinstance(endpoint, str):
                    contacted.append(endpoint.split("://", 1)[-1].split("/", 1)[0])
        contacted += list(DOCKER_HUB_KEYS) if image.registry == DOCKER_HUB else [image.registry]
        if "*" in self.creds or any(h in self.creds for h in contacted):
            return
        has = f"; it has credentials for {', '.join(sorted(self.creds))}" if self.creds else "; it has no usable credentials"
        self.add("image-host", ("configs",), f"no credentials for {contacted[0] if image.registry != DOCKER_HUB else image.registry}, "
                 f"the registry k3s pulls {image.text} from{has}",
                 "k3s looks credentials up by the registry (or mirror endpoint) host; with no match the pull goes anonymous "
                 "('failed to fetch anonymous token ... 401/403')",
                 f"{auth_fix(configs, contacted[0], self.loaded)}, {RESTART}")


def auth_fix(configs: Any, host: str, loaded: LoadedYaml) -> str:
    """How to add credentials for ``host``, never asking for an entry the file already has."""
    def key_line(path: tuple[object, ...]) -> int:
        return loaded.locs.get(path + ("<key>",), loaded.loc(path))[0]

    entry = configs.get(host) if isinstance(configs, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("auth"), dict):
        return f"fill in username and password under the existing configs.{host}.auth (line {key_line(('configs', host, 'auth'))})"
    if isinstance(entry, dict):
        return f"add auth: {{username: ..., password: ...}} under the existing configs.{host} entry (line {key_line(('configs', host))})"
    return f"add configs: {{\"{host}\": {{auth: {{username: ..., password: ...}}}}}}"


def missing_auth(src: Source, image: ImageRef, runtime: str, restart: str, also: str) -> Finding | None:
    """The finding for a runtime whose only config (this file) has no credential for ``image``."""
    loaded = load_yaml(src.text, src.shown)
    if loaded.problems:
        return None
    doc = loaded.data if isinstance(loaded.data, dict) else {}
    mirrors = doc.get("mirrors") if isinstance(doc.get("mirrors"), dict) else {}
    mirror = mirrors.get(image.registry) or mirrors.get("*")
    hosts = [e.split("://", 1)[-1].split("/", 1)[0] for e in (mirror or {}).get("endpoint") or [] if isinstance(e, str)] if isinstance(mirror, dict) else []
    host = (hosts or [image.registry])[0]
    return Finding(
        "image-host", src.shown,
        f"{runtime} reads registry credentials only from this file, and it has none for {host}, the registry it pulls {image.text} from{also}",
        f"{runtime} looks credentials up by the registry (or mirror endpoint) host; with no match the pull goes anonymous "
        "('failed to fetch anonymous token ... 401/403')",
        f"{auth_fix(doc.get('configs'), host, loaded)}, then {restart}",
        line=loaded.loc(("configs",))[0] if "configs" in doc else 1, path="configs",
    )
