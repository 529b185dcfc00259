"""A complete TOML 1.0 reader that keeps source positions (node side: Python 3.6+, stdlib only).

`parse(data)` reads a whole document (str, or bytes decoded as strict UTF-8) into the same
plain values `tomllib` returns (dict, list, str, int, float, bool, datetime/date/time) and,
beside them, a tree of nodes saying where and how everything was written, so an editor can
replace or remove a definition in place whatever its form:

- `Table.kind`: 'root', 'header' (`[a.b]`), 'aot-item' (one `[[a]]`), 'dotted' (made by a
  dotted key `a.b.c = 1`), 'inline' (`{...}`) or 'implicit' (a super-table only named on the
  way to another one, e.g. `a` in `[a.b]`). `Table.frozen`: inside an inline table (an
  inline table itself, or dotted keys within one: `{a.b = 1}`), so nothing may extend it.
  `Table.entries` (inline tables): (start, end, keys, node) of each `k = v` written in it.
- `Table.named_by`: every (Statement, Key) whose key text names the table; `Table.body`: the
  key/value statements of a header section; `Table.section_end`: where that section ends.
- `Value`: kind, span and the Key naming it; arrays keep their items as nodes.
- `Statement`: one header or key/value line, with its text span and whole-line span.
- `Document`: `bom`, `newline` ('\\n', '\\r\\n', 'mixed' or None), `comments` and
  `multiline_strings` spans (so markers can be matched only as whole lines outside strings).

Spans are character offsets into `Document.text` (the text after the BOM); `Document.line_col`
and `Document.byte_offset` convert them. Every document TOML 1.0 rejects is rejected with
`TOMLError` (line, column, reason). Nesting deeper than MAX_DEPTH arrays/inline tables is a
clean error rather than a RecursionError.

Self-contained on purpose (no sibling imports): it is also loaded by path in tests and on
every interpreter from 3.6 to 3.13.
"""
import bisect
import datetime
import re

MAX_DEPTH = 100  # nested arrays / inline tables; deep enough for any real config

__all__ = ["TOMLError", "parse", "loads", "Document", "Table", "ArrayOfTables", "Value",
           "Key", "Statement", "MAX_DEPTH"]


class TOMLError(ValueError):
    """Not TOML 1.0: `line` and `col` are 1-based, `reason` is short."""

    def __init__(self, reason, line, col, offset):
        ValueError.__init__(self, "line %d column %d: %s" % (line, col, reason))
        self.reason = reason
        self.line = line
        self.col = col
        self.offset = offset


class Key(object):
    """One segment of a (dotted) key as written: `name` and the span of its text (with quotes)."""
    __slots__ = ("name", "start", "end")

    def __init__(self, name, start, end):
        self.name = name
        self.start = start
        self.end = end

    def __repr__(self):
        return "Key(%r, %d, %d)" % (self.name, self.start, self.end)


class Statement(object):
    """A header (`kind` 'header' / 'aot') or a key/value line ('keyval').

    `start`/`end`: the statement's own text (`[a.b]`, or from the key to the value's end);
    `line_start`/`line_end`: the whole line(s) including indentation, comment and newline.
    `keys`: the key segments as written; `path`: absolute path of what it defines;
    `value`: the Value/Table node of a key/value; `table`: the table it writes into."""
    __slots__ = ("kind", "start", "end", "line_start", "line_end", "keys", "path", "value", "table")

    def __init__(self, kind, start, line_start, keys, path, table):
        self.kind = kind
        self.start = start
        self.end = start
        self.line_start = line_start
        self.line_end = start
        self.keys = keys
        self.path = path
        self.value = None
        self.table = table

    def __repr__(self):
        return "Statement(%s %r %d-%d)" % (self.kind, self.path, self.start, self.end)


class Value(object):
    """A non-table value. kind: 'string' (style: basic, literal, ml-basic, ml-literal),
    'integer', 'float', 'bool', 'datetime', 'datetime-local', 'date-local', 'time-local',
    'array' (`items`: nodes). `key`: the Key naming it (None for array items)."""
    __slots__ = ("kind", "style", "value", "start", "end", "key", "stmt", "items", "parent")

    def __init__(self, kind, value, start, end, style=None, items=None):
        self.kind = kind
        self.style = style
        self.value = value
        self.start = start
        self.end = end
        self.key = None
        self.stmt = None
        self.items = items
        self.parent = None

    def __repr__(self):
        return "Value(%s %r %d-%d)" % (self.kind, self.value, self.start, self.end)


