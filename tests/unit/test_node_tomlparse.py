"""The node program's TOML 1.0 reader (generator/node/tomlparse.py, issue 14 item 2).

- Conformance: the toml-test corpus Debian ships (scripts/deps/tomltest.sh installs it), in
  process and under every node interpreter (one subprocess each, loading the file by path).
- Differential: hypothesis documents in many forms read exactly as tomllib reads them, and
  every span the reader records points at the text that defines it.
- Positions and definition forms on hand-written documents; deep nesting; CRLF/BOM.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import subprocess
import sys
from generator.tomlcompat import tomllib
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from generator.node import tomlparse
from generator.node.tomlparse import ArrayOfTables, Table, TOMLError, Value
from tests.support import toml_corpus
from tests.support.node_pythons import NEWEST, NODE_PYTHONS, OLDEST, python_id, require_python

READER = Path(tomlparse.__file__)
DRIVER = Path(toml_corpus.__file__)


@pytest.fixture(scope="module")
def corpus() -> str:
    """The toml-test folder from golang-github-burntsushi-toml-dev (missing: skip, or fail under CI)."""
    try:
        listing = subprocess.run(["dpkg", "-L", "golang-github-burntsushi-toml-dev"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    except FileNotFoundError:
        listing = ""
    found = [line for line in listing.splitlines() if line.endswith("/toml-test/tests")]
    if not found or not os.path.isdir(found[0] + "/valid"):
        message = "toml-test corpus missing: run scripts/deps/tomltest.sh as root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found[0]


# ---- conformance -----------------------------------------------------------------------------

def test_corpus_in_process(corpus):
    result = toml_corpus.check(tomlparse, corpus)
    assert result["failures"] == []
    # The numbers FIELD_NOTES records for Debian 12's 1.2.0: the whole corpus was walked.
    assert result["valid"] >= 100 and result["invalid"] >= 234


def test_corpus_exceptions_are_really_rejected_by_tomllib(corpus):
    # NOT_TOML_1_0 lists valid/ files the reader must reject; tomllib (TOML 1.0) agrees on each.
    for rel in toml_corpus.NOT_TOML_1_0:
        with pytest.raises(tomllib.TOMLDecodeError):
            tomllib.loads(Path(corpus, rel).read_text(encoding="utf-8"))
        with pytest.raises(TOMLError):
            tomlparse.parse(Path(corpus, rel).read_bytes())


@pytest.mark.parametrize("python", NODE_PYTHONS, ids=python_id)
def test_corpus_under_every_node_python(python, corpus):
    require_python(python)
    result = _corpus_under(python, READER, corpus)
    # The subprocess really was that interpreter (not the suite's own).
    version = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    assert result["python"] == version


@pytest.mark.parametrize("python", [OLDEST, NEWEST], ids=python_id)
def test_corpus_with_the_shipped_reader(python, corpus, tmp_path):
    # What a node runs is nodebuild's shrunk text (locals renamed, spaces dropped), not this file.
    from generator import nodebuild

    require_python(python)
    shipped = tmp_path / "tomlparse.py"
    shipped.write_text(nodebuild.shrink("tomlparse"), encoding="utf-8")
    assert shipped.read_text(encoding="utf-8") != READER.read_text(encoding="utf-8")
    _corpus_under(python, shipped, corpus)


def _corpus_under(python: str, reader: Path, corpus: str) -> dict:
    """The whole corpus through ``reader`` (a file) under ``python``: no failure, every file walked."""
    run = subprocess.run([python, str(DRIVER), str(reader), corpus], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["failures"] == [], result["failures"]
    assert result["valid"] >= 100 and result["invalid"] >= 234
    return result


# ---- deep nesting ----------------------------------------------------------------------------

DEEP = {
    "array": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "inline": "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n",
    "mixed": "x = " + "[{a = " * 2500 + "1" + "}]" * 2500 + "\n",
}


@pytest.mark.parametrize("python", [OLDEST, NEWEST], ids=python_id)
def test_deep_nesting_is_a_clean_error_on_oldest_and_newest(python, tmp_path):
    require_python(python)
    script = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('t', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "out = {}\n"
        "for name in sys.argv[2:]:\n"
        "    try:\n"
        "        m.parse(open(name, 'rb').read()); out[name] = 'accepted'\n"
        "    except m.TOMLError as e:\n"
        "        out[name] = [e.line, e.col, e.reason]\n"
        "print(json.dumps(out))\n")
    files = []
    for name, text in DEEP.items():
        path = tmp_path / (name + ".toml")
        path.write_text(text)
        files.append(str(path))
    run = subprocess.run([python, "-c", script, str(READER)] + files, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    assert run.returncode == 0, run.stderr  # a RecursionError would be a traceback here
    assert "Recursion" not in run.stderr
    out = json.loads(run.stdout)
    for name in files:
        line, col, reason = out[name]
        assert line == 1 and col > tomlparse.MAX_DEPTH and "nested deeper than" in reason


def test_nesting_up_to_the_limit_reads():
    depth = tomlparse.MAX_DEPTH
    assert tomlparse.loads("x = " + "[" * depth + "]" * depth) == tomllib.loads("x = " + "[" * depth + "]" * depth)
    with pytest.raises(TOMLError, match="nested deeper"):
        tomlparse.loads("x = " + "[" * (depth + 1) + "]" * (depth + 1))


# ---- rejections beyond the corpus (each is invalid TOML 1.0; tomllib agrees) -------------------

INVALID = {
    "duplicate key": "a = 1\na = 2\n",
    "duplicate via quoted key": 'a = 1\n"a" = 2\n',
    "table twice": "[a]\n[a]\n",
    "table after dotted": "a.b = 1\n[a]\n",
    "table over dotted sub": "[a]\nb.c = 1\n[a.b]\n",
    "dotted into header table": "[a.b]\n[a]\nb.c = 1\n",
    "extend inline with header": "a = {b = 1}\n[a]\n",
    "extend inline with sub header": "a = {b = 1}\n[a.c]\n",
    "extend inline with dotted": "a = {b = 1}\na.c = 2\n",
    "extend inline inside inline": "a = {b = {c = 1}, b.d = 2}\n",
    "dotted into static array": "a = [1]\na.b = 1\n",
    "aot over static array": "a = []\n[[a]]\n",
    "table over aot": "[[a]]\n[a]\n",
    "aot over table": "[a]\n[[a]]\n",
    "inline trailing comma": "a = {b = 1,}\n",
    "inline newline": "a = {b = 1\n}\n",
    "bad escape": 'a = "\\x41"\n',
    "esc escape is 1.1": 'a = "\\e"\n',
    "surrogate escape": 'a = "\\uD800"\n',
    "escape beyond unicode": 'a = "\\U00110000"\n',
    "control char in string": 'a = "\x01"\n',
    "control char in comment": "# \x01\n",
    "DEL in literal": "a = '\x7f'\n",
    "lone CR": "a = 1\rb = 2\n",
    "CR in comment": "# x\ry\n",
    "leading zero": "a = 01\n",
    "double underscore": "a = 1__0\n",
    "trailing underscore": "a = 10_\n",
    "hex with sign": "a = +0xff\n",
    "uppercase hex prefix": "a = 0XFF\n",
    "float without int part": "a = .5\n",
    "float dot exp": "a = 1.e5\n",
    "bad month": "a = 2020-13-01\n",
    "bad day": "a = 2021-02-29\n",
    "hour 24": "a = 24:00:00\n",
    "second 60": "a = 2020-01-01T00:00:60\n",
    "no seconds (1.1)": "a = 12:30\n",
    "offset hour": "a = 2020-01-01T00:00:00+24:00\n",
    "key without value": "a =\n",
    "value without key": "= 1\n",
    "two statements one line": "a = 1 b = 2\n",
    "header junk": "[a] b = 1\n",
    "empty header": "[]\n",
    "unterminated array": "a = [1, 2\n",
    "array double comma": "a = [1,,2]\n",
    "six quotes closing": 'a = """x""""""\n',
    "backslash space not eol": 'a = """x\\ y"""\n',
    "ml literal six quotes": "a = '''x''''''\n",
    "bare key unicode": "é = 1\n",
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_rejects_like_tomllib(name):
    text = INVALID[name]
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(text)
    with pytest.raises(TOMLError) as info:
        tomlparse.parse(text)
    assert info.value.line >= 1 and info.value.col >= 1 and info.value.reason
    assert str(info.value).startswith("line %d column %d: " % (info.value.line, info.value.col))


