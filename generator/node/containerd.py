"""containerd's config.toml: the managed auth block, config_path for hosts.toml, and
the proof that nothing else changed."""

import json
import re
from typing import List, Optional, Tuple

from .errors import ApplyError, log
from .files import Context, Outcome, cred_summary, proceed
from .plan import credentials, needs_hosts
from .tomltext import _dig, _prune, remove_tables, table_headers, toml_key, toml_string, top_level_version

BEGIN = "# >>> regauth managed: registry auth. Edit the regauth profile, not this block."
END = "# <<< regauth managed"

# Config file version -> the table containerd reads registry auth from.
CONTAINERD_AUTH_TABLE = {
    1: ("plugins", "cri", "registry", "configs"),
    2: ("plugins", "io.containerd.grpc.v1.cri", "registry", "configs"),
    3: ("plugins", "io.containerd.cri.v1.images", "registry", "configs"),
    4: ("plugins", "io.containerd.cri.v1.images", "registry", "configs"),
}


def strip_managed(text: str) -> str:
    """Remove our previous block, so re-applying starts from the user's own content."""
    start = text.find(BEGIN)
    if start < 0:
        return text
    end = text.find(END, start)
    if end < 0:
        raise ApplyError("found the start of a regauth block but not its end; restore FILE.regauth.orig")
    end = text.find("\n", end)
    end = len(text) if end < 0 else end + 1
    return text[:start] + text[end:]


def containerd_merge(existing: Optional[str], step: dict, creds: List[dict]) -> str:
    """The new config.toml text for ``existing`` (None: no file yet)."""
    base = strip_managed(existing) if existing is not None else ""
    headers = table_headers(base)
    version = top_level_version(base, headers)
    if version is None:
        if base.strip() and any(p[:1] == ("plugins",) for _, p in headers):
            version = 1  # containerd reads a file without `version` as version 1
        else:
            version = int(step["new_config_version"])
            base = "version = %d\n" % version + base
            headers = table_headers(base)
    if version not in CONTAINERD_AUTH_TABLE:
        raise ApplyError("config version %d is not one regauth knows (1-4)" % version)
    if version == 1 and int(step.get("containerd_major", 1)) >= 2:
        raise ApplyError(
            "the config is version 1 (plugins.cri) but the node runs containerd 2.x, which silently drops "
            "registry settings from a version-1 file; migrate it first (containerd config migrate)"
        )
    prefix = CONTAINERD_AUTH_TABLE[version]
    doomed = {prefix + (c["host"], "auth") for c in creds}
    base, removed = remove_tables(base, doomed)
    for path in removed:
        log("replacing an existing auth table for %s" % path[-2])
    lines = [BEGIN]
    if needs_hosts(creds):
        # Mirrors and TLS live in certs.d/*/hosts.toml, read only when config_path is set;
        # containerd refuses config_path next to registry.mirrors (and 1.x next to configs.*.tls).
        registry = prefix[:-1]
        conflicts = hosts_conflicts(base, version)
        if conflicts:
            raise ApplyError(
                "the config sets %s, which containerd refuses together with config_path (needed for the "
                "profile's mirrors/tls); move them to hosts.toml files, or drop mirror_for/tls from the profile" % ", ".join(conflicts)
            )
        if not config_path_value(base, registry):
            base, placed = set_config_path(base, registry, step["hosts_dir"])
            if not placed:
                lines.append("[" + ".".join(toml_key(k) for k in registry) + "]")
                lines.append("config_path = " + toml_string(step["hosts_dir"]))
    safe = bool(step.get("dollar_safe"))
    for c in sorted(creds, key=lambda c: c["host"]):
        lines.append("[" + ".".join(toml_key(k) for k in prefix + (c["host"], "auth")) + "]")
        lines.append("username = " + toml_string(c["username"], safe))
        lines.append("password = " + toml_string(c["password"], safe))
    lines.append(END)
    body = base.rstrip("\n")
    return (body + "\n\n" if body else "") + "\n".join(lines) + "\n"


def containerd_verify(existing: Optional[str], new: str, creds: List[dict], step: Optional[dict] = None, values_only: bool = False) -> None:
    """Prove the result with a real TOML parser: our values exact, nothing else changed
    (except ``config_path``, which hosts.toml needs and which must then be set)."""
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        log("python3 has no tomllib (< 3.11); skipping the parser check")
        return
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ApplyError("the merged config would not parse (%s); the existing file defines registry auth in a form regauth cannot replace" % exc)
    version = after.get("version", 1)
    prefix = CONTAINERD_AUTH_TABLE.get(version)
    if prefix is None:
        raise ApplyError("unexpected config version after merge")
    for c in creds:
        got = _dig(after, prefix + (c["host"], "auth"))
        if not isinstance(got, dict) or got.get("username") != c["username"] or got.get("password") != c["password"]:
            raise ApplyError("self-check failed: auth for %s does not read back exactly" % c["host"])
        del _dig(after, prefix + (c["host"],))["auth"]
    if values_only:
        return
    base = strip_managed(existing) if existing is not None else ""
    base, _ = remove_tables(base, {prefix + (c["host"], "auth") for c in creds})
    before = tomllib.loads(base) if base.strip() else {}
    before.setdefault("version", version)
    after.setdefault("version", version)  # a legacy file without `version` reads as 1 and stays without it
    if needs_hosts(creds):
        registry = _dig(after, prefix[:-1])
        if not isinstance(registry, dict) or not registry.get("config_path"):
            raise ApplyError("self-check failed: config_path is not set, so containerd would ignore hosts.toml")
        registry.pop("config_path")
        old = _dig(before, prefix[:-1])
        if isinstance(old, dict):
            old.pop("config_path", None)
    if _prune(before) != _prune(after):
        raise ApplyError("self-check failed: merging would change settings other than registry auth")


