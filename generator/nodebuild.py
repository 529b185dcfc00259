"""Build the one file a node gets from the node package ``generator/node``.

Which modules: those ``node/plan.py`` names for the plan (``plan.modules``) and every
module they import at module level, followed through the package's own imports (an
import inside a function is a module the plan adds only when it needs it; a test
keeps those two in agreement).  Why one generated text file rather than a zipapp:
``python3 FILE`` runs it the same way, it stays readable on the node (``less
/usr/local/sbin/regauth-apply``), the tests import the delivered bytes as text, and
gzip in cloud-init's ``gz+b64`` compresses it as well as a zip would.

What is shipped is the readable source minus docstrings, comments, annotations,
unused ``typing`` imports, blank lines and most indentation, removed with ``ast`` and
``tokenize`` (never regexes), so the code that runs is the same code.  The output is a
pure function of the module sources: identical plans give byte-identical files.
"""

from __future__ import annotations

import ast
import hashlib
import io
import tokenize
from functools import lru_cache
from pathlib import Path

from generator.errors import RuntimeFailure

NODE_DIR = Path(__file__).resolve().parent / "node"
ENTRY = "main"


@lru_cache(maxsize=None)
def source(name: str) -> str:
    """The readable source of node module ``name`` (as in the repo)."""
    return (NODE_DIR / f"{name}.py").read_text(encoding="utf-8")


def all_modules() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in NODE_DIR.glob("*.py") if p.stem != "__init__"))


def _relative_imports(nodes: list[ast.stmt], name: str, top: bool) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if not top:
                found |= _relative_imports(node.body, name, top)
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level > 1:
                raise RuntimeFailure(f"generator/node/{name}.py imports outside its package", "node modules import only each other and the standard library")
            found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        for field in ("body", "orelse", "finalbody", "handlers"):
            found |= _relative_imports(getattr(node, field, []) or [], name, top)
    return found


@lru_cache(maxsize=None)
def imports_of(name: str) -> frozenset[str]:
    """Modules of the package that ``name`` imports when it is loaded (module level)."""
    return frozenset(_relative_imports(ast.parse(source(name)).body, name, top=True))


@lru_cache(maxsize=None)
def lazy_imports_of(name: str) -> frozenset[str]:
    """Modules of the package that ``name`` imports only inside a function."""
    return frozenset(_relative_imports(ast.parse(source(name)).body, name, top=False)) - imports_of(name)


