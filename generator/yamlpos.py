"""Load YAML while remembering where every value came from.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of duplicate
keys.  We compose the node graph instead, build plain Python values from it, and
record a ``path -> (line, col)`` map so every validation message can point at the
exact spot.  Only the safe tag set is accepted (the same as ``yaml.safe_load``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from generator.errors import Problem
from generator.messages import inputs as M

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path = tuple[object, ...]


@dataclass
class LoadedYaml:
    data: Any
    locs: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    texts: dict[Path, str] = field(default_factory=dict)  # as written, for numbers YAML changed (1.10 -> 1.1)
    nodes_built: int = 0
    constructor: Any = field(default=None, repr=False)

    def loc(self, path: Path) -> tuple[int, int]:
        """Closest known position for ``path`` (falls back to its parents)."""
        while path:
            if path in self.locs:
                return self.locs[path]
            path = path[:-1]
        return self.locs.get((), (1, 1))


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_yaml(text: str, filename: str) -> LoadedYaml:
    """Parse ``text``; syntax errors and duplicate keys become Problems, never exceptions."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        what = exc.problem or str(exc)
        if "maximum nesting depth" in what:
            # libyaml's own limit; the pure-Python parser hits RecursionError instead
            # (below).  Same message either way, whichever PyYAML build is installed.
            return LoadedYaml(None, problems=[M.YAML_TOO_DEEP.problem(filename, line=line, col=col)])
        return LoadedYaml(
            None,
            problems=[
                M.YAML_SYNTAX.problem(filename, line=line, col=col, what=what)
            ],
        )
    except yaml.reader.ReaderError as exc:  # a character YAML forbids (control characters, BOM inside)
        before = text[: exc.position]
        line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        return LoadedYaml(
            None,
            problems=[
                M.YAML_CHARACTER.problem(filename, line=line, col=col, char=exc.character, reason=exc.reason)
            ],
        )
    except yaml.YAMLError as exc:  # anything else PyYAML raises while reading
        return LoadedYaml(None, problems=[M.YAML_UNREADABLE.problem(filename, line=1, col=1, error=type(exc).__name__)])
    result = LoadedYaml(None)
    if node is None:
        return result
    try:
        result.data = _build(node, (), result, filename)
    except _TooBig:
        return LoadedYaml(
            None,
            problems=[
                M.YAML_TOO_LARGE.problem(filename, line=1, col=1, limit=MAX_NODES)
            ],
        )
    except RecursionError:
        return LoadedYaml(None, problems=[M.YAML_TOO_DEEP.problem(filename, line=1, col=1)])
    return result


# Aliases let a tiny file expand into billions of values ("billion laughs"); a
# profile never needs more than a few thousand, so stop well before memory does.
MAX_NODES = 200_000


_PLAIN_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class _TooBig(Exception):
    pass


def _build(node: yaml.Node, path: Path, out: LoadedYaml, filename: str) -> Any:
    out.nodes_built += 1
    if out.nodes_built > MAX_NODES:
        raise _TooBig
    out.locs[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
        # safe_load would refuse e.g. !!python/object/apply on a list; building it as a
        # plain list would silently accept what the user (or an attacker) tagged.
        out.problems.append(
            M.YAML_TAG.problem(filename, format_path(path), node.start_mark.line + 1, node.start_mark.column + 1, what=f"tag {node.tag}")
        )
        return None
    if isinstance(node, yaml.MappingNode):
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, filename, out)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                out.problems.append(
                    M.YAML_KEY_NOT_NAME.problem(filename, format_path(path), key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in mapping:
                first = out.locs.get(path + (key,), (0, 0))
                out.problems.append(
                    M.YAML_DUPLICATE_KEY.problem(filename, format_path(path + (key,)), key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                                 key=key, first=first[0])
                )
                continue
            out.locs[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            mapping[key] = _build(value_node, path + (key,), out, filename)
            # Point at the value, not the key, for value errors; keep key position under a marker.
            out.locs[path + (key, "<key>")] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out.locs[path + (key,)] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, path + (i,), out, filename) for i, child in enumerate(node.value)]
    value = _scalar(node, filename, out)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out.texts[path] = node.value  # a ScalarNode keeps the token's text
    return value


def _scalar(node: yaml.Node, filename: str, out: LoadedYaml) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return None
    if out.constructor is None:
        # One constructor per document: building one per scalar cost a third of load time.
        out.constructor = yaml.SafeLoader("")
    loader = out.constructor
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        out.problems.append(
            M.YAML_TAG.problem(filename, line=node.start_mark.line + 1, col=node.start_mark.column + 1, what=exc.problem)
        )
        return None