def test_integers_beyond_64_bits_are_rejected():
    # TOML 1.0: "an integer that cannot be represented losslessly MUST be an error";
    # tomllib does not check this (it returns a big int), containerd's Go readers do.
    for text in ("a = 9223372036854775808", "a = -9223372036854775809", "a = 0x8000000000000000"):
        assert tomllib.loads(text)["a"] not in range(-2 ** 63, 2 ** 63)
        with pytest.raises(TOMLError, match="64-bit"):
            tomlparse.parse(text)
    assert tomlparse.loads("a = -9223372036854775808\nb = 0x7fffffffffffffff") == {"a": -2 ** 63, "b": 2 ** 63 - 1}


def test_error_positions_point_at_the_cause():
    cases = [
        ("a = 1\n[b]\nc = 2\nc = 3\n", 4, 1, "duplicate key b.c"),
        ("[x]\ny = {a = 1}\n[x.y]\n", 3, 4, "already defined"),
        ("a = 1\r\nb = {c = 1}\r\nb.d = 2\r\n", 3, 1, "inline table b"),
        ('k = "ok"\nv = "bad \\q"\n', 2, 10, "invalid escape \\q"),
        ("a = 1\nb = 1__2\n", 2, 6, "unexpected '_'"),
    ]
    for text, line, col, reason in cases:
        with pytest.raises(TOMLError) as info:
            tomlparse.parse(text)
        assert (info.value.line, info.value.col) == (line, col), (text, str(info.value))
        assert reason in info.value.reason


