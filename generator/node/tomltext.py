"""TOML text: writing strings, keys and values exactly, and scanning a file for its
table headers and keys (with their offsets) without a full parser."""

import json
import re
from typing import List, Optional, Tuple

from .errors import ApplyError


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\\x7f]')


def _escape(match) -> str:
    ch = match.group(0)
    return _ESCAPES.get(ch) or "\\u%04x" % ord(ch)


def toml_string(value: str, dollar_safe: bool = False) -> str:
    """A TOML basic string holding exactly ``value`` (every control char escaped).

    ``dollar_safe`` also writes every ``$`` as ``\\u0024``: MicroK8s runs sed over its
    containerd template at every start, replacing ``${SNAP}``, ``${SNAP_DATA}``, ...;
    an escaped dollar is invisible to sed and still reads back as ``$``.
    """
    text = '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'
    return text.replace("$", "\\u0024") if dollar_safe else text


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


_NOT_IN_LITERAL = re.compile("['\x00-\x08\x0a-\x1f\x7f]")


def header_key(key: str, escapes: bool = True) -> Optional[str]:
    """``key`` for a [table] header. For a reader that keeps escapes in header keys as
    written (``escapes=False``: containerd 1.x), a key that needs one is written as a
    'literal string', which every reader takes as written; None when no form can hold it
    there (a ' or a control character besides tab, next to a character needing an escape)."""
    text = toml_key(key)
    if escapes or "\\" not in text:
        return text
    return None if _NOT_IN_LITERAL.search(key) else "'" + key + "'"


def toml_value(value) -> str:
    """Plain TOML for values read back from a hosts.toml (strings, bools, numbers, arrays, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join("%s = %s" % (toml_key(k), toml_value(v)) for k, v in value.items()) + "}"
    raise ApplyError("hosts.toml holds a value regauth cannot rewrite (%s)" % type(value).__name__, code="node-cannot-merge")


def _skip_string(text: str, i: int) -> int:
    """Return the index just past the string literal starting at ``text[i]``."""
    for delim, escapes in (('"""', True), ("'''", False), ('"', True), ("'", False)):
        if text.startswith(delim, i):
            j = i + len(delim)
            while j < len(text):
                if escapes and text[j] == "\\":
                    j += 2
                    continue
                if text.startswith(delim, j):
                    j += len(delim)
                    # A multi-line string may end with up to two extra quotes.
                    while len(delim) == 3 and j < len(text) and text[j] == delim[0] and text.startswith(delim, j - 2):
                        j += 1
                    return j
                if len(delim) == 1 and text[j] == "\n":
                    raise ApplyError("unterminated string in TOML", code="node-config-syntax")
                j += 1
            raise ApplyError("unterminated string in TOML", code="node-config-syntax")
    raise AssertionError("not a string")


def _parse_key(text: str, i: int, stop: str) -> Tuple[Tuple[str, ...], int]:
    """Parse a dotted key starting at ``i`` up to the ``stop`` character."""
    parts: List[str] = []
    while True:
        while text[i] in " \t":
            i += 1
        if text[i] in "\"'":
            end = _skip_string(text, i)
            raw = text[i:end]
            if raw.startswith('"'):
                parts.append(json.loads(re.sub(r"\\U([0-9A-Fa-f]{8})", lambda m: chr(int(m.group(1), 16)), raw)))
            else:
                parts.append(raw[1:-1])
            i = end
        else:
            m = re.compile(r"[A-Za-z0-9_-]+").match(text, i)
            if not m:
                raise ApplyError("unexpected character in TOML key", code="node-config-syntax")
            parts.append(m.group(0))
            i = m.end()
        while text[i] in " \t":
            i += 1
        if text[i] == ".":
            i += 1
            continue
        if text.startswith(stop, i):
            return tuple(parts), i + len(stop)
        raise ApplyError("malformed TOML table header", code="node-config-syntax")


def scan_toml(text: str, keys: bool = False):
    """Yield ``("table", offset, path)`` for every ``[table]`` / ``[[array]]`` header line
    and, with ``keys``, ``("key", offset, path)`` for every ``key = value`` line (dotted
    keys as one path).  regauth's ``doctor`` uses the keys to point at lines.

    Tracks strings (all four kinds), comments and bracket depth so that a ``[``
    inside a multi-line string or array value is never taken for a header.
    """
    i, n, depth, line_start = 0, len(text), 0, True
    while i < n:
        if line_start and depth == 0:
            j = i
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] == "[":
                is_array = text.startswith("[[", j)
                path, end = _parse_key(text, j + (2 if is_array else 1), "]]" if is_array else "]")
                yield ("table", i, path)
                i = end
                line_start = False
                continue
            if keys and j < n and text[j] not in "#\r\n":
                path, end = _parse_key(text, j, "=")
                yield ("key", j, path)
                i = end
                line_start = False
                continue
        line_start = False
        ch = text[i]
        if ch == "#":
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if ch in "\"'":
            i = _skip_string(text, i)
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "\n":
            line_start = True
        i += 1


def table_headers(text: str) -> List[Tuple[int, Tuple[str, ...]]]:
    """Offsets and key paths of every ``[table]`` / ``[[array]]`` header line."""
    return [(offset, path) for _, offset, path in scan_toml(text)]


def _dig(tree: dict, path: Tuple[str, ...]):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _prune(tree):
    if isinstance(tree, dict):
        pruned = {k: _prune(v) for k, v in tree.items()}
        return {k: v for k, v in pruned.items() if v != {}}
    return tree
