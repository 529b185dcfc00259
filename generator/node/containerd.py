"""containerd's config.toml: the managed auth block, config_path for hosts.toml, and
the proof that nothing else changed.

The file is read with the node's own TOML 1.0 reader (tomlparse), so every form a user
may have written (headers, dotted keys at any level, inline tables, CRLF, a BOM,
`version = 0x2`) is understood on every Python the node may run."""

from typing import List, Optional, Tuple

from .containerd_dump import dump_check
from .containerd_imports import check_1x, dropin_plan, dropin_verify, header_escapes, read
from .errors import ApplyError, log
from .files import Context, Outcome, cred_summary, proceed
from .plan import credentials, needs_hosts
from .tomledit import apply_edits, describe, dotted, insert_inline, insert_line, placement, removal_edits, where
from .tomlparse import Table, TOMLError
from .tomltext import _dig, _prune, header_key, toml_string

BEGIN = "# >>> regauth managed: registry auth. Edit the regauth profile, not this block."
END = "# <<< regauth managed"
CONFIG_PATH_NOTE = "# set by regauth: hosts.toml (certs.d) directory"

# Config file version -> the table containerd reads registry auth from.
CONTAINERD_AUTH_TABLE = {
    1: ("plugins", "cri", "registry", "configs"),
    2: ("plugins", "io.containerd.grpc.v1.cri", "registry", "configs"),
    3: ("plugins", "io.containerd.cri.v1.images", "registry", "configs"),
    4: ("plugins", "io.containerd.cri.v1.images", "registry", "configs"),
}


def _parse(text: str, shown: str, major: int, what: str = "the config"):
    try:
        return read(text, major)
    except TOMLError as exc:
        if major < 2 and "containerd 1.x" not in exc.reason and _valid_toml(text):
            # Valid TOML 1.0, invalid once header escapes are kept: 1.7.24 fails on it too
            # ("key ... is already assigned and not of type table array").
            raise ApplyError("%s:%d:%d: %s is TOML which containerd 1.x cannot read (%s: it keeps the escapes of [table] header keys, so an "
                             "escaped key and its plain spelling are two keys); write those keys plainly, then rerun"
                             % (shown, exc.line, exc.col, what, exc.reason), code="node-config-syntax")
        raise ApplyError("%s:%d:%d: %s is not valid TOML (%s); fix the file, then rerun" % (shown, exc.line, exc.col, what, exc.reason), code="node-config-syntax")


def _valid_toml(text: str) -> bool:
    try:
        read(text, 2)
        return True
    except TOMLError:
        return False


def _marker_lines(doc, marker: str) -> List[Tuple[int, int]]:
    """(line start, line end) of every whole line that is exactly `marker` (a comment, so
    never text inside a string; indentation and trailing blanks allowed)."""
    found = []
    text = doc.text
    for start, end in doc.comments:
        if text[start:end].rstrip() != marker:
            continue
        line_start = text.rfind("\n", 0, start) + 1
        if text[line_start:start].strip(" \t"):
            continue  # `key = 1  # >>> ...`: a comment after content, not our marker line
        line_end = text.find("\n", end)
        found.append((line_start, len(text) if line_end < 0 else line_end + 1))
    return found


def _ours(stmt, prefixes) -> bool:
    """A statement regauth writes in its block: `[<registry>]` with config_path, or
    `[<configs>.HOST.auth]` with username and password."""
    for prefix in prefixes:
        registry = prefix[:-1]
        if stmt.kind == "header" and (stmt.path == registry or (len(stmt.path) == len(prefix) + 2 and stmt.path[:len(prefix)] == prefix and stmt.path[-1] == "auth")):
            return True
        if stmt.kind == "keyval" and len(stmt.keys) == 1 and stmt.table.kind == "header":
            if stmt.table.path == registry and stmt.path[-1] == "config_path":
                return True
            if stmt.table.path[:len(prefix)] == prefix and stmt.path[-1] in ("username", "password"):
                return True
    return False