@lru_cache(maxsize=64)
def modules_for(roots: frozenset[str]) -> tuple[str, ...]:
    """``roots`` and ``main`` with everything they import, each after the modules it imports."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise RuntimeFailure(f"generator/node imports in a circle through {name}.py", "break the cycle: the shipped file loads modules in import order")
        state[name] = "visiting"
        for dep in sorted(imports_of(name)):
            visit(dep)
        state[name] = "done"
        order.append(name)

    for name in sorted(roots | {ENTRY}):
        visit(name)
    return tuple(order)


# ------------------------------------------------------------------ shrinking
class _Offsets:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def __call__(self, row: int, col: int) -> int:
        """Offset of (1-based row, UTF-8 byte column) as ast reports positions."""
        return self.starts[row - 1] + len(self.lines[row - 1].encode("utf-8")[:col].decode("utf-8"))


def _cut(text: str, cuts: list[tuple[int, int, str]]) -> str:
    for start, end, replacement in sorted(cuts, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _docstrings_and_annotations(text: str) -> str:
    at = _Offsets(text)
    cuts: list[tuple[int, int, str]] = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                cuts.append((at(first.lineno, first.col_offset), at(first.end_lineno, first.end_col_offset), "pass" if len(node.body) == 1 else ""))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
                if arg.annotation is not None:
                    cuts.append((at(arg.lineno, arg.col_offset) + len(arg.arg), at(arg.annotation.end_lineno, arg.annotation.end_col_offset), ""))
            if node.returns is not None:
                arrow = text.rindex("->", 0, at(node.returns.lineno, node.returns.col_offset))
                cuts.append((len(text[:arrow].rstrip(" ")), at(node.returns.end_lineno, node.returns.end_col_offset), ""))
        elif isinstance(node, ast.AnnAssign):
            if node.value is None:
                cuts.append((at(node.lineno, node.col_offset), at(node.end_lineno, node.end_col_offset), "pass"))
            else:
                cuts.append((at(node.target.end_lineno, node.target.end_col_offset), at(node.annotation.end_lineno, node.annotation.end_col_offset), ""))
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            cuts.append((at(*tok.start), at(*tok.end), ""))
    return _cut(text, cuts)


def _unused_typing(text: str) -> str:
    tree = ast.parse(text)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    at = _Offsets(text)
    cuts = [
        (at(node.lineno, node.col_offset), at(node.end_lineno, node.end_col_offset), "")
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "typing" and not any((a.asname or a.name) in used for a in node.names)
    ]
    return _cut(text, cuts)


def _lines(text: str) -> str:
    """Drop blank lines and trailing spaces; indent one space per block level.  Lines
    that start or end inside a multi-line string are left exactly as they are."""
    keep_start: set[int] = set()  # rows that begin inside a string
    keep_end: set[int] = set()  # rows whose end is inside a string
    fstring_start, fstring_end = getattr(tokenize, "FSTRING_START", -1), getattr(tokenize, "FSTRING_END", -1)  # 3.12+
    opened: list[int] = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == fstring_start:
            opened.append(tok.start[0])
            continue
        if tok.type == tokenize.STRING or tok.type == fstring_end:
            first = opened.pop() if tok.type == fstring_end else tok.start[0]
            if tok.end[0] > first:
                keep_start.update(range(first + 1, tok.end[0] + 1))
                keep_end.update(range(first, tok.end[0]))
    depth_of: dict[int, int] = {}  # row -> block depth, for rows that begin a statement
    depth, at_start = 0, True
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER):
            at_start = at_start or tok.type == tokenize.NEWLINE
        elif at_start:
            depth_of[tok.start[0]] = depth
            at_start = False
    out = []
    for row, line in enumerate(text.splitlines(keepends=True), start=1):
        if row in keep_start:
            out.append(line if row in keep_end else line.rstrip(" \t\n") + "\n")
            continue
        body = line.strip(" \t\n") if row not in keep_end else line.lstrip(" \t")
        if not body:
            continue
        out.append(" " * depth_of.get(row, 0) + body + ("" if row in keep_end else "\n"))
    return "".join(out)


@lru_cache(maxsize=None)
def shrink(name: str) -> str:
    """Module ``name`` as shipped (docstrings, comments and annotations dropped)."""
    return _lines(_unused_typing(_docstrings_and_annotations(source(name))))


# ------------------------------------------------------------------ the file
# Every Python 3 parses this head, so an interpreter older than the node modules'
# syntax (3.6) gets one clear line instead of a SyntaxError.
_HEAD = '''#!/usr/bin/python3
# regauth-apply, built by regauth from generator/node ({modules}).
# Edit the source there, not this file.  Usage: regauth-apply [--plan F] [--root DIR] [--no-restart]
import sys
if sys.version_info < (3, 6):
    sys.stderr.write("regauth-apply: needs Python 3.6 or newer, this is %s; nothing was changed\\n" % sys.version.split()[0])
    sys.exit(1)
'''

# Each module runs in order (after the modules it imports) under a package name unique
# to this file's content, so its relative imports work as in the repo.
_LOADER = '''

def _load():
    import types
    pkg = types.ModuleType(_P)
    pkg.__path__ = []
    sys.modules[_P] = pkg
    for name, text in _S:
        mod = types.ModuleType(_P + "." + name)
        mod.__package__ = _P
        mod.__file__ = "regauth-apply/" + name + ".py"
        sys.modules[mod.__name__] = mod
        exec(compile(text, mod.__file__, "exec"), mod.__dict__)
        setattr(pkg, name, mod)
    return sys.modules[_P + ".main"].main


main = _load()
if __name__ == "__main__":
    sys.exit(main())
'''


def _literal(text: str) -> str:
    """``text`` as a triple-quoted literal that stays readable (and compresses well)."""
    body = text.replace("\\", "\\\\").replace("'''", "\\'\\'\\'")
    if body.endswith("'"):
        body = body[:-1] + "\\'"
    assert "\r" not in body and "\x00" not in body
    return "'''" + body + "'''"


@lru_cache(maxsize=64)
def build(roots: frozenset[str]) -> bytes:
    """The shipped file for the modules ``roots`` (and what they import)."""
    names = modules_for(roots)
    shipped = tuple((name, shrink(name)) for name in names)
    package = "_regauth_node_" + hashlib.sha256(repr(shipped).encode("utf-8")).hexdigest()[:12]
    parts = [_HEAD.format(modules=", ".join(names)), f"_P = {package!r}\n_S = (\n"]
    parts.extend(f"({name!r}, {_literal(text)}),\n" for name, text in shipped)
    parts.append(")")
    parts.append(_LOADER)
    return "".join(parts).encode("utf-8")
