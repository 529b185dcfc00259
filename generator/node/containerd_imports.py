"""containerd's `imports`: the files it reads after the main config, in its order, and
what they do to registry auth (its config.go: LoadConfig, resolveImports, mergeConfig).

- Order: the main file, then its imports as listed, breadth first (an import's own
  imports after all earlier ones), each path once; an entry with `*` is a glob (matches
  sorted, dot files included); a relative entry is relative to the importing file's
  directory, except a relative glob on 1.6 (see relative_glob_base).
- 1.x: an imported `[plugins.X]` replaces the whole plugin table X, so auth merged into
  the main file is lost when an import defines the CRI plugin: refuse, naming it.
- 1.6/1.7: a missing import is fatal (`failed to load TOML: ... no such file or
  directory`); a glob matching nothing is not (checked on 1.6.20 and 1.7.24).
- 2.x (checked on 2.1.9): files merge key by key, even inside one auth table (a drop-in
  with only username/password keeps an earlier file's identitytoken: hence the blanked
  keys below); a later file wins (an empty string too), imports win over the main file,
  a missing import is skipped. regauth writes a drop-in it owns (conf.d/50-regauth.toml beside the main
  file, imported as that relative path unless a glob covers it), read after every other
  definition of a profile host's auth; the main file's only edit is `imports`."""

import fnmatch
import os
import posixpath
from typing import Dict, List, Optional, Tuple

from .errors import ApplyError
from .tomledit import describe, dotted, insert_line
from .tomlparse import TOMLError, parse
from .tomltext import _dig, toml_key, toml_string

V2 = (2, 0)  # the drop-in rules below are 2.x's; imports resolve alike on every 2.x
DROPIN = "conf.d/50-regauth.toml"  # beside the main config; regauth owns it
DROPIN_NOTE = "# Written by regauth-apply: registry auth for containerd. Edit the regauth profile, not this file."
# A file's version -> the plugin tables containerd takes registry auth from in it (2.x
# migrates v1/v2 files; a v2 name in a v3 file is ignored, FIELD_NOTES section 2).
AUTH_TABLES = {1: ("cri", "io.containerd.grpc.v1.cri"), 2: ("io.containerd.grpc.v1.cri",), 3: ("io.containerd.cri.v1.images",)}


def header_escapes(major: int) -> bool:
    """Does containerd ``major`` unescape "quoted" keys in [table] headers? 1.x parses with
    go-toml v1, which keeps them as written: `[...configs."a\\u002Eb".auth]` is the auth of
    host `a\\u002Eb` to it, not of `a.b`; keys of key/value lines (dotted, inline) it does
    unescape. 2.x (go-toml v2) unescapes both, as TOML 1.0 says. (Checked with 1.6.20,
    1.7.24 and 2.1.9 `config dump`.)"""
    return major >= 2


def read(text: str, major: int):
    """``text`` as containerd ``major`` reads it (see header_escapes)."""
    return parse(text, header_escapes=header_escapes(major))


def read_doc(ctx, path: str, major: int, text: Optional[str] = None):
    text = ctx.read(path) if text is None else text
    if text is None:
        return None
    try:
        return read(text, major)
    except TOMLError as exc:
        raise ApplyError("%s:%d:%d: an imported file is not valid TOML (%s); containerd cannot load it either" % (path, exc.line, exc.col, exc.reason), code="node-config-syntax")


def _glob(root: str, pattern: str, extra) -> List[str]:
    """filepath.Glob under ``root``: sorted matches; ``extra`` paths (files about to be written) count as present."""
    found = [""]
    for part in [p for p in pattern.split("/") if p]:
        later = []
        for base in found:
            if not any(c in part for c in "*?["):
                here = base + "/" + part
                if os.path.lexists(root + here) or any(e == here or e.startswith(here + "/") for e in extra):
                    later.append(here)
                continue
            try:
                names = set(os.listdir(root + (base or "/")))
            except OSError:
                names = set()
            names.update(e[len(base) + 1:].split("/")[0] for e in extra if e.startswith(base + "/"))
            later.extend(base + "/" + n for n in sorted(names) if fnmatch.fnmatchcase(n, part))
        found = later
    return found