class Table(object):
    """A table (see module doc for `kind`). `value` is the plain dict; `children` maps each
    key to a Table, ArrayOfTables or Value node. `start`/`end`: the header text, the inline
    table text, or the first key segment naming a dotted/implicit table."""
    __slots__ = ("kind", "path", "value", "children", "parent", "start", "end", "key",
                 "named_by", "body", "section_end", "section", "stmt", "frozen", "entries")

    def __init__(self, kind, path, parent, section):
        self.kind = kind
        self.path = path
        self.value = {}
        self.children = {}
        self.parent = parent
        self.start = None
        self.end = None
        self.key = None
        self.named_by = []
        self.body = []
        self.section_end = None
        self.section = section
        self.stmt = None
        self.frozen = kind == "inline"  # inline tables, and dotted tables written inside one
        self.entries = []  # inline tables: (start, end, keys, node) of each `k = v` written in it

    def __repr__(self):
        return "Table(%s %r)" % (self.kind, self.path)


class ArrayOfTables(object):
    """`[[path]]`: `items` are Tables of kind 'aot-item'; `value` is the plain list."""
    __slots__ = ("path", "items", "value", "parent", "kind")

    def __init__(self, path, parent):
        self.kind = "aot"
        self.path = path
        self.items = []
        self.value = []
        self.parent = parent

    def __repr__(self):
        return "ArrayOfTables(%r, %d items)" % (self.path, len(self.items))


class Document(object):
    """The parse result: `value` (plain dict), `root` (Table), `statements`, `text`, `bom`,
    `newline`, `comments` and `multiline_strings` ((start, end) spans)."""

    def __init__(self, text, bom):
        self.text = text
        self.bom = bom
        self.newline = None
        self.root = None
        self.value = None
        self.statements = []
        self.comments = []
        self.multiline_strings = []
        self._line_starts = None
        self._ascii = None
        self.header_escapes = True

    def line_col(self, offset):
        """1-based (line, column) of a character offset (column counts characters)."""
        if self._line_starts is None:
            self._line_starts = _line_starts(self.text)
        i = bisect.bisect_right(self._line_starts, offset) - 1
        return i + 1, offset - self._line_starts[i] + 1

    def byte_offset(self, offset):
        """Byte offset in the original file (BOM included) of a character offset."""
        if self._ascii is None:
            try:
                self.text.encode("ascii")
                self._ascii = True
            except UnicodeEncodeError:
                self._ascii = False
        base = 3 if self.bom else 0
        if self._ascii:
            return base + offset
        return base + len(self.text[:offset].encode("utf-8"))

    def node(self, path):
        """The node at `path` (a tuple of keys), or None. Arrays of tables: the last item."""
        node = self.root
        for key in path:
            if isinstance(node, ArrayOfTables):
                node = node.items[-1]
            if not isinstance(node, Table):
                return None
            node = node.children.get(key)
            if node is None:
                return None
        return node

    def in_string(self, offset):
        """True when `offset` lies inside a multi-line string (markers there are content)."""
        for start, end in self.multiline_strings:
            if start < offset < end:
                return True
        return False


def loads(text):
    """Plain values only, like tomllib.loads."""
    return parse(text).value


def parse(data, header_escapes=True):
    """Parse a whole TOML 1.0 document (str, or UTF-8 bytes) into a Document.

    `header_escapes=False` reads like go-toml v1 (containerd 1.x): a "quoted" key in a
    [table] header keeps its backslash escapes as written (`"a\\u002Eb"` names `a\\u002Eb`,
    backslash included, not `a.b`), while keys of key/value lines are
    unescaped as TOML says (checked with containerd 1.6.20 and 1.7.24 `config dump`)."""
    bom = False
    if isinstance(data, (bytes, bytearray)):
        if data[:3] == b"\xef\xbb\xbf":
            bom = True
            data = data[3:]
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            good = bytes(data[:exc.start]).decode("utf-8")
            starts = _line_starts(good)
            raise TOMLError("invalid UTF-8", len(starts), len(good) - starts[-1] + 1, len(good))
    else:
        text = data
        if text[:1] == "\ufeff":
            bom = True
            text = text[1:]
    doc = Document(text, bom)
    doc.header_escapes = header_escapes
    _Parser(doc).run()
    return doc