def test_invalid_utf8_is_rejected_with_position():
    with pytest.raises(TOMLError) as info:
        tomlparse.parse(b'a = 1\nb = "\xff"\n')
    assert (info.value.line, info.value.col, info.value.reason) == (2, 6, "invalid UTF-8")


# ---- definition forms and positions ------------------------------------------------------------

FORMS = '''\
version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = ""
  configs."a.example".auth.username = "u1"
  configs."a.example".auth.password = 'p1'
[plugins."io.containerd.grpc.v1.cri".registry.configs."b.example".auth]
  username = "u2"
[plugins."io.containerd.grpc.v1.cri".registry.mirrors]
  "c.example" = { endpoint = ["https://c"], tls = { insecure_skip_verify = true } }
[[x.y]]
  n = 1
[[x.y]]
  n = 2
'''


def test_kinds_and_spans_of_every_form():
    doc = tomlparse.parse(FORMS)
    assert doc.value == tomllib.loads(FORMS)
    text = doc.text
    registry = doc.node(("plugins", "io.containerd.grpc.v1.cri", "registry"))
    assert doc.node(("plugins",)).kind == "implicit"
    assert registry.kind == "header" and text[registry.start:registry.end] == '[plugins."io.containerd.grpc.v1.cri".registry]'
    configs = registry.children["configs"]
    assert configs.kind == "dotted"
    a_auth = doc.node(("plugins", "io.containerd.grpc.v1.cri", "registry", "configs", "a.example", "auth"))
    assert a_auth.kind == "dotted"
    # Both dotted lines name it; each statement's span is exactly its line's text.
    assert [text[s.start:s.end] for s, _k in a_auth.named_by] == [
        'configs."a.example".auth.username = "u1"', "configs.\"a.example\".auth.password = 'p1'"]
    assert [text[k.start:k.end] for _s, k in a_auth.named_by] == ["auth", "auth"]
    b_example = configs.children["b.example"]
    # configs (dotted in the registry section) is extended by a later header through it.
    assert b_example.kind == "implicit" and b_example.children["auth"].kind == "header"
    password = a_auth.children["password"]
    assert password.kind == "string" and password.style == "literal" and text[password.start:password.end] == "'p1'"
    mirror = doc.node(("plugins", "io.containerd.grpc.v1.cri", "registry", "mirrors", "c.example"))
    assert mirror.kind == "inline" and text[mirror.start:mirror.end].startswith("{ endpoint")
    assert text[mirror.key.start:mirror.key.end] == '"c.example"'
    tls = mirror.children["tls"]
    assert tls.kind == "inline" and tls.stmt is mirror.stmt
    endpoint = mirror.children["endpoint"]
    assert endpoint.kind == "array" and text[endpoint.items[0].start:endpoint.items[0].end] == '"https://c"'
    aot = doc.node(("x", "y"))
    assert isinstance(aot, ArrayOfTables) and [t.kind for t in aot.items] == ["aot-item", "aot-item"]
    assert [text[t.start:t.end] for t in aot.items] == ["[[x.y]]", "[[x.y]]"]
    # A header section's body and end: the editor's unit for "the whole [table]".
    body = registry.body
    assert [text[s.start:s.end].split(" =")[0] for s in body] == [
        "config_path", 'configs."a.example".auth.username', 'configs."a.example".auth.password']
    assert text[registry.section_end:].startswith('[plugins."io.containerd.grpc.v1.cri".registry.configs."b.example".auth]')
    # Whole-line spans: indentation through newline.
    first = body[0]
    assert text[first.line_start:first.line_end] == '  config_path = ""\n'
    assert doc.line_col(first.start) == (3, 3)


