"""containerd ``config.toml`` (versions 1-4) and the MicroK8s ``containerd-template.toml``.

containerd reads registry credentials from exactly one table, chosen by the file's
own ``version`` (1: ``plugins.cri``, 2: ``plugins."io.containerd.grpc.v1.cri"``, 3/4:
``plugins."io.containerd.cri.v1.images"``), under ``registry.configs."HOST".auth``
where HOST is the exact host it contacts.  Everything else is dropped without an
error (``containerd config dump`` accepts unknown keys; 2.x only logs "Ignoring
unknown key in TOML for plugin"), so a typo or the wrong table means the pull goes
anonymous.  Measured with containerd 1.6.20, 1.7.24 and 2.1.9 (see the system tests):

- a version 2 file naming ``plugins.cri``: 1.6 refuses to start ("invalid plugin key
  URI"), 2.1 ignores the table;
- a version 1 file: 1.x reads ``plugins.cri``; 2.1 migrates it but drops its registry;
- a v2 table name in a version 3 file: 2.1 ignores it;
- ``configs."HOST".tls`` and mirror ``rewrite`` do not exist in 2.x; ``registry.auths``
  is still read by 1.6-2.1 but deprecated;
- 1.x keeps backslash escapes in "quoted" ``[table]`` header keys, 2.x unescapes them: the
  file is parsed by the node's reader as the release that loads it does
  (:mod:`generator.doctor.containerd_release`), so a host key means what it means there.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from generator.doctor.containerd_release import Release, known, read_as
from generator.doctor.credentials import StoredCredential, boot_note, check_credential
from generator.doctor.findings import FileReport, Finding
from generator.core.imageref import DOCKER_HUB, ImageRef
from generator.doctor.locate import KeyPath, Positions, toml_path_text, toml_positions
from generator.doctor.source import Options, Source, permission_finding
from generator.node.containerd import CONTAINERD_AUTH_TABLE, version_mismatch
from generator.node.containerd_imports import header_escapes, read
from generator.node.tomlparse import Document, TOMLError
from generator.node.tomltext import toml_key
from generator.node.microk8s import PLACEHOLDER
from generator.core.suggest import close_match
from generator.core.hosts import host_problem

# The plugin table each config version reads registry auth from: the node's map.
AUTH_ROOT = {version: table[:2] for version, table in CONTAINERD_AUTH_TABLE.items()}
CRI_V1, CRI_V2, IMAGES_V3 = AUTH_ROOT[1], AUTH_ROOT[2], AUTH_ROOT[3]
ROOT_VERSION = {CRI_V1: 1, CRI_V2: 2, IMAGES_V3: 3}

REGISTRY_KEYS = ("config_path", "mirrors", "configs", "auths", "headers")
CONFIG_KEYS = {1: ("auth", "tls"), 2: ("auth", "tls"), 3: ("auth",), 4: ("auth",)}
AUTH_KEYS = ("username", "password", "auth", "identitytoken")
TLS_KEYS = ("insecure_skip_verify", "ca_file", "cert_file", "key_file")
MIRROR_KEYS = ("endpoint",)
_CRED_MARKERS = ("username", "password", "identitytoken", "identity_token")
# Misspellings seen in the wild, beyond what difflib finds.
_ALIASES = {"identity_token": "identitytoken", "user": "username", "pass": "password", "token": "identitytoken",
            "ca": "ca_file", "cert": "cert_file", "key": "key_file", "skip_verify": "insecure_skip_verify",
            "endpoints": "endpoint", "config": "configs", "mirror": "mirrors", "auths": "auth"}

WHY_ANON = "containerd never reads it, so no credentials are sent and the pull goes anonymous ('failed to fetch anonymous token ... 401/403')"
MICROK8S_VARS = PLACEHOLDER


def check(src: Source, options: Options) -> FileReport:
    """Every finding in one containerd config (or MicroK8s template), read as the
    containerd release that loads it reads it (the node's reader; see containerd_release)."""
    report = FileReport(src.shown, src.kind)
    try:
        parsed = read(src.text, read_as(src.release)[0])
    except TOMLError as exc:
        report.findings.append(
            Finding("syntax", src.shown, f"not valid TOML: {exc.reason}",
                    "containerd refuses to start with this file ('failed to load TOML'), and nothing in it is read",
                    "fix the syntax at this line (quote keys with dots: configs.\"europe-docker.pkg.dev\"); "
                    "check with: containerd --config FILE config dump", line=exc.line, col=exc.col)
        )
        return report
    doc = parsed.value
    release = known(src.release, doc.get("version"))
    escaped = header_escape(src.shown, parsed, release)
    checker = _Checker(src, doc, toml_positions(parsed), report)
    if escaped is not None:
        report.findings.append(escaped[0])
        if release is not None:  # 1.x: the escape is the key's whole problem, no host-key finding on top
            checker.reported.append(escaped[1])
    version = doc.get("version", 1)
    mismatch = version_mismatch(release, version) if release is not None and isinstance(version, int) else None
    if mismatch:
        checker.add("config-version-release", ("version",), f"a version {version} config, and this node runs containerd {release[0]}.{release[1]}",
                    f"{mismatch}, so registry settings written for 2.x are not used",
                    "write the config for this release (version = 2; `containerd config default` prints one), or upgrade "
                    "containerd to 2.x; then restart containerd")
    checker.run(options.image)
    report.credentials = _count_credentials(doc)
    report.hosts = {host: checker.pos.line(path) for host, path in checker.creds.items()}
    perm = permission_finding(src, report.credentials)
    if perm:
        report.findings.append(perm)
    return report


def header_escape(shown: str, parsed: Document, release: Release | None) -> tuple[Finding, KeyPath] | None:
    """A "quoted" [table] header key with a backslash escape: containerd 1.x keeps it as
    written, 2.x unescapes it (generator.node.containerd_imports.header_escapes), so the
    table's name depends on the release.  One finding per file, at the first such header
    (with the key path up to that key, as read); none when the file is known to be read by 2.x."""
    if release is not None and header_escapes(release[0]):
        return None
    for stmt in parsed.statements:
        if stmt.kind not in ("header", "aot"):
            continue
        for index, key in enumerate(stmt.keys):
            written = parsed.text[key.start:key.end]
            if not (written.startswith('"') and "\\" in written):
                continue
            plain = toml_key(_unescaped(written))
            if release is None:
                message = f"the [table] header key {written} has a backslash escape, which containerd 1.x and 2.x read differently"
                why = (f"containerd 2.x unescapes it (TOML 1.0) and reads {plain}; containerd 1.x keeps the escape as written, so there "
                       "the table has another name and its settings (a host's registry auth) are never used for that host")
                fix = f"write the key with its plain characters: {plain} (or pass --containerd-version to check for the release the node runs)"
            else:
                message = f"the [table] header key {written} has a backslash escape, which containerd {release[0]}.x keeps as written"
                why = (f"containerd 1.x (go-toml v1) does not unescape keys in [table] headers, so this table is not named {plain} "
                       "there and its settings (a host's registry auth) are never used for that host; 2.x would unescape it")
                fix = f"write the key with its plain characters: {plain}"
            return Finding("header-escape", shown, message, why, fix, line=parsed.line_col(stmt.start)[0],
                           path=toml_path_text(stmt.path), severity="warning" if release is None else "error"), stmt.path[: index + 1]
    return None


def _unescaped(written: str) -> str:
    """A basic-string key as TOML 1.0 reads it (the node's reader, on a one-line document)."""
    return read(written + " = 0", 2).value.popitem()[0]


def _dig(tree: Any, path: KeyPath) -> Any:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _has_content(tree: Any) -> bool:
    """True when a registry subtree says anything (stock files ship empty tables and config_path = "")."""
    if isinstance(tree, dict):
        return any(_has_content(v) for v in tree.values())
    if isinstance(tree, (list, str)):
        return bool(tree)
    return tree is not None


def _suggest(key: str, known: tuple[str, ...]) -> str:
    return close_match(key, known, _ALIASES) or ""


def _hosts_in_fix(host: str) -> list[str]:
    problem = host_problem(host)
    return re.findall(r"host: ([^\s,()]+)", problem[1]) if problem else []


class _Checker:
    def __init__(self, src: Source, doc: dict[str, Any], pos: Positions, report: FileReport) -> None:
        self.src, self.doc, self.pos, self.report = src, doc, pos, report
        self.reported: list[KeyPath] = []  # subtrees already explained (no second finding inside)
        version = doc.get("version", 1)
        self.version = version if isinstance(version, int) else 0
        self.root = AUTH_ROOT.get(self.version)
        self.creds: dict[str, KeyPath] = {}  # host -> path of a readable auth table

    # -- helpers -------------------------------------------------------------
    def add(self, code: str, path: KeyPath, message: str, why: str, fix: str, *, severity: str = "error", line: int | None = None) -> None:
        self.report.findings.append(
            Finding(code, self.src.shown, message, why, fix, line=self.pos.line(path) if line is None else line,
                    path=toml_path_text(path) if path else "", severity=severity)
        )
        self.reported.append(path)

    def covered(self, path: KeyPath) -> bool:
        return any(path[: len(p)] == p for p in self.reported)

    # -- the checks ----------------------------------------------------------
    def run(self, image: ImageRef | None) -> None:
        if self.root is None:
            self.add("syntax", ("version",), f"version = {self.doc.get('version')!r} is not a containerd config version",
                     "containerd refuses to start ('expected containerd config version equal to or less than ...')",
                     "write version = 2 for containerd 1.x or version = 3 for containerd 2.x")
            return
        for other in (CRI_V1, CRI_V2, IMAGES_V3):
            if other != self.root:
                self.wrong_table(other)
        registry = _dig(self.doc, self.root + ("registry",))
        if isinstance(registry, dict):
            self.registry(registry)
        if self.version == 1 and self.creds:
            first = min(self.creds.values(), key=self.pos.line)
            self.add("config-version-1", ("version",) if "version" in self.doc else first,
                     "a version 1 config (`version = 1`, or no version line) holds the registry credentials under plugins.cri",
                     "containerd 1.x reads it, but containerd 2.x migrates version 1 files and drops plugins.cri registry "
                     "settings (measured with 2.1.9), so after an upgrade pulls go anonymous",
                     'put version = 2 at the top and rename every [plugins.cri...] table to [plugins."io.containerd.grpc.v1.cri"...] '
                     "(containerd 1.3 or newer)", severity="warning")
        self.stray_credentials(self.doc, ())
        if self.src.kind == "microk8s":
            self.microk8s_values()
        if image is not None and _count_credentials(self.doc):  # files without any credential: see check_sources
            self.image_host(image, registry if isinstance(registry, dict) else {})

    def wrong_table(self, other: KeyPath) -> None:
        registry = _dig(self.doc, other + ("registry",))
        if not isinstance(registry, dict) or not _has_content(registry):
            return
        assert self.root is not None
        path = other + ("registry",)
        hosts = sorted((registry.get("configs") or {}).keys()) if isinstance(registry.get("configs"), dict) else []
        where = f" (credentials for {', '.join(hosts)})" if hosts else ""
        target = toml_path_text(self.root + ("registry",))
        fix = f"move them under [{target}...], e.g. [{target}.configs.\"HOST\".auth]"
        if self.version == 2 and other == CRI_V1:
            why = ("a version 2 file names plugins by their full id: containerd 1.x refuses to start "
                   "('invalid plugin key URI \"cri\"'), containerd 2.x ignores the table and pulls go anonymous")
        elif self.version == 2 and other == IMAGES_V3:
            why = ("only containerd 2.x reads this table (it migrates version 2 files and keeps it); containerd 1.x has "
                   "no such plugin and ignores it, so on 1.x pulls go anonymous")
            fix += "; on a containerd 2.x node instead convert the whole file: containerd config migrate > config.toml.new (version 3)"
        elif self.version == 1:
            why = ("in a version 1 file containerd 1.x reads plugins by their short name (plugins.cri) and ignores "
                   "full-id tables; containerd 2.x drops this one too, so pulls go anonymous")
            fix += " (or set version = 2 if every plugin table in the file uses full ids)"
        else:
            why = (f"containerd reads registry settings of a version {self.version} file only from [{target}]; "
                   "this table is ignored (2.x logs 'Ignoring unknown key in TOML for plugin'), so pulls go anonymous")
        self.add("wrong-table", path, f"registry settings under the table for version {ROOT_VERSION[other]} files in a version {self.version} file{where}",
                 why, fix, line=self.pos.first_line(path))

    def unknown_key(self, path: KeyPath, key: str, known: tuple[str, ...], extra_why: str = "") -> None:
        hint = _suggest(key, known)
        fix = (f"rename it to {hint}" if hint else "remove it") + f" (valid here: {', '.join(known)})"
        self.add("ignored-key", path + (key,), f"containerd does not know the key '{key}' here" + (f" (did you mean '{hint}'?)" if hint else ""),
                 (extra_why or "containerd silently drops unknown keys (no error, not even in `config dump`)")
                 + ("; the credentials below it are never sent" if _count_credentials(_dig(self.doc, path + (key,))) else ""),
                 fix)

    def registry(self, registry: dict[str, Any]) -> None:
        assert self.root is not None
        base = self.root + ("registry",)
        for key in registry:
            if key not in REGISTRY_KEYS:
                self.unknown_key(base, key, REGISTRY_KEYS)
        config_path = registry.get("config_path")
        configs = registry.get("configs")
        if isinstance(configs, dict):
            for host, cfg in configs.items():
                self.config_entry(base + ("configs", host), host, cfg, bool(config_path))
        mirrors = registry.get("mirrors")
        if config_path and _has_content(mirrors):
            self.add("config-path-conflict", base + ("mirrors",), "registry.mirrors is set together with config_path",
                     "containerd refuses the combination: the CRI plugin does not load ('mirrors' cannot be set when "
                     "'config_path' is provided), so kubelet cannot pull at all", "move each mirror to "
                     f"{config_path}/HOST/hosts.toml and delete the mirrors tables, or remove config_path",
                     line=self.pos.first_line(base + ("mirrors",)))
        if isinstance(mirrors, dict):
            for host, mirror in mirrors.items():
                if isinstance(mirror, dict):
                    for key in mirror:
                        if key not in MIRROR_KEYS:
                            self.unknown_key(base + ("mirrors", host), key, MIRROR_KEYS)
        auths = registry.get("auths")
        if _has_content(auths) and isinstance(auths, dict):
            for url, auth in auths.items():
                path = base + ("auths", url)
                self.add("deprecated-auths", path, f"credentials for '{url}' are in registry.auths (deprecated, keyed by URL)",
                         "still read by containerd 1.6-2.1 (measured) but deprecated and due for removal; the supported table is "
                         "registry.configs, keyed by the exact host", f"move them to [{toml_path_text(base)}.configs.\"{_bare(url)}\".auth]",
                         severity="warning", line=self.pos.first_line(path))
                if isinstance(auth, dict):
                    self.credential(path, _bare(url), auth)
                    if _looks_like_creds(auth, known_only=True):
                        self.creds.setdefault(_bare(url), path)

    def config_entry(self, path: KeyPath, host: str, cfg: Any, config_path: bool) -> None:
        if host in ("auth", "tls"):
            self.add("host-key", path, f"the host is missing: '{host}' sits directly under registry.configs",
                     WHY_ANON, f"write [{toml_path_text(path[:-1])}.\"HOST\".{host}] with the exact registry host, e.g. \"europe-docker.pkg.dev\"")
            return
        if isinstance(cfg, dict) and self.unquoted_host(path, host, cfg):
            return
        problem = None if self.covered(path) else host_problem(host)
        if problem:
            hosts = _hosts_in_fix(host)
            example = " or ".join(f"[{toml_path_text(path[:-1] + (h, 'auth'))}]" for h in hosts[:2]) or problem[1]
            more = "; one table per host you pull from" if ("*" in host or "?" in host) else ""
            self.add("host-key", path, problem[0],
                     "containerd sends a credential only when its key equals the host it contacts, byte for byte (port included)",
                     f"use the exact host: {example}{more}")
        if not isinstance(cfg, dict):
            return
        known = CONFIG_KEYS[self.version]
        for key in cfg:
            if key == "tls" and "tls" not in known:
                self.add("ignored-key", path + ("tls",), "configs.\"HOST\".tls does not exist in containerd 2.x",
                         "containerd 2.x ignores it, so the registry's CA/client certificate is not used ('x509: certificate signed by unknown authority')",
                         "set config_path = \"/etc/containerd/certs.d\" under the registry table and put the CA in "
                         f"/etc/containerd/certs.d/{host}/hosts.toml (ca = \"/path/ca.crt\")")
            elif key not in known:
                self.unknown_key(path, key, known)
        if "tls" in known and isinstance(cfg.get("tls"), dict):
            if config_path:
                self.add("config-path-conflict", path + ("tls",), "configs.\"HOST\".tls is set together with config_path",
                         "containerd 1.x then fails to load the CRI plugin (containerd keeps running, kubelet gets UNIMPLEMENTED); "
                         "containerd 2.x ignores the tls table", f"move the TLS settings to {host}/hosts.toml under config_path "
                         "(ca = ..., client = ...) and delete this table")
            for key in cfg["tls"]:
                if key not in TLS_KEYS:
                    self.unknown_key(path + ("tls",), key, TLS_KEYS)
        auth = cfg.get("auth")
        if isinstance(auth, dict):
            for key in auth:
                if key not in AUTH_KEYS:
                    self.unknown_key(path + ("auth",), key, AUTH_KEYS)
            self.credential(path + ("auth",), host, auth)
            if not problem and _looks_like_creds(auth, known_only=True):
                self.creds[host] = path + ("auth",)

    def unquoted_host(self, path: KeyPath, host: str, cfg: dict[str, Any]) -> bool:
        """[...configs.europe-docker.pkg.dev.auth]: TOML splits an unquoted host at its dots."""
        if "auth" in cfg or "tls" in cfg or len(cfg) != 1:
            return False
        parts, node = [host], cfg
        while isinstance(node, dict) and len(node) == 1 and "auth" not in node:
            key = next(iter(node))
            parts.append(key)
            node = node[key]
        if not (isinstance(node, dict) and isinstance(node.get("auth"), dict)):
            return False
        whole = ".".join(parts)
        self.add("host-key", path, f"the host {whole} is not quoted, so TOML reads it as nested tables {' -> '.join(parts)}",
                 "containerd sees a registry named '" + host + "' with unknown keys and drops them, so the pull goes anonymous",
                 f"quote the host: [{toml_path_text(path[:-1] + (whole, 'auth'))}]")
        self.credential(path + tuple(parts[1:]) + ("auth",), whole, node["auth"])
        return True

    def credential(self, path: KeyPath, host: str, auth: dict[str, Any]) -> None:
        values = {k: auth.get(k) if isinstance(auth.get(k), str) else None for k in AUTH_KEYS}
        cred = StoredCredential(
            self.src.shown, host, toml_path_text(path), values["username"], values["password"], values["auth"],
            values["identitytoken"], {"": self.pos.line(path), **{k: self.pos.line(path + (k,)) for k in AUTH_KEYS if k in auth}},
        )
        if cred.present:
            self.report.findings.extend(check_credential(cred))
            note = boot_note(cred)
            if note:
                self.report.notes.append(note)
                self.report.boot_hosts.add(host)
        self.reported.append(path)

    def stray_credentials(self, tree: Any, path: KeyPath) -> None:
        """Credentials anywhere containerd does not read them (typos in any table name)."""
        if not isinstance(tree, dict) or self.covered(path):
            return
        if path and _looks_like_creds(tree):
            assert self.root is not None
            expected = self.root + ("registry", "configs", "HOST", "auth")
            wrong = _first_mismatch(path, expected)
            detail = ""
            if wrong is not None:
                detail = f": '{path[wrong]}' should be '{expected[wrong]}'" if wrong < len(expected) and expected[wrong] != "HOST" else ""
            self.add("ignored-key", path, "credentials in a table containerd never reads" + detail,
                     f"containerd {'1.x' if self.version < 3 else '2.x'} reads registry credentials of a version {self.version} file only from "
                     f"[{toml_path_text(self.root + ('registry', 'configs'))}.\"HOST\".auth]; " + WHY_ANON,
                     f"move username/password to [{toml_path_text(self.root + ('registry', 'configs'))}.\"HOST\".auth]")
            return
        for key, value in tree.items():
            self.stray_credentials(value, path + (key,))

    def microk8s_values(self) -> None:
        """MicroK8s renders the template with sed over ${SNAP}, ${SNAP_DATA}, ... at every start.

        sed sees the file's text, not TOML values: a ``$`` written as the TOML escape
        ``\\u0024`` (what regauth's microk8s target writes) is safe, a literal ``${NAME}`` is not.
        """
        lines = self.src.text.splitlines()
        for host, path in sorted(self.creds.items()):
            auth = _dig(self.doc, path) or {}
            for key in ("password", "auth", "identitytoken", "username"):
                line = self.pos.line(path + (key,)) if key in auth else 0
                raw = lines[line - 1].split("=", 1)[-1] if 0 < line <= len(lines) else ""
                if MICROK8S_VARS.search(raw):
                    self.add("snap-substitution", path + (key,), f"the {key} for {host} contains a literal '${{NAME}}'",
                             "MicroK8s renders containerd-template.toml into containerd.toml by substituting ${SNAP}, ${SNAP_DATA} "
                             "and friends with sed at every start, so the credential containerd gets differs from the one written here",
                             "write each '$' of the value as the TOML escape \\u0024 (sed cannot see it; TOML reads '$'), "
                             "or use a credential without '${' (Artifact Registry's _json_key_base64 never contains '$')")

    def image_host(self, image: ImageRef, registry: dict[str, Any]) -> None:
        contacted = _contacted_hosts(image, registry)
        if any(h in self.creds for h in contacted):
            return
        assert self.root is not None
        configs_path = self.root + ("registry", "configs")
        near = [h for h in self.creds if _bare(h).split(":")[0] == image.host.split(":")[0]]
        configs = registry.get("configs") if isinstance(registry.get("configs"), dict) else {}
        near += [h for h in configs if image.host in _hosts_in_fix(h) or (("*" in h or "?" in h) and fnmatch.fnmatchcase(image.host, h))]
        hint = f" (there is one for {', '.join(sorted(set(near)))}, which is not the same key)" if near else ""
        has = f"; it has credentials for {', '.join(sorted(self.creds))}" if self.creds else "; it has no credentials containerd would use"
        cfg_path = registry.get("config_path")
        mirror_note = (f" If {cfg_path}/{image.registry}/hosts.toml sends pulls to a mirror, the key is the mirror's host." if cfg_path else "")
        self.add("image-host", configs_path, f"no credentials for {' or '.join(contacted)}, the host containerd contacts to pull {image.text}{hint}{has}",
                 "containerd looks credentials up by that exact host; with no match the pull goes anonymous "
                 "('failed to fetch anonymous token ... 401/403')" + mirror_note,
                 f"{auth_fix(self.doc, self.root, contacted[0], self.pos)}, then restart containerd",
                 line=self.pos.first_line(configs_path) or self.pos.first_line(self.root) or 1)


def auth_fix(doc: dict[str, Any], root: KeyPath, host: str, pos: Positions) -> str:
    """How to add credentials for ``host``, never asking for a table the file already has."""
    entry = root + ("registry", "configs", host)
    auth_table = toml_path_text(entry + ("auth",))
    existing = _dig(doc, entry)
    if isinstance(existing, dict) and isinstance(existing.get("auth"), dict):
        return f"put username and password into the existing [{auth_table}] table (line {pos.line(entry + ('auth',))})"
    if isinstance(existing, dict):
        return f"add username and password under [{auth_table}] (the entry for {host} exists at line {pos.first_line(entry)} but has no auth table)"
    return f"add [{auth_table}] with username and password"


def missing_auth(src: Source, image: ImageRef, runtime: str, restart: str, also: str) -> Finding | None:
    """The finding for a runtime whose only config (this file) has no credential for ``image``."""
    try:
        parsed = read(src.text, read_as(src.release)[0])
    except TOMLError:
        return None  # the syntax finding says why nothing in it is read
    doc = parsed.value
    version = doc.get("version", 1)
    root = AUTH_ROOT.get(version if isinstance(version, int) else 0)
    if root is None:
        return None
    pos = toml_positions(parsed)
    registry = _dig(doc, root + ("registry",))
    contacted = _contacted_hosts(image, registry if isinstance(registry, dict) else {})
    configs_path = root + ("registry", "configs")
    return Finding(
        "image-host", src.shown,
        f"{runtime} reads registry credentials only from this file, and it has none for {' or '.join(contacted)}, "
        f"the host it contacts to pull {image.text}{also}",
        f"{runtime} looks credentials up by that exact host in this file; with no match the pull goes anonymous "
        "('failed to fetch anonymous token ... 401/403')",
        f"{auth_fix(doc, root, contacted[0], pos)}, then {restart}",
        line=pos.first_line(configs_path) or pos.first_line(root) or 1, path=toml_path_text(configs_path),
    )


def _contacted_hosts(image: ImageRef, registry: dict[str, Any]) -> list[str]:
    """Hosts containerd talks to for ``image``: mirror endpoints (from this file) then the registry."""
    hosts: list[str] = []
    mirrors = registry.get("mirrors") if isinstance(registry.get("mirrors"), dict) else {}
    mirror = mirrors.get(image.registry) or (mirrors.get(image.host) if image.registry == DOCKER_HUB else None) or mirrors.get("*")
    if isinstance(mirror, dict):
        for endpoint in mirror.get("endpoint") or []:
            if isinstance(endpoint, str):
                hosts.append(_bare(endpoint))
    if image.host not in hosts:
        hosts.append(image.host)
    return hosts


def _bare(url: str) -> str:
    """host[:port] of a URL or host string."""
    return url.split("://", 1)[-1].split("/", 1)[0]


def _first_mismatch(path: KeyPath, pattern: KeyPath) -> int | None:
    """Index of the first component of ``path`` that differs from ``pattern`` ("HOST" matches any)."""
    for i, part in enumerate(path):
        if i >= len(pattern):
            return i
        if pattern[i] != "HOST" and part != pattern[i]:
            return i
    return None if len(path) == len(pattern) else len(path)


def _count_credentials(tree: Any) -> int:
    """Credential-looking tables anywhere in the file (for the permission check)."""
    if not isinstance(tree, dict):
        return 0
    return (1 if _looks_like_creds(tree) else 0) + sum(_count_credentials(v) for v in tree.values())


def _looks_like_creds(tree: Any, known_only: bool = False) -> bool:
    if not isinstance(tree, dict):
        return False
    markers = AUTH_KEYS if known_only else _CRED_MARKERS + ("auth",)
    return any(isinstance(tree.get(k), str) and tree.get(k) for k in markers)