def _line_starts(text):
    starts = [0]
    find = text.find
    i = find("\n")
    while i >= 0:
        starts.append(i + 1)
        i = find("\n", i + 1)
    return starts


_WS = re.compile(r"[ \t]*")
_WS_NL = re.compile(r"(?:[ \t]+|\r?\n)*")
_COMMENT = re.compile(r"#[^\x00-\x08\x0a-\x1f\x7f]*")
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_BASIC_CHUNK = re.compile(r'[^"\\\x00-\x08\x0a-\x1f\x7f]+')
_LITERAL = re.compile(r"'([^'\x00-\x08\x0a-\x1f\x7f]*)'")
_ML_BASIC_CHUNK = re.compile(r'[^"\\\x00-\x08\x0b-\x1f\x7f]+')
_ML_LITERAL_CHUNK = re.compile(r"[^'\x00-\x08\x0b-\x1f\x7f]+")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_HEX8 = re.compile(r"[0-9A-Fa-f]{8}")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))?)?")
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?")
_DEC = re.compile(r"[+-]?(?:0|[1-9](?:_?[0-9])*)(\.[0-9](?:_?[0-9])*)?([eE][+-]?[0-9](?:_?[0-9])*)?")
_PREFIXED = {
    "x": (re.compile(r"0x[0-9A-Fa-f](?:_?[0-9A-Fa-f])*"), 16),
    "o": (re.compile(r"0o[0-7](?:_?[0-7])*"), 8),
    "b": (re.compile(r"0b[01](?:_?[01])*"), 2),
}
_SPECIAL_FLOAT = re.compile(r"[+-]?(?:inf|nan)")
_VALUE_END = frozenset(" \t\r\n#,]}")
_UTC = datetime.timezone.utc