def test_crlf_bom_and_byte_offsets():
    raw = '\ufeffa = "é"\r\n[t]\r\nk = """\r\nx\r\n"""  # c\r\n'.encode("utf-8")
    doc = tomlparse.parse(raw)
    assert doc.bom and doc.newline == "\r\n"
    assert doc.value == {"a": "é", "t": {"k": "x\n"}}
    k = doc.node(("t", "k"))
    assert doc.multiline_strings == [(k.start, k.end)] and doc.in_string(k.start + 4)
    assert [doc.text[s:e] for s, e in doc.comments] == ["# c"]
    t = doc.node(("t",))
    # Byte offsets count the BOM and the 2-byte é.
    assert raw[doc.byte_offset(t.start):doc.byte_offset(t.end)] == b"[t]"
    assert doc.line_col(t.start) == (2, 1)
    assert tomlparse.parse("a = 1\nb = 2\r\n").newline == "mixed"
    assert tomlparse.parse("a = 1").newline is None


# ---- differential property tests against tomllib --------------------------------------------

KEY_TEXT = st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True),
                     st.text(min_size=0, max_size=6).filter(lambda s: "\r" not in s))
SCALARS = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.datetimes(min_value=datetime.datetime(1, 1, 1), timezones=st.one_of(
        st.none(), st.just(datetime.timezone.utc),
        st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: datetime.timezone(datetime.timedelta(minutes=m))))),
    st.dates(), st.times(),
)


def _values(children):
    return st.one_of(st.lists(children, max_size=3), st.dictionaries(KEY_TEXT, children, max_size=3))


VALUES = st.recursive(SCALARS, _values, max_leaves=12)
DOCS = st.dictionaries(KEY_TEXT, VALUES, max_size=5)