def strip_managed(doc, shown: str) -> str:
    """The text without regauth's previous block (markers as whole lines only). Refuses,
    naming the line, when someone added content inside the block or continued its last
    table after it: dropping that content silently would lose their setting."""
    begins, ends = _marker_lines(doc, BEGIN), _marker_lines(doc, END)
    text = doc.text
    if not begins and not ends:
        return text
    if len(begins) != 1 or len(ends) != 1 or ends[0][0] < begins[0][0]:
        lines = sorted(doc.line_col(s)[0] for s, _ in begins + ends)
        raise ApplyError("%s: regauth's block markers are broken (marker lines at %s; want one start line, then one end line); "
                         "restore %s.regauth.orig or remove the markers" % (shown, ", ".join(map(str, lines)), shown), code="node-managed-block")
    start, end = begins[0][0], ends[0][1]
    prefixes = set(CONTAINERD_AUTH_TABLE.values())
    block_tables = set()
    for stmt in doc.statements:
        inside = start <= stmt.start < end
        if inside and not _ours(stmt, prefixes):
            raise ApplyError("%s:%d: this line is inside regauth's managed block (lines %d-%d) but was not written by regauth; "
                             "move it above the block's start line, then rerun" % (shown, doc.line_col(stmt.start)[0], doc.line_col(start)[0], doc.line_col(end - 1)[0]), code="node-managed-block")
        if inside and stmt.kind == "header":
            block_tables.add(id(stmt.table))
        elif not inside and id(stmt.table) in block_tables:
            raise ApplyError("%s:%d: this line continues a table of regauth's managed block; put it under its own [table] header "
                             "above the block, then rerun" % (shown, doc.line_col(stmt.start)[0]), code="node-managed-block")
    for c_start, c_end in doc.comments:
        if start <= c_start < end and text[c_start:c_end].rstrip() not in (BEGIN, END, CONFIG_PATH_NOTE):
            raise ApplyError("%s:%d: a comment inside regauth's managed block (it is rewritten at every run); move it above the block"
                             % (shown, doc.line_col(c_start)[0]), code="node-managed-block")
    return text[:start] + text[end:]


def release(containerd_version: str) -> Tuple[int, int]:
    """(major, minor) of a containerd release such as "1.7" or "2.1.4"."""
    major, minor = containerd_version.split(".")[:2]
    return int(major), int(minor)


def config_version_for(containerd_version: str) -> int:
    """Config schema version a *new* config gets: 1 (1.0-1.2), 2 (1.3-1.7), 3 (2.x)."""
    got = release(containerd_version)
    if got[0] >= 2:
        return 3
    return 1 if got <= (1, 2) else 2


def config_version(doc, step: dict, shown: str) -> Tuple[int, bool]:
    """(version, written): the file's own `version` (any integer form: `2`, `0x2`), or, without
    one, 1 when it configures plugins in any form (containerd reads it as version 1, so
    adding a version would change its meaning), else the plan's version, to be written."""
    value = doc.value
    if "version" in value:
        version = value["version"]
        if isinstance(version, bool) or not isinstance(version, int) or version not in CONTAINERD_AUTH_TABLE:
            node = doc.node(("version",))
            raise ApplyError("%s:%d: config version %r is not one regauth knows (1-4)" % (shown, doc.line_col(node.start)[0], version), code="node-config-version")
        return version, False
    if "plugins" in value:
        return 1, False
    return config_version_for(step["containerd_version"]), True


def hosts_conflicts(doc, version: int, shown: str) -> List[str]:
    """Settings containerd's CRI plugin refuses next to ``config_path`` (FIELD_NOTES section 2),
    in any TOML form, each with its form and line."""
    registry = CONTAINERD_AUTH_TABLE[version][:-1]
    found = []
    mirrors = doc.node(registry + ("mirrors",))
    if isinstance(mirrors, Table):
        for name, node in sorted(mirrors.children.items()):
            found.append("registry.mirrors.%s (%s)" % (name, describe(doc, node, shown)))
    configs = doc.node(registry + ("configs",))
    if version <= 2 and isinstance(configs, Table):
        for name, host in sorted(configs.children.items()):
            tls = host.children.get("tls") if isinstance(host, Table) else None
            if tls is not None:
                found.append("registry.configs.%s.tls (%s)" % (name, describe(doc, tls, shown)))
    return found


