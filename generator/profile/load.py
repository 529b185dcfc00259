"""Load and validate a profile file, collecting every problem before giving up.

The checks here are structural and need no secrets; checks on secret *content*
(service-account key shape) run after secrets are resolved, in
:mod:`generator.secrets.resolve`, and point back here through ``Located``.  A
profile with structural errors still has its file/env secrets checked here, so
users see every problem in one run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from generator.errors import InvalidInput, Problem
from generator.profile.hosts import host_problem, is_google_registry
from generator.profile.model import (
    AUTH_TYPES,
    CLOUDS,
    COMPRESS_MODES,
    FETCH_MODES,
    GCP_USERNAMES,
    PROFILE_VERSION,
    SECRET_SOURCES,
    DEFAULT_PACKER_SOURCES,
    VM_IDENTITY,
    VM_IDENTITY_USERNAME,
    AuthSpec,
    GsmSpec,
    OutputOptions,
    PackerOptions,
    Profile,
    Registry,
    SecretSpec,
)
from generator.profile.checker import Checker, close_match, kind_of as _kind
from generator.profile.routes import check_route
from generator.profile.yamlpos import load_yaml
from generator.secrets.keylike import looks_like_key

TOP_KEYS = ("version", "description", "targets", "secrets", "registries", "output", "refresh")
REFRESH_RE = re.compile(r"^([1-9][0-9]*)(m|h|d)$")
MIN_REFRESH = 300
OUTPUT_KEYS = ("cloud", "compress", "packer")
PACKER_KEYS = ("sources", "bake_secret")
REGISTRY_KEYS = ("host", "auth", "mirror_for", "path", "tls")
AUTH_KEYS = ("type", "secret", "username")
SECRET_KEYS = {
    "file": ("source", "path"),
    "env": ("source", "var"),
    "gcp-secret-manager": ("source", "name", "project", "secret", "version", "fetch", "credentials_file", "endpoint"),
}
_SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GSM_NAME_RE = re.compile(r"^projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)$")
_GSM_VERSION_RE = re.compile(r"^([1-9][0-9]*|latest)$")
_GSM_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[0-9]+$")
_HCL_ID = r"[A-Za-z_][A-Za-z0-9_-]*"
PACKER_SOURCE_RE = re.compile(rf"^source\.{_HCL_ID}\.{_HCL_ID}$")
MAX_PROFILE_BYTES = 1024 * 1024


def load_profile(path: Path) -> Profile:
    """Read, parse and validate ``path``; raise InvalidInput listing every problem."""
    profile, problems = check_profile(path)
    errors = [p for p in problems if p.severity == "error"]
    if errors or profile is None:
        raise InvalidInput(problems)
    return profile


def check_profile(path: Path) -> tuple[Profile | None, list[Problem]]:
    """Like :func:`load_profile` but returns problems (errors and warnings) instead of raising."""
    filename = str(path)
    try:
        if path.stat().st_size > MAX_PROFILE_BYTES:
            return None, [Problem(filename, f"the profile is larger than {MAX_PROFILE_BYTES // 1024} KiB", "split it into several profiles")]
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(filename, "no such profile file", "check the path (profiles live in profiles/NAME.yaml)")]
    except IsADirectoryError:
        return None, [Problem(filename, "this is a directory, not a profile file", "name a .yaml file, or the files in it: DIR/*.yaml")]
    except PermissionError:
        return None, [Problem(filename, "permission denied reading the profile", "make it readable by the user running regauth")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(filename, "the profile is not UTF-8 text", "save it as UTF-8", line=line)]
    loaded = load_yaml(text, filename)
    if loaded.data is None and loaded.problems:
        return None, loaded.problems
    checker = Checker(loaded, filename)
    profile = _check_document(checker, loaded.data, path)
    broken = any(p.severity == "error" for p in checker.problems)
    if broken and profile is not None and profile.registries:
        # All problems at once: the keys of every validly defined secret are checked
        # now, so fixing the other errors does not reveal a key error on the next run.
        from generator.secrets.resolve import local_problems

        checker.problems.extend(p for p in local_problems(profile) if p not in checker.problems)
    checker.problems.sort(key=lambda p: (p.line, p.col))
    return (None if broken else profile), checker.problems


def _check_document(c: Checker, doc: Any, path: Path) -> Profile | None:
    if doc is None:
        c.add((), "the profile is empty", "start from profiles/demo.yaml")
        return None
    doc = c.mapping(doc, (), "the profile", "version: 1\nregistries: [...]")
    if doc is None:
        return None
    c.keys(doc, TOP_KEYS, (), required=("version", "targets"))
    if "version" in doc and doc["version"] != PROFILE_VERSION:
        c.add(("version",), f"unsupported profile version {doc['version']!r}", f"write version: {PROFILE_VERSION}")
    description = doc.get("description") if isinstance(doc.get("description"), str) else ""
    secrets = _check_secrets(c, doc.get("secrets", {}), path)
    # Names declared under secrets: count as defined even when their spec has its own
    # error, so one mistake is not reported twice.
    declared = set(doc["secrets"]) if isinstance(doc.get("secrets"), dict) else set()
    registries, keyed = _check_registries(c, doc.get("registries"), secrets, declared, path.parent)
    targets = _check_targets(c, doc.get("targets"))
    _check_targets_against_registries(c, targets, registries, doc.get("registries"))
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
        c.add(("refresh",), f"refresh must be an interval such as 30m, 1h or 1d, not {_kind(value) if not isinstance(value, str) else repr(value)}", "write refresh: 1h")
        return None
    seconds = int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds < MIN_REFRESH:
        c.add(("refresh",), f"refresh every {value} would ask Secret Manager more often than rotation needs", "write refresh: 5m or longer (1h is plenty for key rotation)")
        return None
    boot = [r.host for r in registries if r.auth.secret in secrets and secrets[r.auth.secret].fetch == "boot" and secrets[r.auth.secret].source == "gcp-secret-manager"]
    if not boot:
        c.add(("refresh",), "no registry uses a fetch: boot secret, so a refresh would re-apply the same render-time credentials",
              "remove refresh:, or keep the key in Secret Manager with fetch: boot so nodes pick up rotations", severity="warning")  # fmt: skip
    return seconds


def _check_output(c: Checker, value: Any) -> OutputOptions:
    if value is None:
        return OutputOptions()
    m = c.mapping(value, ("output",), "output", "output:\n  cloud: gce\n  compress: auto")
    if m is None:
        return OutputOptions()
    c.keys(m, OUTPUT_KEYS, ("output",))
    return OutputOptions(
        cloud=c.choice(m, "cloud", ("output",), CLOUDS, "gce"),
        compress=c.choice(m, "compress", ("output",), COMPRESS_MODES, "auto"),
        packer=_check_packer(c, m.get("packer"), ("output", "packer"), "packer" in m),
    )


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
        c.add(p + ("sources",), f"sources must be a non-empty list of Packer source references, not {_kind(raw)}", f"write sources: [{shown}] (the sources your template defines)")
    else:
        seen: set[str] = set()
        for i, item in enumerate(raw):
            q = p + ("sources", i)
            if not isinstance(item, str):
                c.add(q, f"a source reference must be a string, not {_kind(item)}", "write e.g. source.googlecompute.golden")
            elif not PACKER_SOURCE_RE.match(item):
                bare = re.match(rf"^{_HCL_ID}\.{_HCL_ID}$", item)
                fix = f"write source.{item}" if bare else 'write source.TYPE.NAME as in your template\'s source "TYPE" "NAME" block, e.g. source.googlecompute.golden (a literal: Packer 1.6 accepts no variables in sources)'
                c.add(q, f"'{item}' is not a Packer source reference", fix)
            elif item in seen:
                c.add(q, f"source '{item}' is listed twice", "keep one entry per source")
            else:
                seen.add(item)
        sources = tuple(raw)
    bake = m.get("bake_secret")
    if "bake_secret" in m and not isinstance(bake, bool):
        c.add(p + ("bake_secret",), f"bake_secret must be true or false, not {_kind(bake)}", "write bake_secret: true (unquoted) to bake build-time credentials into the image, or false")
        bake = None
    return PackerOptions(sources=sources, bake_secret=bake, at=c.at(p, key=True))


def _check_targets(c: Checker, value: Any) -> dict[str, object]:
    from generator.targets import TARGETS

    if value is None:
        return {}
    example = 'targets:\n  containerd:\n    version: "1.7"'
    targets = c.mapping(value, ("targets",), "targets", example)
    if targets is None:
        return {}
    c.keys(targets, tuple(TARGETS), ("targets",))
    if not targets:
        c.add(("targets",), "no runtime target", "add e.g.\n" + example)
    parsed: dict[str, object] = {}
    for name in TARGETS:  # in TARGETS order, importing only the runtimes named
        if name not in targets:
            continue
        module = TARGETS[name]
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


def _check_targets_against_registries(c: Checker, targets: dict[str, object], registries: list[Registry], raw: Any) -> None:
    """Checks that need both: a target's optional ``check`` hook, and 'no registries'
    (allowed only when every target works without stored credentials, e.g. kubelet's
    credential provider)."""
    from generator.targets import TARGETS

    for name, options in targets.items():
        check = getattr(TARGETS[name], "check", None)
        if check is not None:
            check(c, options, registries, ("targets", name))
    static = [n for n, o in targets.items() if not getattr(TARGETS[n], "serves_tokens", lambda o: False)(o)]
    for reg in registries:
        if reg.auth.type == VM_IDENTITY and static:
            where = ", ".join(f"targets.{n}" for n in static)
            c.add(
                _registry_path(raw, reg.host) + ("auth", "type"),
                f"gcp-vm-identity gets a ~1-hour access token at pull time, but {where} write{'s' if len(static) == 1 else ''} credentials into a config file once, "
                "where the token would expire (and containerd's registry.configs are deprecated anyway)",
                "serve this registry through kubelet's credential provider only: targets: {kubelet: {credential_provider: {type: regauth}}} "
                f"and remove {where} (or use a gcp-service-account key for them)",
            )
    if raw in (None, []) and (not targets or any(getattr(TARGETS[n], "needs_registries", lambda o: True)(o) for n, o in targets.items())):
        c.add(("registries",) if raw is not None else (), "no registries" if raw is not None else "missing required key 'registries'", "add at least one registry, e.g.\nregistries:\n  - host: europe-docker.pkg.dev\n    auth: {type: gcp-service-account, secret: gar-key}")


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
        c.add(("registries",), f"registries must be a list, not {_kind(value)}", "write\nregistries:\n  - host: europe-docker.pkg.dev\n    auth: {type: gcp-service-account, secret: gar-key}")
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
                c.add(p + ("host",), *problem)
            elif host in seen:
                c.add(p + ("host",), f"registry '{host}' is listed twice (first at registries[{seen[host]}])", "keep one entry per host")
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
        c.add(p + ("mirror_for",), "a gcp-vm-identity registry cannot be a mirror: kubelet asks the credential provider for the image's own host, never the mirror's",
              "pull from the Artifact Registry host directly (or give the mirror a basic / gcp-service-account auth)")  # fmt: skip
    elif isinstance(host, str) and host_problem(host) is None and not is_google_registry(host):
        c.add(p + ("host",), f"'{host}' is not an Artifact Registry or Container Registry host; gcp-vm-identity sends a Google access token, which other registries refuse",
              "use it for *-docker.pkg.dev / gcr.io hosts; ignore this warning only if this registry really accepts oauth2accesstoken + a Google token", severity="warning")  # fmt: skip


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
        c.add(p + ("secret",), f"no secret named '{secret}'", hint)
    username = m.get("username")
    if looks_like_key(username):
        c.add(p + ("username",), f"'{username}' is not a username")  # Problem shows a description, not the value
        return None
    if kind == "gcp-service-account":
        if username is None:
            username = "_json_key_base64"
        elif username == "oauth2accesstoken":
            c.add(p + ("username",), "oauth2accesstoken needs a short-lived access token (about 1 hour); a static config stops working after that", "use username: _json_key_base64 (default) or _json_key with a service-account key")
        elif username not in GCP_USERNAMES:
            c.add(p + ("username",), f"'{username}' is not a username Artifact Registry accepts for a service-account key", "write username: _json_key_base64 (default: password is the base64 of the key file) or _json_key (password is the key JSON)")
    elif kind == "basic":
        if username is None:
            c.add(p, "basic auth needs a username", "add username: YOUR_USER (the password comes from the secret)")
        elif not isinstance(username, str) or not username:
            c.add(p + ("username",), "username must be a non-empty string", "write username: \"robot\"")
        elif ":" in username:
            c.add(p + ("username",), "a username may not contain ':' (it separates user and password in Basic auth)", "use the registry's robot account name")
        elif _unprintable(username):
            c.add(p + ("username",), f"the username contains a control character ({_unprintable(username)}), which runtimes cannot send in Basic auth", "write the registry's account name as plain text")
    if not kind or secret is None or secret not in secrets or not isinstance(username, str):
        return None
    return AuthSpec(type=kind, secret=secret, username=username, at=c.at(p))


def _check_vm_identity_auth(c: Checker, m: dict, p: tuple) -> AuthSpec | None:
    """``{type: gcp-vm-identity}``: keyless; the username is fixed and no secret exists."""
    c.keys(m, AUTH_KEYS, p, required=("type",))
    if "secret" in m:
        c.add(p + ("secret",), "gcp-vm-identity uses no secret: the node gets an access token for the VM's service account from the metadata server",
              "remove secret: (or use type: gcp-service-account to send a key)")  # fmt: skip
    if m.get("username", VM_IDENTITY_USERNAME) != VM_IDENTITY_USERNAME:
        c.add(p + ("username",), f"Artifact Registry takes an access token only with the username {VM_IDENTITY_USERNAME}",
              f"remove username: (it defaults to {VM_IDENTITY_USERNAME})")  # fmt: skip
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


def _check_secrets(c: Checker, value: Any, profile_path: Path) -> dict[str, SecretSpec]:
    if value is None or value == {}:
        return {}
    m = c.mapping(value, ("secrets",), "secrets", "secrets:\n  gar-key:\n    source: file\n    path: gar-key.json")
    if m is None:
        return {}
    out: dict[str, SecretSpec] = {}
    for name, spec in m.items():
        p = ("secrets", name)
        if not _SECRET_NAME_RE.match(str(name)):
            c.add(p, f"secret name '{name}' is not a simple name", "use letters, digits, '-', '_' or '.', e.g. gar-key", key=True)
            continue
        s = c.mapping(spec, p, f"secret '{name}'", "gar-key:\n  source: file\n  path: gar-key.json")
        if s is None:
            continue
        if "source" not in s:
            misspelled = next((k for k in s if close_match(str(k), ("source",))), None)
            if misspelled is None:
                c.add(p, "missing 'source'", f"add source: one of {', '.join(SECRET_SOURCES)}")
                continue
            c.keys({misspelled: None}, ("source",), p)  # "unknown key, did you mean 'source'?" only
            s["source"] = s.pop(misspelled)
        source = c.choice(s, "source", p, SECRET_SOURCES, "")
        if not source:
            continue
        c.keys(s, SECRET_KEYS[source], p)
        spec_obj = {"file": _file_secret, "env": _env_secret, "gcp-secret-manager": _gsm_secret}[source](c, s, p, str(name), profile_path)
        if spec_obj is not None:
            out[str(name)] = spec_obj
    return out


def _file_secret(c: Checker, s: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None:
    if "path" not in s:
        c.add(p, "a file secret needs a path", "add path: keys/gar-key.json (relative to this profile's folder)")
        return None
    raw = c.string(s, "path", p)
    if raw is None:
        return None
    base = profile_path.parent
    candidate = Path(raw)
    if not candidate.is_absolute():
        resolved = Path(os.path.normpath(base / candidate))
        base_norm = Path(os.path.normpath(base.absolute()))
        if not os.path.normpath(resolved.absolute()).startswith(str(base_norm) + os.sep):
            c.add(p + ("path",), f"'{raw}' leaves the profile's folder", "keep secret files next to the profile (or in a subfolder), or give an absolute path on purpose")
            return None
        candidate = resolved
    return SecretSpec(name=name, source="file", at=c.at(p), path=candidate)


def _env_secret(c: Checker, s: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None:
    var = c.string(s, "var", p)
    if "var" not in s:
        c.add(p, "an env secret needs var", "add var: REGAUTH_GAR_KEY")
        return None
    if var is None:
        return None
    if not _ENV_RE.match(var):
        c.add(p + ("var",), f"'{var}' is not an environment variable name", "write var: NAME_IN_CAPITALS")
        return None
    return SecretSpec(name=name, source="env", at=c.at(p), var=var)


def _gsm_secret(c: Checker, s: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None:
    fetch = c.choice(s, "fetch", p, FETCH_MODES, "build")
    full = c.string(s, "name", p)
    project = c.string(s, "project", p)
    secret = c.string(s, "secret", p)
    version = s.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if full is not None:
        if project or secret or "version" in s:
            c.add(p, "give either name: or project/secret/version, not both", "keep name: projects/P/secrets/S/versions/V, or remove it")
            return None
        m = _GSM_NAME_RE.match(full)
        if not m:
            c.add(p + ("name",), f"'{full}' is not a secret version resource name", "write name: projects/PROJECT/secrets/SECRET/versions/3 (or .../versions/latest)")
            return None
        project, secret, version = m.groups()
    else:
        if project is None or secret is None:
            c.add(p, "a gcp-secret-manager secret needs project and secret (or name)", "add project: my-project and secret: gar-reader-key (version defaults to latest; pin a number for golden images)")
            return None
        version = version if version is not None else "latest"
    if not isinstance(version, str) or not _GSM_VERSION_RE.match(version):
        c.add(p + ("version",) if "version" in s else p + ("name",), f"'{version}' is not a secret version", "write a version number such as 3, or latest")
        return None
    if not _GSM_ID_RE.match(secret):
        c.add(p, f"'{secret}' is not a Secret Manager secret id", "secret ids use letters, digits, '-' and '_'")
        return None
    if not _PROJECT_RE.match(project):
        c.add(p, f"'{project}' is not a Google Cloud project id or number", "write the project id, e.g. my-project-123")
        return None
    if version == "latest" and fetch == "build":
        c.add(
            p,
            "version latest is fetched when rendering, so two renders (and the golden images built from them) may differ",
            "pin a version number (version: 3) for reproducible images, or use fetch: boot",
            severity="warning",
        )
    creds = c.string(s, "credentials_file", p, required=False)
    endpoint = c.string(s, "endpoint", p, required=False)
    if endpoint is not None and not re.match(r"^https?://[^/\s]+/?$", endpoint):
        c.add(p + ("endpoint",), f"'{endpoint}' is not an API endpoint URL", "write endpoint: https://secretmanager.googleapis.com (scheme and host only)")
        return None
    return SecretSpec(
        name=name,
        source="gcp-secret-manager",
        at=c.at(p),
        gsm=GsmSpec(project=project, secret=secret, version=version, credentials_file=creds, endpoint=endpoint),
        fetch=fetch,
    )