class Writer:
    """Writes a value tree as TOML, choosing a form at random (through `draw`) at every step."""

    def __init__(self, draw, newline):
        self.draw = draw
        self.nl = newline

    def pick(self, *options):
        return self.draw(st.sampled_from(options))

    def key(self, k):
        if re.fullmatch(r"[A-Za-z0-9_-]+", k) and self.pick(True, False, False):
            return k
        if "'" not in k and not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", k) and self.pick(True, False):
            return "'%s'" % k
        return self.basic(k)

    def path(self, keys):
        return self.pick(".", " . ", ".\t").join(self.key(k) for k in keys)

    def basic(self, s, raw_newline=False):
        out = []
        for ch in s:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch == "\n" and raw_newline and self.pick(True, False):
                out.append(self.nl)
            elif ch in "\b\t\n\f\r" and self.pick(True, False):
                out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[ch])
            elif ord(ch) < 32 and ch != "\t" or ch == "\x7f" or self.pick(False, False, False, True) and ord(ch) > 127:
                out.append("\\u%04X" % ord(ch) if ord(ch) < 0x10000 else "\\U%08X" % ord(ch))
            else:
                out.append(ch)
        return '"%s"' % "".join(out)

    def string(self, s):
        style = self.pick("basic", "literal", "ml-basic", "ml-literal")
        controls = re.search(r"[\x00-\x08\x0b-\x1f\x7f]", s)
        if style == "literal" and "'" not in s and "\n" not in s and not controls:
            return "'%s'" % s
        if style == "ml-literal" and "'" not in s and "\r" not in s and not controls:
            return "'''" + self.pick("", self.nl) + s.replace("\n", self.nl) + "'''" if not s.startswith("\n") \
                else "'''" + self.nl + s.replace("\n", self.nl) + "'''"
        if style == "ml-basic":
            body = self.basic(s, raw_newline=True)[1:-1]
            # A line-ending backslash eats the whitespace after it: only before a visible char.
            fold = self.pick("", "\\" + self.nl + "    ") if body[:1] not in ("", " ", "\t", "\r", "\n") else ""
            return '"""' + self.pick("", self.nl) + fold + body + '"""' if not body.startswith(self.nl) \
                else '"""' + self.nl + body + '"""'
        return self.basic(s)

    def scalar(self, v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            if v >= 0 and self.pick(True, False, False):
                return self.pick("0x%x" % v, "0o%o" % v, "0b{0:b}".format(v))
            s = str(v)
            if len(s.lstrip("-")) > 1 and self.pick(True, False):
                s = s[:-1] + "_" + s[-1]
            return s
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, str):
            return self.string(v)
        if isinstance(v, datetime.datetime):
            s = v.isoformat(sep=self.pick("T", " ", "t"))
            return s.replace("+00:00", "Z") if self.pick(True, False) else s
        return v.isoformat()

    def inline(self, v):
        if isinstance(v, dict):
            if not v:
                return "{}"
            return "{ " + ", ".join("%s = %s" % (self.path([k]), self.inline(x)) for k, x in v.items()) + " }"
        if isinstance(v, list):
            sep = self.pick(", ", "," + self.nl + "  ", " ,# c" + self.nl)
            return "[" + sep.join(self.inline(x) for x in v) + (self.pick("", ",") if v else "") + "]"
        return self.scalar(v)

    def dotted(self, prefix, v, out):
        """Leaf lines `a.b.c = value` for a table written by dotted keys (empty tables inline)."""
        for k, x in v.items():
            if isinstance(x, dict) and x and self.pick(True, False):
                self.dotted(prefix + [k], x, out)
            else:
                out.append("%s = %s" % (self.path(prefix + [k]), self.inline(x)))

    def section(self, path, table, out, header):
        """A table's own lines, then its sub-tables as [headers] / [[arrays]]."""
        later = []
        lines = []
        for k, x in table.items():
            if isinstance(x, dict) and x and self.pick("header", "dotted", "inline") == "header":
                later.append(("table", k, x))
            elif isinstance(x, list) and x and all(isinstance(i, dict) for i in x) and self.pick(True, False):
                later.append(("aot", k, x))
            elif isinstance(x, dict) and x and self.pick(True, False):
                self.dotted([k], x, lines)
            else:
                lines.append("%s = %s" % (self.path([k]), self.inline(x)))
        if header and (lines or not later or header.startswith("[[") or self.pick(True, False)):
            out.append(self.pick("", "  ") + header)
        for line in lines:
            out.append(self.pick("", "  ", "\t") + line + self.pick("", " # note"))
            if self.pick(False, False, True):
                out.append(self.pick("", "# comment"))
        for kind, k, x in later:
            sub = path + [k]
            if kind == "table":
                self.section(sub, x, out, "[%s]" % self.path(sub))
            else:
                for item in x:
                    self.section(sub, item, out, "[[%s]]" % self.path(sub))

    def document(self, value):
        out = []
        self.section([], value, out, None)
        return self.nl.join(out) + self.pick("", self.nl)


@st.composite
def documents(draw):
    value = draw(DOCS)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return Writer(draw, newline).document(value)


def _check_spans(doc):
    """Every recorded span reads back (through tomllib) as what the node says it is."""
    text = doc.text
    for stmt in doc.statements:
        assert text[stmt.line_start:stmt.start].strip(" \t") == ""
        tail = text[stmt.end:stmt.line_end]
        assert re.fullmatch(r"[ \t]*(#[^\n]*)?(\r?\n)?", tail), repr(tail)
        piece = tomllib.loads(text[stmt.start:stmt.end])
        for key in stmt.keys:
            assert tomllib.loads(text[key.start:key.end] + " = 1") == {key.name: 1}
            piece = piece[key.name]
        if stmt.kind == "keyval":
            assert toml_corpus.same(piece, stmt.value.value) == ""
            _check_value(text, stmt.value)
        elif stmt.kind == "header":
            assert piece == {} and stmt.table.kind == "header"
        else:
            assert piece == [{}] and stmt.table.kind == "aot-item"
        line, col = doc.line_col(stmt.start)
        lines = text.split("\n")
        assert lines[line - 1][col - 1:].startswith(text[stmt.start:stmt.end].split("\n")[0])


