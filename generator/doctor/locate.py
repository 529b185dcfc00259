"""Line numbers for keys in TOML and JSON files.

TOML: the node program's reader (``generator/node/tomlparse.py``) keeps the position of
every statement, so lines come from the very parse doctor judged (same keys, escapes
read as the containerd release reads them).  ``json`` gives values but forgets where
they came from, so JSON lines are found by scanning text ``json`` already accepted.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field

from generator.node.tomlparse import Document
from generator.node.tomltext import toml_key

KeyPath = tuple[str, ...]


@dataclass
class Positions:
    """``key path -> 1-based line`` for one file, with fallbacks to parents."""

    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line(self, path: KeyPath) -> int:
        """Line of ``path``, else of its closest located parent, else 0."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 0

    def first_line(self, prefix: KeyPath) -> int:
        """Smallest line of any located key at or under ``prefix`` (0 if none)."""
        found = [line for path, line in self.lines.items() if path[: len(prefix)] == prefix]
        return min(found) if found else self.line(prefix)


class _Lines:
    def __init__(self, text: str) -> None:
        self._starts = [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def of(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset) + 1


def toml_positions(doc: Document) -> Positions:
    """Lines of every ``[table]`` header and every ``key = value`` line (dotted keys
    expanded), as full key paths, from the node's reader (the parse doctor judged).
    Keys inside inline tables fall back to their parent."""
    out = Positions()
    for stmt in doc.statements:
        line = doc.line_col(stmt.start)[0]
        for k in range(1, len(stmt.path) + 1):  # implicit parents start here too
            out.lines.setdefault(stmt.path[:k], line)
    return out


def json_positions(text: str) -> Positions:
    """Lines of every object key (full path) in a JSON document ``json`` accepted."""
    lines = _Lines(text)
    out = Positions()
    decoder = json.JSONDecoder()
    ws = " \t\r\n"

    def skip(i: int) -> int:
        while i < len(text) and text[i] in ws:
            i += 1
        return i

    def value(i: int, path: KeyPath) -> int:
        i = skip(i)
        if text[i] == "{":
            i = skip(i + 1)
            if text[i] == "}":
                return i + 1
            while True:
                i = skip(i)
                key, end = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
                out.lines.setdefault(path + (key,), lines.of(i))
                i = skip(end)
                i = value(i + 1, path + (key,))  # past the ':'
                i = skip(i)
                if text[i] == ",":
                    i += 1
                    continue
                return i + 1  # '}'
        if text[i] == "[":
            i = skip(i + 1)
            if text[i] == "]":
                return i + 1
            index = 0
            while True:
                i = skip(value(i, path + (str(index),)))
                index += 1
                if text[i] == ",":
                    i += 1
                    continue
                return i + 1
        _, end = decoder.raw_decode(text, i)
        return end

    try:
        value(0, ())
    except (ValueError, IndexError, RecursionError):
        pass
    return out


def toml_path_text(path: KeyPath) -> str:
    """A key path spelled as TOML, e.g. ``plugins."io.containerd.grpc.v1.cri".registry``."""
    return ".".join(toml_key(k) for k in path)
