"""Load and validate a profile file, collecting every problem before giving up.

The checks here are structural and need no secrets; checks on secret *content*
(service-account key shape) run after secrets are resolved, in
:mod:`generator.secrets.resolve`, and point back here through ``Located``.  A
profile with structural errors still has its file/env secrets checked here, so
users see every problem in one run.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from generator.errors import InvalidInput, Problem
from generator.messages import inputs as M
from generator.core.hosts import host_problem, is_google_registry
from generator.profile.model import (
    AUTH_TYPES,
    CLOUDS,
    COMPRESS_MODES,
    PROGRAM_SOURCES,
    GCP_USERNAMES,
    PROFILE_VERSION,
    DEFAULT_PACKER_SOURCES,
    VM_IDENTITY,
    VM_IDENTITY_USERNAME,
    AuthSpec,
    OutputOptions,
    PackerOptions,
    Profile,
    Registry,
    SecretSpec,
)
from generator.core.suggest import close_match
from generator.profile.checker import Checker, kind_of as _kind
from generator.profile.routes import check_route
from generator.yamlpos import load_yaml
from generator.core.keylike import looks_like_key

TOP_KEYS = ("version", "description", "targets", "secrets", "registries", "output", "refresh")
REFRESH_RE = re.compile(r"^([1-9][0-9]*)(m|h|d)$")
MIN_REFRESH = 300
OUTPUT_KEYS = ("cloud", "compress", "program", "program_url", "packer")
# Query parameters that make output.program_url a bearer credential: S3/GCS signed URLs
# (V4 and V2) and Azure SAS tokens.  Such a URL also expires; user-data lives for years.
SIGNED_URL_PARAMS = frozenset({"x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature", "x-goog-credential",
                               "signature", "sig", "access_token", "token"})
PACKER_KEYS = ("sources", "bake_secret")
REGISTRY_KEYS = ("host", "auth", "mirror_for", "path", "tls")
AUTH_KEYS = ("type", "secret", "username")
_SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HCL_ID = r"[A-Za-z_][A-Za-z0-9_-]*"
PACKER_SOURCE_RE = re.compile(rf"^source\.{_HCL_ID}\.{_HCL_ID}$")
MAX_PROFILE_BYTES = 1024 * 1024


# Who knows the runtimes (``generator.targets.TARGETS``: name -> module with OPTION_KEYS,
# parse, check, ...) and the secret sources (who parse their own secrets: block) sit above this
# layer: the caller passes them in (generator/profiles.py wires them), so profile/ never
# imports targets/ or secrets/.
Runtimes = Mapping[str, Any]
KeyProblems = Callable[[Profile], "list[Problem]"]


class SecretBlock(Protocol):
    """What profile loading asks a secret source (``generator.secrets.sources.SOURCES``):
    the keys its block may have, and the block parsed (problems reported to ``c``)."""

    keys: tuple[str, ...]

    def parse(self, c: Checker, block: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None: ...


Sources = Mapping[str, SecretBlock]  # source: value -> its parser


def load_profile(path: Path, runtimes: Runtimes, sources: Sources, key_problems: KeyProblems | None = None) -> Profile:
    """Read, parse and validate ``path``; raise InvalidInput listing every problem."""
    profile, problems = check_profile(path, runtimes, sources, key_problems)
    errors = [p for p in problems if p.severity == "error"]
    if errors or profile is None:
        raise InvalidInput(problems)
    return profile


def check_profile(path: Path, runtimes: Runtimes, sources: Sources, key_problems: KeyProblems | None = None) -> tuple[Profile | None, list[Problem]]:
    """Like :func:`load_profile` but returns problems (errors and warnings) instead of raising.

    ``runtimes`` is the registry of targets, ``sources`` the secret sources; ``key_problems(profile)`` the offline secret
    checks run when the profile has other errors (all problems at once)."""
    filename = str(path)
    try:
        if path.stat().st_size > MAX_PROFILE_BYTES:
            return None, [M.PROFILE_TOO_LARGE.problem(filename, kib=MAX_PROFILE_BYTES // 1024)]
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, [M.PROFILE_MISSING.problem(filename)]
    except IsADirectoryError:
        return None, [M.PROFILE_IS_DIRECTORY.problem(filename)]
    except PermissionError:
        return None, [M.PROFILE_UNREADABLE.problem(filename)]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [M.PROFILE_NOT_UTF8.problem(filename, line=line)]
    loaded = load_yaml(text, filename)
    if loaded.data is None and loaded.problems:
        return None, loaded.problems
    checker = Checker(loaded, filename)
    profile = _check_document(checker, loaded.data, path, runtimes, sources)
    broken = any(p.severity == "error" for p in checker.problems)
    if broken and profile is not None and profile.registries and key_problems is not None:
        # All problems at once: the keys of every validly defined secret are checked
        # now, so fixing the other errors does not reveal a key error on the next run.
        checker.problems.extend(p for p in key_problems(profile) if p not in checker.problems)
    checker.problems.sort(key=lambda p: (p.line, p.col))
    return (None if broken else profile), checker.problems


def _check_document(c: Checker, doc: Any, path: Path, runtimes: Runtimes, sources: Sources) -> Profile | None:
    if doc is None:
        c.report(M.PROFILE_EMPTY, ())
        return None
    doc = c.mapping(doc, (), "the profile", "version: 1\nregistries: [...]")
    if doc is None:
        return None
    c.keys(doc, TOP_KEYS, (), required=("version", "targets"))
    if "version" in doc and doc["version"] != PROFILE_VERSION:
        c.report(M.PROFILE_VERSION, ("version",), version=doc["version"], want=PROFILE_VERSION)
    description = doc.get("description") if isinstance(doc.get("description"), str) else ""
    secrets = _check_secrets(c, doc.get("secrets", {}), path, sources)
    # Names declared under secrets: count as defined even when their spec has its own
    # error, so one mistake is not reported twice.
    declared = set(doc["secrets"]) if isinstance(doc.get("secrets"), dict) else set()
    registries, keyed = _check_registries(c, doc.get("registries"), secrets, declared, path.parent)
    targets = _check_targets(c, doc.get("targets"), runtimes)
    _check_targets_against_registries(c, targets, registries, doc.get("registries"), runtimes)
    output = _check_output(c, doc.get("output"))
    refresh = _check_refresh(c, doc, registries, secrets) if "refresh" in doc else None
    # With errors this is a partial profile (only for checking its secrets): every
    # registry whose auth is valid, even one whose host is not.
    broken = any(p.severity == "error" for p in c.problems)
    return Profile(
        name=path.stem,
        file=path,
        registries=tuple(keyed if broken else registries),
        secrets=secrets,
        targets=targets,
        output=output,
        description=description,
        refresh=refresh,
    )


def _check_refresh(c: Checker, doc: dict, registries: list[Registry], secrets: dict[str, SecretSpec]) -> int | None:
    """``refresh: 1h``: how often the node re-fetches boot-time secrets and re-applies."""
    value = doc["refresh"]
    m = REFRESH_RE.match(value) if isinstance(value, str) else None
    if m is None:
        c.report(M.REFRESH_FORMAT, ("refresh",), shown=_kind(value) if not isinstance(value, str) else repr(value))
        return None
    seconds = int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds < MIN_REFRESH:
        c.report(M.REFRESH_TOO_OFTEN, ("refresh",), value=value)
        return None
    boot = [r.host for r in registries if r.auth.secret in secrets and secrets[r.auth.secret].fetch == "boot" and secrets[r.auth.secret].source == "gcp-secret-manager"]
    if not boot:
        c.report(M.REFRESH_NOTHING, ("refresh",))
    return seconds


def _check_output(c: Checker, value: Any) -> OutputOptions:
    if value is None:
        return OutputOptions()
    m = c.mapping(value, ("output",), "output", "output:\n  cloud: gce\n  compress: auto")
    if m is None:
        return OutputOptions()
    c.keys(m, OUTPUT_KEYS, ("output",))
    program = c.choice(m, "program", ("output",), PROGRAM_SOURCES, "user-data")
    return OutputOptions(
        cloud=c.choice(m, "cloud", ("output",), CLOUDS, "gce"),
        compress=c.choice(m, "compress", ("output",), COMPRESS_MODES, "auto"),
        program=program,
        program_url=_check_program_url(c, m, program),
        packer=_check_packer(c, m.get("packer"), ("output", "packer"), "packer" in m),
    )


def _check_program_url(c: Checker, m: dict, program: str) -> str | None:
    """``output.program_url``: given exactly when ``program: url``; an http(s) URL with a
    host and no credential (user-data, the manifest, argv and logs would show it)."""
    if program != "url":
        if "program_url" in m:
            c.report(M.PROGRAM_URL_UNUSED, ("output", "program_url"), at_key=True, program=program)
        return None
    if "program_url" not in m:
        c.report(M.PROGRAM_URL_MISSING, ("output", "program"))
        return None
    url = c.string(m, "program_url", ("output",))
    if url is None:
        return None
    # Credentials first, from the raw text, so that no later message quotes one.
    authority = url.partition("://")[2].partition("/")[0].partition("?")[0]
    signed = sorted({name for name, _ in parse_qsl(url.partition("?")[2].partition("#")[0], keep_blank_values=True) if name.lower() in SIGNED_URL_PARAMS})
    if "@" in authority or signed:
        what = f"a signed URL's credential ({', '.join(signed)})" if signed else "user:password@ before its host"
        c.report(M.PROGRAM_URL_CREDENTIAL, ("output", "program_url"), what=what, expires=", and it expires" if signed else "")
        return None
    try:
        parts = urlsplit(url)
        parts.port  # raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(ch.isspace() for ch in url):
        c.report(M.PROGRAM_URL_BAD, ("output", "program_url"), url=url)
        return None
    return url


def _check_packer(c: Checker, value: Any, p: tuple, given: bool) -> PackerOptions:
    """``output.packer``: literal source references (Packer 1.6 takes no variables there).

    ``given``: the profile names output.packer (even empty), so it uses Packer output.
    """
    if value is None:
        return PackerOptions(at=c.at(p, key=True) if given else None)
    example = "packer:\n  sources: [source.googlecompute.golden]\n  bake_secret: false"
    m = c.mapping(value, p, "output.packer", example)
    if m is None:
        return PackerOptions()
    c.keys(m, PACKER_KEYS, p)
    sources = DEFAULT_PACKER_SOURCES
    raw = m.get("sources", list(DEFAULT_PACKER_SOURCES))
    if not isinstance(raw, list) or not raw:
        shown = raw if isinstance(raw, str) and PACKER_SOURCE_RE.match(raw) else "source.googlecompute.golden"
        c.report(M.PACKER_SOURCES, p + ("sources",), kind=_kind(raw), shown=shown)
    else:
        seen: set[str] = set()
        for i, item in enumerate(raw):
            q = p + ("sources", i)
            if not isinstance(item, str):
                c.report(M.PACKER_SOURCE_TYPE, q, kind=_kind(item))
            elif not PACKER_SOURCE_RE.match(item):
                bare = re.match(rf"^{_HCL_ID}\.{_HCL_ID}$", item)
                fix = f"write source.{item}" if bare else 'write source.TYPE.NAME as in your template\'s source "TYPE" "NAME" block, e.g. source.googlecompute.golden (a literal: Packer 1.6 accepts no variables in sources)'
                c.report(M.PACKER_SOURCE, q, source=item, fix=fix)
            elif item in seen:
                c.report(M.PACKER_SOURCE_TWICE, q, source=item)
            else:
                seen.add(item)
        sources = tuple(raw)
    bake = m.get("bake_secret")
    if "bake_secret" in m and not isinstance(bake, bool):
        c.report(M.PACKER_BAKE, p + ("bake_secret",), kind=_kind(bake))
        bake = None
    return PackerOptions(sources=sources, bake_secret=bake, at=c.at(p, key=True))


def _check_targets(c: Checker, value: Any, runtimes: Runtimes) -> dict[str, object]:
    if value is None:
        return {}
    example = 'targets:\n  containerd:\n    version: "1.7"'
    targets = c.mapping(value, ("targets",), "targets", example)
    if targets is None:
        return {}
    c.keys(targets, tuple(runtimes), ("targets",))
    if not targets:
        c.report(M.NO_TARGET, ("targets",), example=example)
    parsed: dict[str, object] = {}
    for name in runtimes:  # in the registry's order, importing only the runtimes named
        if name not in targets:
            continue
        module = runtimes[name]
        p = ("targets", name)
        raw = targets[name]
        m = c.mapping({} if raw is None else raw, p, f"targets.{name}", module.EXAMPLE)
        if m is None:
            continue
        c.keys(m, module.OPTION_KEYS, p, required=module.REQUIRED_KEYS)
        options = module.parse(c, m, p)
        if options is not None:
            parsed[name] = options
    return parsed


def _check_targets_against_registries(c: Checker, targets: dict[str, object], registries: list[Registry], raw: Any, runtimes: Runtimes) -> None:
    """Checks that need both: a target's optional ``check`` hook, and 'no registries'
    (allowed only when every target works without stored credentials, e.g. kubelet's
    credential provider)."""
    for name, options in targets.items():
        check = getattr(runtimes[name], "check", None)
        if check is not None:
            check(c, options, registries, ("targets", name))
    static = [n for n, o in targets.items() if not getattr(runtimes[n], "serves_tokens", lambda o: False)(o)]
    for reg in registries:
        if reg.auth.type == VM_IDENTITY and static:
            where = ", ".join(f"targets.{n}" for n in static)
            c.report(M.VM_IDENTITY_STATIC, _registry_path(raw, reg.host) + ("auth", "type"), where=where, s="s" if len(static) == 1 else "")
    if raw in (None, []) and (not targets or any(getattr(runtimes[n], "needs_registries", lambda o: True)(o) for n, o in targets.items())):
        c.report(M.NO_REGISTRIES, ("registries",) if raw is not None else (), what="no registries" if raw is not None else "missing required key 'registries'")


def _registry_path(raw: Any, host: str) -> tuple:
    """The YAML path of the registry entry for ``host`` (for messages after parsing)."""
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        if isinstance(item, dict) and item.get("host") == host:
            return ("registries", i)
    return ("registries",)


def _check_registries(c: Checker, value: Any, secrets: dict[str, SecretSpec], declared: set[str], base: Path = Path(".")) -> tuple[list[Registry], list[Registry]]:
    """The valid registries, and every registry whose auth is valid (for key checks)."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        c.report(M.REGISTRIES_NOT_LIST, ("registries",), kind=_kind(value))
        return [], []
    out: list[Registry] = []
    keyed: list[Registry] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        p = ("registries", i)
        m = c.mapping(item, p, "a registry", "- host: europe-docker.pkg.dev\n  auth: {type: gcp-service-account, secret: gar-key}")
        if m is None:
            continue
        c.keys(m, REGISTRY_KEYS, p, required=("host", "auth"))
        host = m.get("host")
        if "host" in m:
            problem = host_problem(host)
            if problem:
                c.report(M.REGISTRY_HOST[problem.kind], p + ("host",), text=problem.text, fix=problem.fix)
            elif host in seen:
                c.report(M.REGISTRY_TWICE, p + ("host",), host=host, first=seen[host])
            else:
                seen[host] = i
        auth = _check_auth(c, m.get("auth"), p + ("auth",), secrets, declared) if "auth" in m else None
        mirror_for, route_path, tls = check_route(c, m, p, base)
        if auth is not None and auth.type == VM_IDENTITY:
            _check_vm_identity_host(c, host, mirror_for, p)
        if auth is not None:
            registry = Registry(host=host if isinstance(host, str) else "", auth=auth, at=c.at(p), mirror_for=mirror_for, path=route_path, tls=tls)
            keyed.append(registry)
            if isinstance(host, str) and host_problem(host) is None:
                out.append(registry)
    return out, keyed