def imports_of(doc, path: str) -> List[str]:
    value = doc.value.get("imports", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApplyError("%s: `imports` is not a list of paths (containerd rejects it); fix it, then rerun" % path, code="node-config-shape")
    return value


def relative_glob_base(release: Tuple[int, int], parent: str) -> str:
    """The directory a relative `imports` glob is matched in. containerd 1.6 globs it as
    written, i.e. in its working directory (/ under systemd, and regauth's config dump
    check runs it there); 1.7 and later join it to the importing file's directory first,
    like a plain relative path. Checked with `config dump` run from another directory:
    `imports = ["conf.d/*.toml"]` in /x/sub/main.toml reads ./conf.d/ on 1.6.20 and
    /x/sub/conf.d/ on 1.7.24 and 2.1.9."""
    return "/" if release < (1, 7) else posixpath.dirname(parent)


def resolve(ctx, parent: str, entries: List[str], release: Tuple[int, int], extra) -> List[str]:
    out = []
    for entry in entries:
        path = posixpath.normpath(entry)
        if not path.startswith("/"):
            path = posixpath.join(relative_glob_base(release, parent) if "*" in path else posixpath.dirname(parent), path)
        out.extend(_glob(ctx.root, path, extra) if "*" in path else [path])
    return out


def missing_import(main: str, path: str, major: int) -> None:
    """``main`` imports ``path``, which does not exist: containerd 1.6/1.7 stop there, 2.x
    skips it (module docstring). Raises the 1.x refusal; doctor reports the same words."""
    if major < 2:
        raise ApplyError("%s imports %s, which does not exist: containerd 1.x refuses to start; create it or drop it from imports" % (main, path), code="node-file-type")


def load_order(ctx, main: str, doc, release: Tuple[int, int], extra: Dict[str, str]) -> list:
    """[(path, doc)] of every file containerd ``release`` ((major, minor)) reads after ``main``
    (whose parsed result is ``doc``), in its order; ``extra``: path -> text of files about to be written."""
    major = release[0]
    out, seen, pending = [], {main}, resolve(ctx, main, imports_of(doc, main), release, extra)
    while pending:
        path = pending.pop(0)
        if path in seen:
            continue
        seen.add(path)
        got = read_doc(ctx, path, major, extra.get(path))
        if got is None:
            missing_import(main, path, major)
            continue
        out.append((path, got))
        pending.extend(resolve(ctx, path, imports_of(got, path), release, extra))
    return out


def _tables(doc) -> tuple:
    version = doc.value.get("version", 1)
    return AUTH_TABLES.get(min(version, 3) if isinstance(version, int) and not isinstance(version, bool) else 1, ())


def check_1x(ctx, main: str, doc, release: Tuple[int, int]) -> None:
    """containerd 1.x: refuse when an import replaces the CRI plugin table holding the auth."""
    for path, got in load_order(ctx, main, doc, release, {}):
        for name in AUTH_TABLES[1]:
            node = got.node(("plugins", name))
            if node is not None:
                raise ApplyError(
                    "%s: the CRI plugin table (%s) replaces the main file's whole [plugins.%s] in containerd 1.x, so the "
                    "registry auth regauth merges into %s would be ignored; regauth does not edit files it does not own: "
                    "move that file's CRI settings into %s (or drop the import), then rerun"
                    % (path, describe(got, node, path), dotted([name]), main, main), code="node-config-shape")


def auth_defs(doc, host: str) -> List[tuple]:
    """(auth dict, node) of each definition of ``host``'s auth in one file."""
    out = []
    for name in _tables(doc):
        path = ("plugins", name, "registry", "configs", host, "auth")
        got = _dig(doc.value, path)
        if isinstance(got, dict):
            out.append((got, doc.node(path)))
    return out


def set_imports(doc, entries: List[str]) -> str:
    """The file's text with `imports` set to ``entries`` (a line added when absent)."""
    text, node = doc.text, doc.node(("imports",))
    array = "[%s]" % ", ".join(toml_string(e) for e in entries)
    if node is None:
        return insert_line(doc, doc.root, "imports = " + array, "\r\n" if doc.newline == "\r\n" else "\n")
    return text[:node.start] + array + text[node.end:]


def add_import(doc, entry: str) -> str:
    """The main file's text with ``entry`` after its other `imports` (comments in the list kept)."""
    node = doc.node(("imports",))
    if node is None or not node.items:
        return set_imports(doc, [entry])
    at = node.items[-1].end
    return doc.text[:at] + ", " + toml_string(entry) + doc.text[at:]


def dropin_plan(ctx, step: dict, base: str, creds: List[dict]) -> tuple:
    """containerd 2.x: (main text, drop-in path, drop-in text, config_path in effect, notes).

    ``base`` is the main file as containerd_merge leaves it without credentials (checked,
    older regauth block removed, `version` set). The drop-in holds the auth (and
    config_path when the profile needs hosts.toml and nothing sets one); it must be read
    after every other file defining auth for a profile host, else refuse. Earlier
    definitions are left (containerd reads ours over them: logged), and their keys other
    than username/password are blanked in ours (the key-by-key merge would keep them)."""
    main = step["path"]
    dropin = posixpath.join(posixpath.dirname(main), DROPIN)
    doc = parse(base)
    version = doc.value["version"]
    notes = []
    order = load_order(ctx, main, doc, V2, {dropin: ""})
    if dropin not in [p for p, _ in order]:
        # Relative: 2.x resolves it beside the main file, so the pair also works in a chroot or image build.
        doc = parse(add_import(doc, DROPIN))
        notes.append("%s: %s (regauth's drop-in %s) added to its imports" % (main, DROPIN, dropin))
        order = load_order(ctx, main, doc, V2, {dropin: ""})
    files = [(main, doc)] + order
    ours = [p for p, _ in files].index(dropin)
    prefix = ("plugins", AUTH_TABLES[min(version, 3)][-1], "registry")
    lines = [DROPIN_NOTE, "version = %d" % version]
    for c in sorted(creds, key=lambda c: c["host"]):
        blank = set()
        for index, (path, got) in enumerate(files):
            for auth, node in auth_defs(got, c["host"]) if index != ours else ():
                if index > ours:
                    raise ApplyError(
                        "the auth for %s at %s is read after regauth's drop-in %s, so containerd 2.x would use it; regauth does "
                        "not edit files it does not own: remove it there, then rerun" % (c["host"], describe(got, node, path), dropin), code="node-config-shape")
                notes.append("the auth for %s at %s stays, overridden by %s (containerd 2.x reads imports over earlier files, key by key)"
                             % (c["host"], describe(got, node, path), dropin))
                blank.update(k for k in auth if k not in ("username", "password"))
        lines += ["", "[%s]" % dotted(prefix + ("configs", c["host"], "auth")),
                  "username = " + toml_string(c["username"]), "password = " + toml_string(c["password"])]
        lines += ['%s = ""' % toml_key(k) for k in sorted(blank)]
    certs = None
    if any(c.get("mirror_for") or c.get("tls") for c in creds):
        for index, (path, got) in enumerate(files):
            mirrors = got.node(prefix + ("mirrors",))
            if index != ours and _dig(got.value, prefix + ("mirrors",)):  # an empty table is no conflict
                raise ApplyError("%s: registry.mirrors (%s) cannot be combined with config_path, which the profile's mirrors/tls "
                                 "need; move them to hosts.toml files, or drop mirror_for/tls from the profile" % (path, describe(got, mirrors, path)), code="node-config-path-conflict")
            value = _dig(got.value, prefix + ("config_path",))
            certs = value if isinstance(value, str) and index != ours else certs
        if not certs:
            certs = step["hosts_dir"]
            lines[2:2] = ["", "[%s]" % dotted(prefix), "config_path = " + toml_string(certs)]
    return doc.text, dropin, "\n".join(lines) + "\n", certs, notes


def effective_auth(ctx, main: str, doc, extra: Dict[str, str], host: str) -> dict:
    """The auth for ``host`` containerd 2.x reads: every file's, merged key by key in order."""
    merged = {}
    for _, got in [(main, doc)] + load_order(ctx, main, doc, V2, extra):
        for auth, _node in auth_defs(got, host):
            merged.update(auth)
    return {k: v for k, v in merged.items() if v != ""}


def dropin_verify(ctx, main: str, base: str, new: str, dropin: str, text: str, creds: List[dict]) -> None:
    """Prove the 2.x result with the node's reader: the main file differs from ``base`` only
    by regauth's import (same BOM, line endings), and for each host the auth containerd
    merges from every file is exactly the profile's."""
    before, after = parse(base), parse(new)
    old, got = dict(before.value), dict(after.value)
    imports, added = old.pop("imports", []), got.pop("imports", [])
    if old != got or added not in (imports, imports + [DROPIN]) or before.bom != after.bom or before.newline not in (None, after.newline):
        raise ApplyError("%s: self-check failed: the edit would change more than its imports; nothing written" % main, code="node-self-check")
    for c in creds:
        if effective_auth(ctx, main, after, {dropin: text}, c["host"]) != {"username": c["username"], "password": c["password"]}:
            raise ApplyError("%s: self-check failed: the auth containerd would read for %s is not exactly the profile's; nothing written" % (dropin, c["host"]), code="node-self-check")