def _check_children(text, table):
    for child in table.children.values():
        if isinstance(child, Table) and child.kind == "dotted":  # `{a.b = 1}`: a has no value text
            assert child.frozen and text[child.start:child.end] == text[child.key.start:child.key.end]
            _check_children(text, child)
        else:
            _check_value(text, child)


def _check_value(text, node):
    snippet = text[node.start:node.end]
    got = tomllib.loads("x = " + snippet)["x"]
    assert toml_corpus.same(got, node.value) == "", snippet
    if isinstance(node, Table):
        assert node.kind == "inline" and node.frozen
        _check_children(text, node)
    elif node.kind == "array":
        for item in node.items:
            _check_value(text, item)


@given(documents())
def test_reads_like_tomllib_with_true_spans(text):
    try:
        want = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        with pytest.raises(TOMLError):
            tomlparse.parse(text)
        return
    doc = tomlparse.parse(text)
    assert toml_corpus.same(doc.value, want) == "", text
    _check_spans(doc)
    # The same document as UTF-8 bytes with a BOM reads the same, offsets shifted by the BOM only.
    with_bom = tomlparse.parse(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert with_bom.bom and toml_corpus.same(with_bom.value, want) == ""


def _agrees_with_tomllib(text):
    """Both reject, or both read the same values (and every span is true)."""
    try:
        want = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):  # ValueError: tomllib's own crash on some dates
        with pytest.raises(TOMLError):
            tomlparse.parse(text)
        return
    try:
        doc = tomlparse.parse(text)
    except TOMLError as exc:  # TOML 1.0 limits integers to 64 bits; tomllib does not check
        assert "64-bit" in exc.reason, (text, str(exc))
        return
    assert toml_corpus.same(doc.value, want) == "", text
    _check_spans(doc)


@given(st.text(max_size=40))
def test_arbitrary_text_never_crashes(text):
    _agrees_with_tomllib(text)


@st.composite
def near_misses(draw):
    """A valid generated document with one small edit: a char inserted or deleted, or a line
    repeated (duplicate keys/tables). Most become invalid in some interesting way."""
    text = draw(documents())
    edit = draw(st.sampled_from(["insert", "delete", "repeat-line"]))
    if not text:
        return text
    at = draw(st.integers(0, len(text) - 1))
    if edit == "insert":
        return text[:at] + draw(st.sampled_from(list("[]{}=.,\"'#\\ \n\r\t_-+:0aeT"))) + text[at:]
    if edit == "delete":
        return text[:at] + text[at + 1:]
    lines = text.split("\n")
    i = draw(st.integers(0, len(lines) - 1))
    return "\n".join(lines[:i + 1] + lines[i:])


@given(near_misses())
def test_accepts_and_rejects_exactly_what_tomllib_does(text):
    _agrees_with_tomllib(text)


def test_header_escapes_off_reads_header_keys_as_go_toml_v1_does() -> None:
    """containerd 1.x (go-toml v1) keeps escapes in [table] header keys as written and
    unescapes key/value keys (checked with 1.6.20 / 1.7.24 `config dump`)."""
    text = '["a\\u002Eb".c]\nx = 1\n["lit\\\\"]\n"k\\u002Ey".z = 2\n'
    assert tomlparse.parse(text).value == {"a.b": {"c": {"x": 1}}, "lit\\": {"k.y": {"z": 2}}}
    raw = tomlparse.parse(text, header_escapes=False)
    assert raw.value == {"a\\u002Eb": {"c": {"x": 1}}, "lit\\\\": {"k.y": {"z": 2}}}
    assert raw.node(("a\\u002Eb", "c")).kind == "header"
    # Both spellings are one table to TOML 1.0, two to go-toml v1.
    twice = '["a\\u002Eb"]\nx = 1\n["a.b"]\nx = 2\n'
    with pytest.raises(TOMLError):
        tomlparse.parse(twice)
    assert tomlparse.parse(twice, header_escapes=False).value == {"a\\u002Eb": {"x": 1}, "a.b": {"x": 2}}
    with pytest.raises(TOMLError, match="escaped quote"):
        tomlparse.parse('["a\\"b"]\n', header_escapes=False)  # go-toml v1: invalid bare key character
