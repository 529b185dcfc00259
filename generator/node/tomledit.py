"""In-place edits of a TOML document read by tomlparse, whatever form the user wrote.

A table can be defined by a `[header]`, by dotted keys (`a.b.c = 1`, at any level), or
inside an inline table (`a = { b = { c = 1 } }`); TOML forbids extending a dotted table
with a header once its section is over, and extending an inline table at all. So removing
a table means cutting every one of those definitions, and adding one means choosing the
only form that stays valid where it goes (see `placement`). Every function takes a parsed
Document and returns new text (without the BOM: the caller keeps `doc.bom`).
"""

from typing import List, Tuple

from .tomlparse import ArrayOfTables, Table
from .tomltext import toml_key


def dotted(path) -> str:
    return ".".join(toml_key(k) for k in path)


def _under(path, prefix) -> bool:
    return tuple(path[:len(prefix)]) == tuple(prefix)


def where(doc, offset: int, shown: str) -> str:
    """`file:line` of an offset, for messages."""
    return "%s:%d" % (shown, doc.line_col(offset)[0])


def _section_end(table) -> int:
    """End of a header's own lines: its last key/value line (comments after it stay)."""
    return table.body[-1].line_end if table.body else table.stmt.line_end


def _inline_text(text: str, table, drop=(), extra=None) -> str:
    """An inline table's text rebuilt from its entries as written, minus the entries under
    `drop` (a relative path, descending into nested inline tables), plus `extra`."""
    kept = []
    for start, end, keys, node in table.entries:
        names = tuple(k.name for k in keys)
        if drop and _under(names, drop):
            continue
        if drop and _under(drop, names) and isinstance(node, Table) and node.kind == "inline":
            kept.append(text[start:node.start] + _inline_text(text, node, drop[len(names):]) + text[node.end:end])
        else:
            kept.append(text[start:end])
    if extra:
        kept.append(extra)
    return "{ " + ", ".join(kept) + " }" if kept else "{}"


def removal_edits(doc, path) -> List[Tuple[int, int, str, str]]:
    """(start, end, replacement, form) cutting every definition of `path` and of anything
    under it: header sections, dotted key lines, entries of inline tables."""
    text, path = doc.text, tuple(path)
    edits = []
    cut_tables = set()
    for stmt in doc.statements:
        if stmt.kind != "keyval":
            if _under(stmt.path, path):
                cut_tables.add(id(stmt.table))
                edits.append((stmt.line_start, _section_end(stmt.table), "", "[table] at line %d" % doc.line_col(stmt.start)[0]))
            continue
        if id(stmt.table) in cut_tables:
            continue
        if _under(stmt.path, path):
            edits.append((stmt.line_start, stmt.line_end, "", "dotted keys at line %d" % doc.line_col(stmt.start)[0]))
        elif _under(path, stmt.path) and isinstance(stmt.value, Table):
            value = stmt.value
            edits.append((value.start, value.end, _inline_text(text, value, path[len(stmt.path):]),
                          "inline table at line %d" % doc.line_col(value.start)[0]))
    return edits


def apply_edits(text: str, edits) -> str:
    for start, end, new, _form in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:start] + new + text[end:]
    return text


def placement(doc, path):
    """Where a new definition of `path` (absent now) stays valid TOML:

    ('header', None, path): a `[path]` header at the end of the file;
    ('line', table, rel): a `rel = value` line at the end of `table`'s section (the parent is
      a dotted table, which only dotted keys of its own section may extend);
    ('inline', table, rel): an entry `rel = value` in the inline table `table`;
    ('blocked', node, None): a value or an array of tables is in the way."""
    node = doc.root
    for key in path:
        child = node.children.get(key)
        if child is None:
            break
        if not isinstance(child, Table):
            return "blocked", child, None
        node = child
    else:
        return "blocked", node, None
    if node.frozen:
        while node.kind != "inline":
            node = node.parent
        return "inline", node, tuple(path[len(node.path):])
    if node.kind == "dotted":
        section = node.named_by[0][0].table
        return "line", section, tuple(path[len(section.path):])
    return "header", None, tuple(path)


def insert_line(doc, table, line: str, newline: str, first: bool = False) -> str:
    """`line` added to `table`'s section: after its last key/value line (or `first`: right
    after its header), indented like its first key/value line."""
    text = doc.text
    body = table.body
    indent = text[body[0].line_start:body[0].start] if body else ""
    if table.kind == "root":
        at = body[-1].line_end if body and not first else 0
    else:
        at = table.stmt.line_end if first or not body else body[-1].line_end
    lead = newline if at > 0 and text[at - 1] != "\n" else ""
    return text[:at] + lead + indent + line + newline + text[at:]


def insert_inline(doc, table, entry: str) -> str:
    text = doc.text
    return text[:table.start] + _inline_text(text, table, extra=entry) + text[table.end:]


def describe(doc, node, shown: str) -> str:
    """How and where a node is defined, for messages: 'inline table at FILE:LINE'."""
    if isinstance(node, ArrayOfTables):
        return "array of tables at %s" % where(doc, node.items[0].start, shown)
    if isinstance(node, Table):
        kind = {"header": "[table]", "aot-item": "[[array]] item", "dotted": "dotted keys",
                "inline": "inline table", "implicit": "[sub.table] headers", "root": "top level"}[node.kind]
        if node.frozen and node.kind == "dotted":
            kind = "dotted keys in an inline table"
        return "%s at %s" % (kind, where(doc, node.start or 0, shown))
    return "value at %s" % where(doc, node.start, shown)