def _check_vm_identity_host(c: Checker, host: Any, mirror_for: str | None, p: tuple) -> None:
    """Warn (not refuse) when a VM-identity token goes to a registry that is not Google's:
    the token is only accepted by Google registries, but a test registry or a proxy in
    front of Artifact Registry may accept it too, and the profile cannot know."""
    if mirror_for is not None:
        c.report(M.VM_IDENTITY_MIRROR, p + ("mirror_for",))
    elif isinstance(host, str) and host_problem(host) is None and not is_google_registry(host):
        c.report(M.VM_IDENTITY_NOT_GOOGLE, p + ("host",), host=host)


def _check_auth(c: Checker, value: Any, p: tuple, secrets: dict[str, SecretSpec], declared: set[str]) -> AuthSpec | None:
    m = c.mapping(value, p, "auth", "auth:\n  type: gcp-service-account\n  secret: gar-key")
    if m is None:
        return None
    if m.get("type") == VM_IDENTITY:
        return _check_vm_identity_auth(c, m, p)
    c.keys(m, AUTH_KEYS, p, required=("type", "secret"))
    kind = c.choice(m, "type", p, AUTH_TYPES, "") if "type" in m else ""
    secret = c.string(m, "secret", p)
    if secret is not None and secret not in declared:
        close = close_match(secret, sorted(declared))
        hint = f"did you mean '{close}'?" if close else f"define it under secrets:, e.g.\nsecrets:\n  {secret}:\n    source: file\n    path: {secret}.json"
        c.report(M.NO_SUCH_SECRET, p + ("secret",), secret=secret, hint=hint)
    username = m.get("username")
    if looks_like_key(username):
        c.report(M.KEY_AS_USERNAME, p + ("username",), username=username)  # Problem shows a description, not the value
        return None
    if kind == "gcp-service-account":
        if username is None:
            username = "_json_key_base64"
        elif username == "oauth2accesstoken":
            c.report(M.USERNAME_OAUTH2, p + ("username",))
        elif username not in GCP_USERNAMES:
            c.report(M.USERNAME_GCP, p + ("username",), username=username)
    elif kind == "basic":
        if username is None:
            c.report(M.USERNAME_MISSING, p)
        elif not isinstance(username, str) or not username:
            c.report(M.USERNAME_EMPTY, p + ("username",))
        elif ":" in username:
            c.report(M.USERNAME_COLON, p + ("username",))
        elif _unprintable(username):
            c.report(M.USERNAME_CONTROL, p + ("username",), char=_unprintable(username))
    if not kind or secret is None or secret not in secrets or not isinstance(username, str):
        return None
    return AuthSpec(type=kind, secret=secret, username=username, at=c.at(p))