def _header(path, major: int, shown: str) -> str:
    """`[path]` as containerd ``major`` reads it back (1.x keeps escapes in header keys)."""
    keys = [header_key(k, header_escapes(major)) for k in path]
    if None in keys:
        raise ApplyError("%s: no [table] header that containerd %d.x reads back can name %s (it keeps escapes there); fix the host"
                         % (shown, major, dotted(path)), code="node-cannot-merge")
    return "[" + ".".join(keys) + "]"


def _write(doc, path, value: str, header, lines: List[str], block: List[str], newline: str, shown: str, major: int) -> Optional[str]:
    """Define `path` (absent now) as `value` (TOML text). Where a header is valid: `lines`
    under a `[header]` in regauth's block (None returned: `block` grew). Where TOML forbids
    one: a dotted line in the section that defined the parent, or an entry of the inline
    table that holds it (the new text returned)."""
    how, node, rel = placement(doc, path)
    if how == "blocked":
        raise ApplyError("%s: cannot write %s: a %s is in the way; remove it, then rerun" % (shown, dotted(path), describe(doc, node, shown)), code="node-config-shape")
    if how == "header":
        block.append(_header(header, major, shown))
        block.extend(lines)
        return None
    if how == "line":
        log("%s: %s written as a dotted key (its parent is defined by dotted keys)" % (shown, dotted(path)))
        return insert_line(doc, node, "%s = %s" % (dotted(rel), value), newline)
    log("%s: %s written into the inline table at %s" % (shown, dotted(path), where(doc, node.start, shown)))
    return insert_inline(doc, node, "%s = %s" % (dotted(rel), value))


def _set_config_path(doc, registry, value: str, block: List[str], newline: str, shown: str, major: int) -> Optional[str]:
    """config_path = value: in place when it is set (empty), else first in the registry's
    [table], else wherever `_write` finds valid."""
    note = "  " + CONFIG_PATH_NOTE
    line = "config_path = " + toml_string(value) + note
    node = doc.node(registry + ("config_path",))
    if node is not None:
        text = doc.text
        rest = text[node.end:node.stmt.line_end]
        if node.stmt.value is not node or "#" in rest:
            note = ""  # inside an inline table, or the line has a comment of its own
        return text[:node.start] + toml_string(value) + note + text[node.end:]
    table = doc.node(registry)
    if isinstance(table, Table) and table.kind == "header":
        return insert_line(doc, table, line, newline, first=True)
    return _write(doc, registry + ("config_path",), toml_string(value), registry, [line], block, newline, shown, major)


def version_mismatch(runs: Tuple[int, int], version: int) -> Optional[str]:
    """What containerd ``runs`` ((major, minor)) does with a config of ``version`` that is
    written for 2.x, or None when it reads it as written. Checked with `config dump`:
    1.7.24 refuses version 3 ("unsupported config version `3`"); 1.6.20 loads it as
    version 2, dropping the 2.x tables. Doctor reports the same rule."""
    if runs[0] >= 2 or version < 3:
        return None
    if runs < (1, 7):
        return "containerd 1.6 loads it as version 2 and ignores the 2.x tables it is written for"
    return "containerd %d.%d refuses to start with it (unsupported config version)" % runs