def _section(text: str, path: tuple) -> Optional[Tuple[int, int]]:
    """Start and end offsets of the ``[path]`` table section, or None."""
    headers = table_headers(text)
    for idx, (offset, hpath) in enumerate(headers):
        if hpath == path:
            return offset, headers[idx + 1][0] if idx + 1 < len(headers) else len(text)
    return None


_CONFIG_PATH_LINE = re.compile(r"^([ \t]*)config_path[ \t]*=[ \t]*(\"[^\"\n]*\"|'[^'\n]*')[ \t]*(#.*)?$", re.M)


def config_path_value(text: str, registry: tuple) -> Optional[str]:
    """The ``config_path`` set in the ``[...registry]`` table itself (None: not set there)."""
    where = _section(text, registry)
    if where is None:
        return None
    m = _CONFIG_PATH_LINE.search(text, where[0], where[1])
    if not m:
        return None
    raw = m.group(2)
    return json.loads(raw) if raw.startswith('"') else raw[1:-1]


def set_config_path(text: str, registry: tuple, value: str) -> Tuple[str, bool]:
    """Set ``config_path`` inside an existing ``[...registry]`` table; False if there is none."""
    where = _section(text, registry)
    if where is None:
        return text, False
    line = "config_path = %s  # set by regauth: hosts.toml (certs.d) directory" % toml_string(value)
    m = _CONFIG_PATH_LINE.search(text, where[0], where[1])
    if m:
        return text[: m.start()] + m.group(1) + line + text[m.end():], True
    eol = text.find("\n", where[0])
    eol = len(text) if eol < 0 else eol + 1
    indent = "  " if text[where[0]:eol].startswith((" ", "\t")) else ""
    prefix = text[:eol] if text[:eol].endswith("\n") else text[:eol] + "\n"
    return prefix + indent + line + "\n" + text[eol:], True


def hosts_conflicts(text: str, version: int) -> List[str]:
    """Settings containerd refuses next to ``config_path`` (FIELD_NOTES section 2)."""
    registry = CONTAINERD_AUTH_TABLE[version][:-1]
    found = []
    for _, path in table_headers(text):
        if path[: len(registry) + 1] == registry + ("mirrors",) and len(path) > len(registry) + 1:
            found.append("registry.mirrors.%s" % path[len(registry) + 1])
        if version <= 2 and path[: len(registry) + 1] == registry + ("configs",) and path[-1] == "tls":
            found.append("registry.configs.%s.tls" % path[len(registry) + 1])
    try:
        import tomllib

        tree = _dig(tomllib.loads(text), registry) if text.strip() else None
    except (ImportError, ValueError):
        tree = None
    if isinstance(tree, dict):
        for name in (tree.get("mirrors") or {}):
            if "registry.mirrors.%s" % name not in found:
                found.append("registry.mirrors.%s" % name)
    return found


def effective_certs_dir(text: str, step: dict) -> str:
    """First directory of the config's ``config_path`` with placeholders (MicroK8s) resolved."""
    version = top_level_version(text, table_headers(text)) or 1
    value = config_path_value(text, CONTAINERD_AUTH_TABLE[version][:-1]) or step["hosts_dir"]
    first = value.split(":")[0]
    for placeholder, real in sorted((step.get("placeholders") or {}).items()):
        first = first.replace(placeholder, real)
    if not first.startswith("/") or "${" in first:
        raise ApplyError("config_path %r is not an absolute directory regauth can write hosts.toml into" % value)
    return first



# --- regauth-apply section end ---


def prepare_containerd(step: dict, ctx: Context) -> Outcome:
    out = Outcome("containerd", {"policy": step.get("restart", "if-running"), "units": [step.get("unit", "containerd")]})
    if not proceed(step, ctx, out):
        return out
    creds = credentials(step["registries"], ctx.fetcher)
    out.summary = cred_summary(creds)
    existing = ctx.read(step["path"])
    new = containerd_merge(existing, step, creds)
    containerd_verify(existing, new, creds, step)
    out.add(ctx, step["path"], new.encode("utf-8"), 0o600)
    if needs_hosts(creds):
        from .hoststoml import hosts_edits  # shipped only to nodes whose plan has mirrors/TLS (plan.modules)

        hosts_edits(out, ctx, effective_certs_dir(new, step), step, creds)
    return out