class _Parser(object):
    def __init__(self, doc):
        self.doc = doc
        self.text = doc.text
        self.n = len(doc.text)
        self.sections = 0

    # ---- errors and small scanners -------------------------------------------------
    def fail(self, pos, reason):
        pos = min(pos, self.n)
        starts = _line_starts(self.text[:pos])
        raise TOMLError(reason, len(starts), pos - starts[-1] + 1, pos)

    def what(self, pos):
        if pos >= self.n:
            return "end of file"
        c = self.text[pos]
        if c == "\n" or c == "\r":
            return "end of line"
        if c < " " or c == "\x7f":
            return "control character U+%04X" % ord(c)
        return repr(c)

    def ws(self, pos):
        return _WS.match(self.text, pos).end()

    def ws_nl_comments(self, pos):
        """Whitespace, newlines and comments (inside arrays)."""
        text = self.text
        while True:
            pos = _WS_NL.match(text, pos).end()
            if pos < self.n and text[pos] == "#":
                pos = self.comment(pos)
            else:
                return pos

    def comment(self, pos):
        end = _COMMENT.match(self.text, pos).end()
        self.doc.comments.append((pos, end))
        if end < self.n and self.text[end] != "\n" and not self.text.startswith("\r\n", end):
            self.fail(end, "%s in a comment" % self.what(end))
        return end

    def end_of_line(self, pos):
        """After a statement: optional whitespace and comment, then newline or end of file."""
        pos = self.ws(pos)
        text = self.text
        if pos < self.n and text[pos] == "#":
            pos = self.comment(pos)
        if pos >= self.n:
            return pos
        if text[pos] == "\n":
            return pos + 1
        if text.startswith("\r\n", pos):
            return pos + 2
        self.fail(pos, "expected end of line, found %s" % self.what(pos))

    # ---- document --------------------------------------------------------------------
    def run(self):
        doc, text, n = self.doc, self.text, self.n
        root = Table("root", (), None, 0)
        root.start = root.end = 0
        doc.root = root
        doc.value = root.value
        current = root
        pos = 0
        while pos < n:
            line_start = pos
            pos = self.ws(pos)
            if pos >= n:
                break
            c = text[pos]
            if c == "\n":
                pos += 1
                continue
            if c == "\r":
                if text.startswith("\r\n", pos):
                    pos += 2
                    continue
                self.fail(pos, "carriage return not followed by a newline")
            if c == "#":
                pos = self.end_of_line(pos)
                continue
            if c == "[":
                current.section_end = line_start
                stmt, current = self.header(pos, line_start)
            else:
                stmt = self.keyval_statement(pos, line_start, current)
            pos = self.end_of_line(stmt.end)
            stmt.line_end = pos
            doc.statements.append(stmt)
        current.section_end = n
        if "\r\n" in text:
            doc.newline = "mixed" if text.count("\n") != text.count("\r\n") else "\r\n"
        elif "\n" in text:
            doc.newline = "\n"

    # ---- keys ----------------------------------------------------------------------
    def key_segment(self, pos):
        text = self.text
        c = text[pos] if pos < self.n else ""
        if c == '"':
            name, end = self.basic_string(pos)
            return Key(name, pos, end)
        if c == "'":
            m = _LITERAL.match(text, pos)
            if not m:
                self.fail(pos, "unterminated or invalid literal string key")
            return Key(m.group(1), pos, m.end())
        m = _BARE.match(text, pos)
        if not m:
            self.fail(pos, "expected a key, found %s" % self.what(pos))
        return Key(m.group(), pos, m.end())

    def key_path(self, pos):
        keys = []
        text = self.text
        while True:
            key = self.key_segment(pos)
            keys.append(key)
            pos = self.ws(key.end)
            if pos < self.n and text[pos] == ".":
                pos = self.ws(pos + 1)
                continue
            return keys, pos

    def raw_key(self, key):
        """go-toml v1's reading of a header key: a basic string's text between its quotes, as written."""
        written = self.text[key.start:key.end]
        if not written.startswith('"') or "\\" not in written:
            return key
        if '"' in written[1:-1]:
            # go-toml v1: "invalid bare key character" (containerd 1.x cannot load the file)
            self.fail(key.start, 'an escaped quote in a [table] header key, which containerd 1.x cannot read')
        return Key(written[1:-1], key.start, key.end)

    # ---- headers ---------------------------------------------------------------------
    def header(self, pos, line_start):
        text = self.text
        aot = text.startswith("[[", pos)
        p = self.ws(pos + (2 if aot else 1))
        keys, p = self.key_path(p)
        if not self.doc.header_escapes:
            keys = [self.raw_key(k) for k in keys]
        close = "]]" if aot else "]"
        if not text.startswith(close, p):
            self.fail(p, "expected %r to close the table header, found %s" % (close, self.what(p)))
        path = tuple(k.name for k in keys)
        stmt = Statement("aot" if aot else "header", pos, line_start, keys, path, None)
        stmt.end = p + len(close)
        self.sections += 1
        section = self.sections
        table = self.doc.root
        for i, key in enumerate(keys[:-1]):
            table = self.descend_for_header(table, key, path[:i + 1], stmt, section)
        key = keys[-1]
        child = table.children.get(key.name)
        if aot:
            if child is None:
                child = _attach(table, key.name, ArrayOfTables(path, table))
            elif not isinstance(child, ArrayOfTables):
                self.fail(key.start, "%s is already defined as %s, not an array of tables"
                          % (_dotted(path), _describe(child)))
            item = Table("aot-item", path, child, section)
            child.items.append(item)
            child.value.append(item.value)
            new = item
        else:
            if child is None:
                new = _attach(table, key.name, Table("header", path, table, section))
            elif isinstance(child, Table) and child.kind == "implicit":
                new = child
                new.kind = "header"
                new.section = section
            else:
                self.fail(key.start, "table %s is already defined (%s)" % (_dotted(path), _describe(child)))
        new.start, new.end, new.key, new.stmt = pos, stmt.end, key, stmt
        new.named_by.append((stmt, key))
        stmt.table = new
        return stmt, new

    def descend_for_header(self, table, key, path, stmt, section):
        child = table.children.get(key.name)
        if child is None:
            child = _attach(table, key.name, Table("implicit", path, table, section), key)
        elif isinstance(child, ArrayOfTables):
            child = child.items[-1]
        elif not isinstance(child, Table):
            self.fail(key.start, "%s is already defined as %s" % (_dotted(path), _describe(child)))
        elif child.frozen:
            self.fail(key.start, "cannot extend inline table %s" % _dotted(path))
        child.named_by.append((stmt, key))
        return child

    # ---- key/value -----------------------------------------------------------------------
    def keyval_statement(self, pos, line_start, table):
        keys, p = self.key_path(pos)
        stmt = Statement("keyval", pos, line_start, keys, table.path + tuple(k.name for k in keys), table)
        if table.kind != "inline":
            table.body.append(stmt)
        value, end = self.keyval_rest(p, keys, table, stmt, 0)
        stmt.value = value
        stmt.end = end
        return stmt

    def keyval_rest(self, p, keys, table, stmt, depth):
        """From after the key: `= value`; inserts it into `table` along the dotted keys."""
        if p >= self.n or self.text[p] != "=":
            self.fail(p, "expected '=' after the key, found %s" % self.what(p))
        p = self.ws(p + 1)
        section = table.section
        for key in keys[:-1]:
            child = table.children.get(key.name)
            path = table.path + (key.name,)
            if child is None:
                child = _attach(table, key.name, Table("dotted", path, table, section), key)
            elif not isinstance(child, Table):
                self.fail(key.start, "%s is already defined as %s" % (_dotted(path), _describe(child)))
            elif child.frozen:
                self.fail(key.start, "cannot extend inline table %s with a dotted key" % _dotted(path))
            elif child.kind == "implicit" or (child.kind == "dotted" and child.section == section):
                child.kind = "dotted"
                child.section = section
            else:
                self.fail(key.start, "table %s is already defined (%s); a dotted key cannot add to it"
                          % (_dotted(path), _describe(child)))
            child.named_by.append((stmt, key))
            table = child
        key = keys[-1]
        if key.name in table.children:
            self.fail(key.start, "duplicate key %s" % _dotted(table.path + (key.name,)))
        node, end = self.value(p, table.path + (key.name,), stmt, depth)
        node.key = key
        node.parent = table
        if isinstance(node, Table):
            node.named_by.append((stmt, key))
        _attach(table, key.name, node)
        return node, end

    # ---- values ------------------------------------------------------------------------------
    def value(self, pos, path, stmt, depth):
        text = self.text
        if pos >= self.n:
            self.fail(pos, "expected a value, found end of file")
        c = text[pos]
        if c == '"':
            if text.startswith('"""', pos):
                s, end = self.multiline_string(pos, '"')
                node = Value("string", s, pos, end, "ml-basic")
            else:
                s, end = self.basic_string(pos)
                node = Value("string", s, pos, end, "basic")
        elif c == "'":
            if text.startswith("'''", pos):
                s, end = self.multiline_string(pos, "'")
                node = Value("string", s, pos, end, "ml-literal")
            else:
                m = _LITERAL.match(text, pos)
                if not m:
                    self.fail(pos, "unterminated or invalid literal string")
                end = m.end()
                node = Value("string", m.group(1), pos, end, "literal")
        elif c == "[":
            node, end = self.array(pos, path, stmt, depth + 1)
        elif c == "{":
            node, end = self.inline_table(pos, path, stmt, depth + 1)
        elif c == "t" and text.startswith("true", pos):
            end = pos + 4
            node = Value("bool", True, pos, end)
        elif c == "f" and text.startswith("false", pos):
            end = pos + 5
            node = Value("bool", False, pos, end)
        else:
            node, end = self.scalar(pos)
        node.stmt = stmt
        if end < self.n and text[end] not in _VALUE_END:
            self.fail(end, "unexpected %s after the value" % self.what(end))
        return node, end

    def scalar(self, pos):
        text = self.text
        m = _DATETIME.match(text, pos)
        if m:
            return self.datetime_value(m, pos), m.end()
        m = _TIME.match(text, pos)
        if m:
            h, mi, s, frac = m.groups()
            try:
                t = datetime.time(int(h), int(mi), int(s), _micros(frac))
            except ValueError:
                self.fail(pos, "invalid time %s" % m.group())
            return Value("time-local", t, pos, m.end()), m.end()
        m = _SPECIAL_FLOAT.match(text, pos)
        if m:
            return Value("float", float(m.group()), pos, m.end()), m.end()
        if text.startswith("0", pos) and text[pos + 1:pos + 2] in _PREFIXED:
            rx, base = _PREFIXED[text[pos + 1]]
            m = rx.match(text, pos)
            if not m:
                self.fail(pos, "invalid number")
            return self.integer(int(m.group()[2:].replace("_", ""), base), pos, m.end())
        m = _DEC.match(text, pos)
        if m:
            s = m.group().replace("_", "")
            if m.group(1) or m.group(2):
                return Value("float", float(s), pos, m.end()), m.end()
            return self.integer(int(s), pos, m.end())
        self.fail(pos, "expected a value, found %s" % self.what(pos))

    def integer(self, value, pos, end):
        if not -2 ** 63 <= value < 2 ** 63:
            self.fail(pos, "integer out of the 64-bit range TOML allows")
        return Value("integer", value, pos, end), end

    def datetime_value(self, m, pos):
        y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
        try:
            if h is None:
                return Value("date-local", datetime.date(int(y), int(mo), int(d)), pos, m.end())
            tz = None
            kind = "datetime-local"
            if z:
                tz = _UTC
                kind = "datetime"
            elif sign:
                oh, om = int(oh), int(om)
                if oh > 23 or om > 59:
                    raise ValueError
                delta = datetime.timedelta(hours=oh, minutes=om)
                tz = datetime.timezone(-delta if sign == "-" else delta)
                kind = "datetime"
            value = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), _micros(frac), tz)
        except ValueError:
            self.fail(pos, "invalid date or time %s" % m.group())
        return Value(kind, value, pos, m.end())

    def array(self, pos, path, stmt, depth):
        if depth > MAX_DEPTH:
            self.fail(pos, "arrays and inline tables nested deeper than %d levels" % MAX_DEPTH)
        text = self.text
        items = []
        values = []
        p = self.ws_nl_comments(pos + 1)
        while True:
            if p < self.n and text[p] == "]":
                break
            node, p = self.value(p, path, stmt, depth)
            items.append(node)
            values.append(node.value)
            p = self.ws_nl_comments(p)
            if p < self.n and text[p] == ",":
                p = self.ws_nl_comments(p + 1)
                continue
            if p < self.n and text[p] == "]":
                break
            self.fail(p, "expected ',' or ']' in the array, found %s" % self.what(p))
        node = Value("array", values, pos, p + 1, items=items)
        for item in items:
            item.parent = node
        return node, p + 1

    def inline_table(self, pos, path, stmt, depth):
        if depth > MAX_DEPTH:
            self.fail(pos, "arrays and inline tables nested deeper than %d levels" % MAX_DEPTH)
        text = self.text
        self.sections += 1
        table = Table("inline", path, None, self.sections)
        table.start = pos
        table.stmt = stmt
        p = self.ws(pos + 1)
        if p < self.n and text[p] == "}":
            table.end = p + 1
            return table, p + 1
        while True:
            start = p
            keys, p = self.key_path(p)
            # Keys inside are relative to this table; its children are frozen once it closes.
            node, p = self.keyval_rest(p, keys, table, stmt, depth)
            table.entries.append((start, p, keys, node))
            p = self.ws(p)
            if p < self.n and text[p] == ",":
                p = self.ws(p + 1)
                if p < self.n and text[p] == "}":
                    self.fail(p, "trailing comma in an inline table (not allowed in TOML 1.0)")
                continue
            if p < self.n and text[p] == "}":
                break
            self.fail(p, "expected ',' or '}' in the inline table, found %s" % self.what(p))
        self.freeze(table)
        table.end = p + 1
        return table, p + 1

    def freeze(self, table):
        """Tables made by dotted keys inside an inline table are part of it: no later extension."""
        for child in table.children.values():
            if isinstance(child, Table) and child.kind == "dotted":
                child.frozen = True
                self.freeze(child)

    # ---- strings -------------------------------------------------------------------------------
    def escape(self, pos):
        """At a backslash: (text, next pos)."""
        text = self.text
        c = text[pos + 1:pos + 2]
        if c in _ESCAPES:
            return _ESCAPES[c], pos + 2
        if c == "u" or c == "U":
            rx = _HEX4 if c == "u" else _HEX8
            m = rx.match(text, pos + 2)
            if not m:
                self.fail(pos, "invalid \\%s escape" % c)
            cp = int(m.group(), 16)
            if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                self.fail(pos, "\\%s escape is not a Unicode scalar value" % c)
            return chr(cp), m.end()
        if c > " " and c != "\x7f":
            self.fail(pos, "invalid escape \\%s" % c)
        self.fail(pos, "invalid escape (a backslash followed by %s)" % self.what(pos + 1))

    def basic_string(self, pos):
        text, n = self.text, self.n
        p = pos + 1
        parts = []
        while True:
            m = _BASIC_CHUNK.match(text, p)
            if m:
                parts.append(m.group())
                p = m.end()
            if p >= n:
                self.fail(pos, "unterminated string")
            c = text[p]
            if c == '"':
                return "".join(parts), p + 1
            if c == "\\":
                s, p = self.escape(p)
                parts.append(s)
                continue
            if c == "\n" or c == "\r":
                self.fail(p, "unterminated string (newline before the closing quote)")
            self.fail(p, "%s in a string (use an escape)" % self.what(p))

    def multiline_string(self, pos, quote):
        # quote '"': a multi-line basic string (escapes, line-ending backslash);
        # quote "'": a multi-line literal string (raw).
        text, n = self.text, self.n
        basic = quote == '"'
        chunk = _ML_BASIC_CHUNK if basic else _ML_LITERAL_CHUNK
        p = pos + 3
        if text.startswith("\n", p):  # a newline right after the opening quotes is not content
            p += 1
        elif text.startswith("\r\n", p):
            p += 2
        parts = []
        while True:
            m = chunk.match(text, p)
            if m:
                parts.append(m.group())
                p = m.end()
            if p >= n:
                self.fail(pos, "unterminated multi-line string")
            c = text[p]
            if c == quote:
                q = p
                while q < n and text[q] == quote:
                    q += 1
                run = q - p
                if run < 3:
                    parts.append(quote * run)
                    p = q
                    continue
                if run > 5:  # up to two quotes may end the content right before the closing three
                    self.fail(p, "too many quotes at the end of a multi-line string")
                parts.append(quote * (run - 3))
                self.doc.multiline_strings.append((pos, q))
                return "".join(parts), q
            if c == "\\" and basic:
                nxt = self.ws(p + 1)
                if text.startswith("\n", nxt) or text.startswith("\r\n", nxt):
                    # Line-ending backslash: drop the newline and all whitespace after it.
                    p = _WS_NL.match(text, nxt).end()
                    continue
                s, p = self.escape(p)
                parts.append(s)
                continue
            if c == "\r" and text.startswith("\r\n", p):
                parts.append("\n")  # as tomllib: a CRLF inside the string reads as "\n"
                p += 2
                continue
            self.fail(p, "%s in a string%s" % (self.what(p), " (use an escape)" if basic else ""))


def _micros(frac):
    if not frac:
        return 0
    return int(frac[:6].ljust(6, "0"))  # beyond microseconds: truncated, as tomllib does


def _dotted(path):
    return ".".join(k if _BARE.match(k) and _BARE.match(k).end() == len(k) else '"%s"' % k for k in path)


def _attach(table, name, child, key=None):
    """``child`` becomes ``table``'s entry ``name`` (node and plain value); a table a key
    creates implicitly spans that key."""
    if key is not None:
        child.start, child.end, child.key = key.start, key.end, key
    table.children[name] = child
    table.value[name] = child.value
    return child


def _describe(node):
    if isinstance(node, ArrayOfTables):
        return "an array of tables"
    if isinstance(node, Table):
        return {"header": "a [table] header", "aot-item": "an [[array]] item", "dotted": "dotted keys",
                "inline": "an inline table", "implicit": "a super-table", "root": "the root"}[node.kind]
    return "a value (%s)" % node.kind