def containerd_merge(existing: Optional[str], step: dict, creds: List[dict]) -> str:
    """The new config.toml text for ``existing`` (None: no file yet): every existing auth
    for the profile's hosts removed in whatever form it is written, ours written once,
    the file's BOM and line endings kept."""
    shown = step.get("path", "config.toml")
    major = release(step["containerd_version"])[0]
    doc = _parse(existing or "", shown, major)
    bom = doc.bom
    first_eol = doc.text.find("\n")
    newline = "\r\n" if first_eol > 0 and doc.text[first_eol - 1] == "\r" else "\n"  # the file's own line endings
    base = strip_managed(doc, shown)
    # The version is read from the file as containerd reads it, regauth's block included: a
    # version-less file whose only plugins table was a stale auth holds, after the first run,
    # nothing but regauth's [plugins.cri...] block, and is still version 1 on the next run.
    version, write_version = config_version(doc, step, shown)
    doc = _parse(base, shown, major, "the config without regauth's block")
    if version == 1 and major >= 2:
        raise ApplyError(
            "%s: the config is version 1 (plugins.cri) but the node runs containerd 2.x, which silently drops "
            "registry settings from a version-1 file; migrate it first (containerd config migrate)" % shown, code="node-config-version"
        )
    mismatch = version_mismatch(release(step["containerd_version"]), version)
    if mismatch:
        raise ApplyError("%s: the config is version %d, but the profile says containerd %s: %s; fix targets.containerd.version or the file"
                         % (shown, version, step["containerd_version"], mismatch), code="node-config-version")
    if bom and major >= 2:
        # Checked on 2.1.9: "invalid character at start of key: U+00EF" (1.6/1.7 accept it).
        raise ApplyError("%s starts with a UTF-8 byte order mark, which containerd 2.x cannot read (it fails on this file "
                         "as it is too); remove the first 3 bytes, then rerun" % shown, code="node-cannot-merge")
    prefix = CONTAINERD_AUTH_TABLE[version]
    registry = prefix[:-1]
    for c in sorted(creds, key=lambda c: c["host"]):
        edits = removal_edits(doc, prefix + (c["host"], "auth"))
        if edits and _dig(doc.value, prefix + (c["host"], "auth")) != {"username": c["username"], "password": c["password"]}:
            log("%s: replacing the existing auth for %s (%s)" % (shown, c["host"], "; ".join(e[3] for e in edits)))
        if edits:
            doc = _parse(apply_edits(doc.text, edits), shown, major, "the config after removing the old auth")
    block = [BEGIN]
    if needs_hosts(creds):
        # Mirrors and TLS live in certs.d/*/hosts.toml, read only when config_path is set;
        # containerd refuses config_path next to registry.mirrors (and 1.x next to configs.*.tls).
        conflicts = hosts_conflicts(doc, version, shown)
        if conflicts:
            raise ApplyError(
                "%s sets %s, which containerd's CRI plugin refuses together with config_path (needed for the profile's "
                "mirrors/tls); move them to hosts.toml files, or drop mirror_for/tls from the profile" % (shown, ", ".join(conflicts)), code="node-config-path-conflict"
            )
        current = doc.node(registry + ("config_path",))
        if not (current is not None and isinstance(current.value, str) and current.value):
            text = _set_config_path(doc, registry, step["hosts_dir"], block, newline, shown, major)
            if text is not None:
                doc = _parse(text, shown, major, "the config with config_path")
    safe = bool(step.get("dollar_safe"))
    for c in sorted(creds, key=lambda c: c["host"]):
        lines = ["username = " + toml_string(c["username"], safe), "password = " + toml_string(c["password"], safe)]
        path = prefix + (c["host"], "auth")
        text = _write(doc, path, "{ %s }" % ", ".join(lines), path, lines, block, newline, shown, major)
        if text is not None:
            doc = _parse(text, shown, major, "the merged config")
    block.append(END)
    body = doc.text.rstrip("\r\n")
    if write_version:
        body = ("version = %d" % version) + (newline + body if body else "")
    if len(block) > 2:  # anything to write as [headers] goes in regauth's block at the end
        body = (body + newline + newline if body else "") + newline.join(block)
    return ("\ufeff" if bom else "") + (body + newline if body else "")