def _check_vm_identity_auth(c: Checker, m: dict, p: tuple) -> AuthSpec | None:
    """``{type: gcp-vm-identity}``: keyless; the username is fixed and no secret exists."""
    c.keys(m, AUTH_KEYS, p, required=("type",))
    if "secret" in m:
        c.report(M.VM_IDENTITY_SECRET, p + ("secret",))
    if m.get("username", VM_IDENTITY_USERNAME) != VM_IDENTITY_USERNAME:
        c.report(M.VM_IDENTITY_USERNAME, p + ("username",), username=VM_IDENTITY_USERNAME)
    # Returned even after a problem (which fails the profile anyway), so that the checks
    # that need the registry (host, targets) report in the same run.
    return AuthSpec(type=VM_IDENTITY, secret=None, username=VM_IDENTITY_USERNAME, at=c.at(p))


def _unprintable(text: str) -> str:
    """The first control, line-separator or surrogate character of ``text`` as U+XXXX ('' if none)."""
    import unicodedata

    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            return f"U+{ord(ch):04X}"
    return ""


def _check_secrets(c: Checker, value: Any, profile_path: Path, sources: Sources) -> dict[str, SecretSpec]:
    if value is None or value == {}:
        return {}
    m = c.mapping(value, ("secrets",), "secrets", "secrets:\n  gar-key:\n    source: file\n    path: gar-key.json")
    if m is None:
        return {}
    out: dict[str, SecretSpec] = {}
    for name, spec in m.items():
        p = ("secrets", name)
        if not _SECRET_NAME_RE.match(str(name)):
            c.report(M.SECRET_NAME, p, at_key=True, name=name)
            continue
        s = c.mapping(spec, p, f"secret '{name}'", "gar-key:\n  source: file\n  path: gar-key.json")
        if s is None:
            continue
        if "source" not in s:
            misspelled = next((k for k in s if close_match(str(k), ("source",))), None)
            if misspelled is None:
                c.report(M.SECRET_NO_SOURCE, p, sources=", ".join(sources))
                continue
            c.keys({misspelled: None}, ("source",), p)  # "unknown key, did you mean 'source'?" only
            s["source"] = s.pop(misspelled)
        source = c.choice(s, "source", p, tuple(sources), "")
        if not source:
            continue
        c.keys(s, sources[source].keys, p)
        spec_obj = sources[source].parse(c, s, p, str(name), profile_path)
        if spec_obj is not None:
            out[str(name)] = spec_obj
    return out