def containerd_verify(existing: Optional[str], new: str, creds: List[dict], step: Optional[dict] = None, values_only: bool = False) -> None:
    """Prove the result with the node's own TOML reader (every Python): it parses, the
    effective auth for each host is exactly the profile's, and nothing else changed
    (except ``config_path``, which hosts.toml needs and which must then be set)."""
    shown = (step or {}).get("path", "config.toml")
    major = release(step["containerd_version"])[0] if step else 2
    try:
        after_doc = read(new, major)
    except TOMLError as exc:
        raise ApplyError("%s: the merged config would not parse (line %d: %s); nothing written" % (shown, exc.line, exc.reason), code="node-self-check")
    after = after_doc.value
    version = after.get("version", 1)
    prefix = CONTAINERD_AUTH_TABLE.get(version)
    if prefix is None:
        raise ApplyError("%s: unexpected config version after merge" % shown, code="node-self-check")
    for c in creds:
        got = _dig(after, prefix + (c["host"], "auth"))
        if got != {"username": c["username"], "password": c["password"]}:
            raise ApplyError("%s: self-check failed: the auth for %s does not read back exactly; nothing written" % (shown, c["host"]), code="node-self-check")
        del _dig(after, prefix + (c["host"],))["auth"]
    if values_only:
        return
    before_doc = read(existing or "", major)
    before = read(strip_managed(before_doc, shown), major).value
    for c in creds:
        host = _dig(before, prefix + (c["host"],))
        if isinstance(host, dict):
            host.pop("auth", None)
    before.setdefault("version", version)
    after.setdefault("version", version)  # a legacy file without `version` reads as 1 and stays without it
    if needs_hosts(creds):
        registry = _dig(after, prefix[:-1])
        if not isinstance(registry, dict) or not registry.get("config_path"):
            raise ApplyError("%s: self-check failed: config_path is not set, so containerd would ignore hosts.toml" % shown, code="node-self-check")
        old = _dig(before, prefix[:-1])
        if not (isinstance(old, dict) and old.get("config_path")):
            registry.pop("config_path")
            if isinstance(old, dict):
                old.pop("config_path", None)
    if _prune(before) != _prune(after):
        raise ApplyError("%s: self-check failed: merging would change settings other than registry auth; nothing written" % shown, code="node-self-check")
    if before_doc.bom != after_doc.bom or (before_doc.newline == "\r\n") != (after_doc.newline == "\r\n"):
        raise ApplyError("%s: self-check failed: merging would change the file's BOM or line endings; nothing written" % shown, code="node-self-check")


def effective_certs_dir(text: str, step: dict) -> str:
    """First directory of the config's ``config_path`` with placeholders (MicroK8s) resolved."""
    doc = read(text, release(step["containerd_version"])[0])
    version = doc.value.get("version", 1)
    node = doc.node(CONTAINERD_AUTH_TABLE[version][:-1] + ("config_path",))
    return certs_dir(node.value if node is not None and isinstance(node.value, str) and node.value else step["hosts_dir"], step)


def certs_dir(value: str, step: dict) -> str:
    first = value.split(":")[0]
    for placeholder, real in sorted((step.get("placeholders") or {}).items()):
        first = first.replace(placeholder, real)
    if not first.startswith("/") or "${" in first:
        raise ApplyError("config_path %r is not an absolute directory regauth can write hosts.toml into" % value, code="node-cannot-merge")
    return first



# --- regauth-apply section end ---


def prepare_containerd(step: dict, ctx: Context) -> Outcome:
    out = Outcome("containerd", {"policy": step.get("restart", "if-running"), "units": [step.get("unit", "containerd")]})
    if not proceed(step, ctx, out):
        return out
    creds = credentials(step["registries"], ctx.fetcher)
    out.summary = cred_summary(creds)
    path = step["path"]
    existing = ctx.read(path)
    runs = release(step["containerd_version"])
    major = runs[0]
    files = {}
    if major >= 2:  # a drop-in regauth owns, imported by the main file (containerd_imports)
        base = containerd_merge(existing, step, [])
        new, dropin, files[dropin], certs, notes = dropin_plan(ctx, step, base, creds)
        out.notes.extend(notes)
        dropin_verify(ctx, path, base, new, dropin, files[dropin], creds)
    else:
        new = containerd_merge(existing, step, creds)
        containerd_verify(existing, new, creds, step)
        check_1x(ctx, path, read(new, major), runs)
    files[path] = new
    dump_check(ctx, path, files, runs, [c["password"] for c in creds])
    for name, text in sorted(files.items(), key=lambda item: item[0] == path):  # the main file last
        out.add(ctx, name, text.encode("utf-8"), 0o644 if name == path and major >= 2 else 0o600)  # 2.x: no secret in it
    if needs_hosts(creds):
        from .hoststoml import hosts_edits  # shipped only to nodes whose plan has mirrors/TLS (plan.modules)

        hosts_edits(out, ctx, certs_dir(certs, step) if major >= 2 else effective_certs_dir(new, step), step, creds)
    return out
