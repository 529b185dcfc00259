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
import builtins
import hashlib
import io
import itertools
import keyword
import string
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


# Shipped alone, not as part of a program: user-data's fetcher of regauth-apply
# (output.program: url) runs before any program is on the node.
STANDALONE = ("programfetch",)


def all_modules() -> tuple[str, ...]:
    """Every module of the node package (the checks on node code cover them all)."""
    return tuple(sorted(p.stem for p in NODE_DIR.glob("*.py") if p.stem != "__init__"))


def program_modules() -> tuple[str, ...]:
    """The modules a program may be built from (every one but the STANDALONE ones)."""
    return tuple(name for name in all_modules() if name not in STANDALONE)


@lru_cache(maxsize=None)
def standalone(name: str) -> str:
    """Module ``name`` of STANDALONE as shipped: its own text, shrunk like a program's
    modules, for ``python3 -c`` (it imports only the standard library)."""
    if name not in STANDALONE or imports_of(name) or lazy_imports_of(name):
        raise RuntimeFailure(f"generator/node/{name}.py is not a standalone node module", "list it in nodebuild.STANDALONE and import only the standard library")
    return shrink(name)


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
def modules_for(roots: frozenset[str], entry: str = ENTRY) -> tuple[str, ...]:
    """``roots`` and ``entry`` (``main``; the credential provider's ``credprovider``) with
    everything they import, each after the modules it imports."""
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

    for name in sorted(roots | {entry}):
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
    """Drop blank lines and trailing spaces; indent one space per block level; a line
    that continues a bracketed expression joins the line before.  Lines that start or
    end inside a multi-line string are left exactly as they are."""
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
    continued: set[int] = set()  # rows that begin inside brackets: joined to the row before
    depth, at_start, brackets, row_start = 0, True, 0, 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT) and tok.start[0] != row_start:
            row_start = tok.start[0]
            if brackets and row_start not in keep_start:
                continued.add(row_start)
        if tok.type == tokenize.OP and tok.string in "([{":
            brackets += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            brackets -= 1
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
        if row in continued and out and out[-1].endswith("\n"):
            before = out[-1][-2]
            words = (before.isalnum() or before == "_") and (body[0].isalnum() or body[0] in "_'\"")
            out[-1] = out[-1][:-1] + (" " if words or (before.isdigit() and body[0] == ".") else "")
            out.append(body + ("" if row in keep_end else "\n"))
            continue
        out.append(" " * depth_of.get(row, 0) + body + ("" if row in keep_end else "\n"))
    return "".join(out)


# ------------------------------------------------------------------ short local names
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_OPAQUE = {"locals", "vars", "eval", "exec", "dir", "globals"}  # calls that see names as strings


_RESERVED = frozenset(keyword.kwlist) | frozenset(dir(builtins))


def _identifiers(tree: ast.AST) -> set[str]:
    """Every identifier the module spells anywhere: names, attributes, arguments,
    definitions, imports, keywords passed, and strings that look like names."""
    found = set(_RESERVED)
    for node in ast.walk(tree):
        for field in ("id", "attr", "arg", "name", "asname"):
            value = getattr(node, field, None)
            if isinstance(value, str):
                found.add(value)
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            found.update(node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            found.add(node.value)
    return found


def _short_names(taken: set[str]):
    letters = string.ascii_lowercase + string.ascii_uppercase
    for size in range(1, 4):
        for combo in itertools.product(letters, repeat=size):
            name = "".join(combo)
            if name not in taken:
                yield name


def _shorter(names: list[str], taken: set[str], every: bool = False) -> dict[str, str]:
    """``names`` -> the short names not in ``taken``, in order.  A name already as short
    stays unless ``every`` (then one of ``names`` may not stay: it could meet a new name)."""
    fresh = _short_names(taken)
    pairs = ((old, next(fresh)) for old in names)
    return {old: new for old, new in pairs if every or len(new) < len(old)}


def _inner(node: ast.AST):
    """The nodes of ``node``'s body, not descending into nested scopes."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, _SCOPES):
            yield from _inner(child)


@lru_cache(maxsize=1)
def keywords_passed() -> frozenset[str]:
    """Every keyword any call in the node package passes (``f(key=...)``): a parameter
    with one of these names keeps it, whoever the callee is."""
    return frozenset(k.arg for name in all_modules() for n in ast.walk(ast.parse(source(name))) if isinstance(n, ast.Call) for k in n.keywords if k.arg)


def local_renames(tree: ast.Module, keywords: frozenset[str]) -> dict[int, dict[str, str]]:
    """For each function (by its index among the functions ``ast.walk`` yields): which of
    its local variables get which short name.  Only the plain case is touched, so the
    renaming cannot change what runs: a function with no nested function or class (a
    lambda may read its names, renamed with them, but binds none of the renamed ones), no
    ``global``/``nonlocal``, no call that reads names as strings
    (``locals()``, ``eval`` ...); of its names only those it binds itself (assignment,
    ``for``/``with``/``except`` targets, comprehension variables that never meet an
    outer name) and its parameters unless some call passes that name as a keyword
    (``keywords``); never an import, never one used inside an f-string.  A short name
    is none of the names the function uses and keeps (globals, builtins, imports, its
    other locals), so it cannot hide one.  The shipped file is called only through ``main()``,
    so only the node package's own calls can pass keywords."""
    out: dict[int, dict[str, str]] = {}
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for index, func in enumerate(functions):
        body = [n for stmt in func.body for n in itertools.chain([stmt], _inner(stmt))]
        lambdas = [n for n in body if isinstance(n, ast.Lambda)]
        if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Global, ast.Nonlocal)) for n in body):
            continue
        # a lambda may read the function's names (renamed with them), never bind one
        in_lambdas = [n for lam in lambdas for n in ast.walk(lam)]
        bound_in_lambdas = {n.arg for n in in_lambdas if isinstance(n, ast.arg)} | {n.id for n in in_lambdas if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _OPAQUE for n in body):
            continue
        a = func.args
        params = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [v for v in (a.vararg, a.kwarg) if v]}
        in_comprehension: set[int] = set()  # ids of Name nodes bound by a comprehension around them
        comprehension_bound: set[str] = set()
        for n in body:
            if isinstance(n, _COMPREHENSIONS):
                bound = {t.id for g in n.generators for t in ast.walk(g.target) if isinstance(t, ast.Name)}
                comprehension_bound |= bound
                in_comprehension |= {id(t) for t in ast.walk(n) if isinstance(t, ast.Name) and t.id in bound}
        names = [n for n in body if isinstance(n, ast.Name)]
        bound_here = {n.id for n in names if isinstance(n.ctx, (ast.Store, ast.Del)) and id(n) not in in_comprehension}
        bound_here |= {n.name for n in body if isinstance(n, ast.ExceptHandler) and n.name}
        only_comprehension = {c for c in comprehension_bound - bound_here if all(id(n) in in_comprehension for n in names if n.id == c)}
        imported = {al.asname or al.name.split(".")[0] for n in body if isinstance(n, (ast.Import, ast.ImportFrom)) for al in n.names}
        in_fstrings = {t.id for n in body + in_lambdas if isinstance(n, ast.JoinedStr) for t in ast.walk(n) if isinstance(t, ast.Name)}
        candidates = (bound_here | only_comprehension | params) - keywords - imported - in_fstrings - bound_in_lambdas
        if not candidates:
            continue
        order = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs + [v for v in (a.vararg, a.kwarg) if v] if x.arg in candidates]
        for n in sorted(names, key=lambda n: (n.lineno, n.col_offset)):
            if n.id in candidates and n.id not in order:
                order.append(n.id)
        order += sorted(candidates - set(order))  # except-handler names never read
        # a short name must not hide any other name the function uses (globals, builtins,
        # names it keeps); attributes, keywords and strings cannot meet a local
        used = {n.id for n in body + in_lambdas if isinstance(n, ast.Name)} | {x.arg for x in ast.walk(a) if isinstance(x, ast.arg)}
        used |= bound_in_lambdas | imported | {n.name for n in body if isinstance(n, ast.ExceptHandler) and n.name}
        mapping = _shorter(order, _RESERVED | (used - candidates), every=True)
        if mapping:
            out[index] = mapping
    return out


def _rename_locals(text: str) -> str:
    tree = ast.parse(text)
    renames = local_renames(tree, keywords_passed())
    if not renames:
        return text
    at = _Offsets(text)
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    cuts: list[tuple[int, int, str]] = []
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for index, mapping in renames.items():
        func = functions[index]
        params = [x for x in func.args.posonlyargs + func.args.args + func.args.kwonlyargs + [func.args.vararg, func.args.kwarg] if x is not None and x.arg in mapping]
        for n in itertools.chain(params, *(ast.walk(stmt) for stmt in func.body)):
            if isinstance(n, ast.arg) and n.arg in mapping:
                start = at(n.lineno, n.col_offset)
                assert text[start:start + len(n.arg)] == n.arg
                cuts.append((start, start + len(n.arg), mapping[n.arg]))
            elif isinstance(n, ast.Name) and n.id in mapping:
                start = at(n.lineno, n.col_offset)
                assert text[start:start + len(n.id)] == n.id
                cuts.append((start, start + len(n.id), mapping[n.id]))
            elif isinstance(n, ast.ExceptHandler) and n.name in mapping:
                # the name has no position of its own: it is the NAME after ``as``
                begin = (n.lineno, n.col_offset)
                [tok] = [t for i, t in enumerate(tokens) if t.type == tokenize.NAME and t.string == n.name and tokens[i - 1].string == "as" and t.start >= begin and t.start < (n.body[0].lineno, n.body[0].col_offset)][:1]
                start = at(*tok.start)
                cuts.append((start, start + len(n.name), mapping[n.name]))
    return _cut(text, cuts)


_WORDS = (tokenize.NAME, tokenize.NUMBER)


def _tight(text: str) -> str:
    """Drop the spaces between two tokens on one line that need none (``a = f(x, y)`` ->
    ``a=f(x,y)``).  A space stays between two words (``not x``), before a string after a
    word (``r "x"`` must not become a raw string) and between a number and ``.`` or a
    word (``1 .real``, ``1 if``); nothing inside an f-string (3.12+ tokenizes its
    parts) is touched."""
    at = _Offsets(text)
    fstring_start, fstring_end = getattr(tokenize, "FSTRING_START", -1), getattr(tokenize, "FSTRING_END", -1)
    layout = (tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)
    cuts: list[tuple[int, int, str]] = []
    prev = None
    inside = 0  # f-string nesting
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        assert tok.type != tokenize.ERRORTOKEN or not tok.string.strip(), tok
        if inside == 0 and prev is not None and prev.type not in layout and tok.type not in layout and prev.end[0] == tok.start[0] and prev.end[1] < tok.start[1]:
            gap_start, gap_end = at(*prev.end), at(*tok.start)
            keep = prev.type in _WORDS and (tok.type in _WORDS or tok.type in (tokenize.STRING, fstring_start))
            keep = keep or (prev.type == tokenize.NUMBER and tok.string.startswith("."))
            if text[gap_start:gap_end].strip(" \t") == "":
                cuts.append((gap_start, gap_end, " " if keep else ""))
        if tok.type == fstring_start:
            inside += 1
        elif tok.type == fstring_end:
            inside -= 1
        prev = tok
    return _cut(text, cuts)


def _bare(name: str) -> str:
    return _unused_typing(_docstrings_and_annotations(source(name)))


def renames_of(name: str) -> dict[int, dict[str, str]]:
    """The local renaming ``shrink`` applies to module ``name`` (see ``local_renames``)."""
    return local_renames(ast.parse(_bare(name)), keywords_passed())


@lru_cache(maxsize=None)
def shrink(name: str) -> str:
    """Module ``name`` as shipped (docstrings, comments and annotations dropped, local
    variables shortened, spaces between tokens only where needed)."""
    return _lines(_tight(_rename_locals(_bare(name))))


# ------------------------------------------------------------------ dropping what no shipped code uses
def _referenced(nodes: list[ast.AST]) -> set[str]:
    """Every name these statements could reach: names, attributes, and strings that look
    like names (``getattr(module, "prepare_x")`` with the name from ``plan.STEP_KINDS``)."""
    found: set[str] = set()
    for top in nodes:
        for node in ast.walk(top):
            if isinstance(node, ast.Name):
                found.add(node.id)
            elif isinstance(node, ast.Attribute):
                found.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
                found.add(node.value)
    return found


def _defined(node: ast.stmt) -> str | None:
    """The one name a top-level statement defines, if removing it removes only that name."""
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.decorator_list:
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return None


def _methods(node: ast.stmt) -> list[ast.FunctionDef]:
    """The methods of a top-level class that go if nothing names them: plain methods
    (no decorator, not ``__dunder__``) of a class with no base but ``object``, so no
    library base class calls them by a name the shipped code never spells."""
    if not isinstance(node, ast.ClassDef) or node.decorator_list or node.keywords:
        return []
    if any(not (isinstance(b, ast.Name) and b.id == "object") for b in node.bases):
        return []
    return [m for m in node.body if isinstance(m, ast.FunctionDef) and not m.decorator_list and not m.name.startswith("__")]


def tree_shake(modules: dict[str, str]) -> dict[str, str]:
    """``modules`` (name -> shipped text) without the top-level functions, classes,
    constants, imports and plain methods (``_methods``) that no kept code of any of them
    can reach, and without ``__all__`` when nothing imports ``*``.  Names are matched across modules by name alone, so a name used
    anywhere keeps every definition of it: the result may keep too much, never too little."""
    trees = {name: ast.parse(text) for name, text in modules.items()}
    definitions: dict[str, list[ast.AST]] = {}  # name -> statements (or import aliases) defining it
    alive: set[str] = {"main"}  # the loader calls main.main
    # ``__all__`` only steers ``from m import *``; a plain import binds one name
    star = any(isinstance(n, ast.ImportFrom) and n.names[0].name == "*" for t in trees.values() for n in ast.walk(t))
    for tree in trees.values():
        for node in tree.body:
            name = _defined(node)
            if name == "__all__" and not star:
                continue
            for method in _methods(node):
                definitions.setdefault(method.name, []).append(method)
            if name is not None and not name.startswith("__"):
                definitions.setdefault(name, []).append(node)
            elif isinstance(node, ast.ImportFrom) and node.level:
                for alias in node.names:
                    definitions.setdefault(alias.asname or alias.name, []).append(alias)
            else:
                alive |= _referenced([node])
    todo = list(alive)
    while todo:
        for node in definitions.get(todo.pop(), []):
            if isinstance(node, ast.alias):
                new = {node.name}
            elif isinstance(node, ast.ClassDef):  # its methods count once their names are alive
                methods = _methods(node)
                new = _referenced([s for s in node.body if s not in methods] + node.bases)
            else:
                new = _referenced([node])
            new -= alive
            alive |= new
            todo.extend(new)
    out = {}
    for name, text in modules.items():
        at = _Offsets(text)
        cuts: list[tuple[int, int, str]] = []
        for node in trees[name].body:
            start, end = at(node.lineno, node.col_offset), at(node.end_lineno, node.end_col_offset)
            if _defined(node) is not None and _defined(node) not in alive and not _defined(node).startswith("__"):
                cuts.append((start, end, ""))
            elif (_defined(node) == "__all__" and not star) or (isinstance(node, ast.Import) and not {a.asname or a.name.split(".")[0] for a in node.names} & alive):
                cuts.append((start, end, ""))
            elif isinstance(node, ast.ClassDef):
                dead = [m for m in _methods(node) if m.name not in alive]
                dead = dead if len(dead) < len(node.body) else []  # a class body is never empty
                cuts.extend((at(m.lineno, m.col_offset), at(m.end_lineno, m.end_col_offset), "") for m in dead)
            elif isinstance(node, ast.ImportFrom) and node.level:
                kept = [a for a in node.names if (a.asname or a.name) in alive]
                if len(kept) != len(node.names):
                    names = ", ".join(a.name + (" as " + a.asname if a.asname else "") for a in kept)
                    cuts.append((start, end, f"from {'.' * node.level}{node.module or ''} import {names}" if kept else ""))
        out[name] = _lines(_cut(text, cuts)) if cuts else text
    return out


# ------------------------------------------------------------------ short private names
def private_renames(modules: dict[str, str]) -> dict[str, str]:
    """Short names for the module-private top-level names (``_x``) of the shipped file.
    A name qualifies when exactly one module defines it at top level and, in every
    shipped module, it is only ever a plain name or an imported name: never an
    attribute (``mod._x``), a string (``getattr``), a parameter, a name bound inside a
    function or class, a ``global``, or a name inside an f-string.  Every reference is
    then inside the shipped file (the loader reaches only ``main.main``), so renaming
    them all together changes nothing that runs.  A short name is one no shipped module
    spells."""
    trees = {name: ast.parse(text) for name, text in modules.items()}
    defined: dict[str, int] = {}
    unsafe: set[str] = set()
    taken: set[str] = set()
    for tree in trees.values():
        taken |= _identifiers(tree)
        top = set()
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [t.id for t in targets if isinstance(t, ast.Name)]
            top.update(id(t) for t in targets)
            for name in names:
                defined[name] = defined.get(name, 0) + 1
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                unsafe.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                unsafe.add(node.value)
            elif isinstance(node, ast.arg):
                unsafe.add(node.arg)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                unsafe.update(node.names)
            elif isinstance(node, ast.JoinedStr):
                unsafe.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
            elif isinstance(node, ast.alias) and node.asname:
                unsafe.update((node.name, node.asname))
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                for inner in itertools.chain.from_iterable(ast.walk(s) for s in node.body):
                    if isinstance(inner, ast.Name) and isinstance(inner.ctx, (ast.Store, ast.Del)):
                        unsafe.add(inner.id)
                    elif isinstance(inner, (ast.FunctionDef, ast.ClassDef)):
                        unsafe.add(inner.name)
                    elif isinstance(inner, ast.ExceptHandler) and inner.name:
                        unsafe.add(inner.name)
                    elif isinstance(inner, (ast.Import, ast.ImportFrom)):
                        unsafe.update((a.asname or a.name).split(".")[0] for a in inner.names)
        for node in tree.body:
            if isinstance(node, (ast.For, ast.With, ast.Try, ast.If, ast.While, ast.AugAssign, ast.AnnAssign, ast.Import)):
                unsafe.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)))
                unsafe.update((a.asname or a.name).split(".")[0] for a in getattr(node, "names", []))
    private = sorted(n for n, count in defined.items() if count == 1 and n.startswith("_") and not n.startswith("__") and n not in unsafe)
    return _shorter(private, taken)


def _rename_private(text: str, mapping: dict[str, str]) -> str:
    tree = ast.parse(text)
    at = _Offsets(text)
    cuts: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in mapping:
            start, old = at(node.lineno, node.col_offset), node.id
        elif isinstance(node, ast.alias) and node.name in mapping:
            start, old = at(node.lineno, node.col_offset), node.name
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in mapping:
            line = node.lineno + len(node.decorator_list)
            start = at(line, node.col_offset) + len("class " if isinstance(node, ast.ClassDef) else "def ")
            old = node.name
        else:
            continue
        assert text[start:start + len(old)] == old, (old, text[start:start + 40])
        cuts.append((start, start + len(old), mapping[old]))
    return _cut(text, cuts)


# ------------------------------------------------------------------ the file
# Every Python 3 parses this head, so an interpreter older than the node modules'
# syntax (3.6) gets one clear line instead of a SyntaxError.
_HEAD = '''#!/usr/bin/python3{flags}
# {prog}, built by regauth from generator/node ({modules}).
# Edit the source there, not this file.  Usage: {usage}
import sys
if sys.version_info < (3, 6):
    sys.stderr.write("{prog}: needs Python 3.6 or newer, this is %s; nothing was changed\\n" % sys.version.split()[0])
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


# The credential provider's loader: modules run when first imported (a finder over
# _S), so its warm answer never loads the fetch code (bootfetch, files: imported inside
# functions); ModuleSpec by way of sys, since importing importlib or types would cost
# more than the provider's whole answer (bench/run.py).
_LAZY_LOADER = '''

def _load():
    ModuleSpec = type(sys.__spec__)
    sources = dict(_S)

    class Finder(object):
        @staticmethod
        def find_spec(name, path=None, target=None):
            short = name[len(_P) + 1:]
            if name.startswith(_P + ".") and short in sources:
                return ModuleSpec(name, Finder, origin=_F + "/" + short + ".py")
            return None

        @staticmethod
        def create_module(spec):
            return None

        @staticmethod
        def exec_module(mod):
            short = mod.__name__[len(_P) + 1:]
            exec(compile(sources[short], _F + "/" + short + ".py", "exec"), mod.__dict__)

    pkg = type(sys)(_P)
    pkg.__path__ = []
    pkg.__package__ = _P
    sys.modules[_P] = pkg
    sys.meta_path.insert(0, Finder)
    return __import__(_P + "." + _E, fromlist=["main"]).main


main = _load()
if __name__ == "__main__":
    sys.exit(main())
'''

APPLY_USAGE = "regauth-apply [--plan F] [--root DIR] [--no-restart]"


def _literal(text: str) -> str:
    """``text`` as a triple-quoted literal that stays readable (and compresses well)."""
    body = text.replace("\\", "\\\\").replace("'''", "\\'\\'\\'")
    if body.endswith("'"):
        body = body[:-1] + "\\'"
    assert "\r" not in body and "\x00" not in body
    return "'''" + body + "'''"


@lru_cache(maxsize=64)
def build(roots: frozenset[str], entry: str = ENTRY, prog: str = "regauth-apply", flags: str = "", usage: str = APPLY_USAGE) -> bytes:
    """The shipped file for the modules ``roots`` (and what they import), run by
    ``entry``'s ``main``: regauth-apply (loads every module at start), or with another
    entry a program whose modules load on first import (the credential provider)."""
    names = modules_for(roots, entry)
    kept = tree_shake({name: shrink(name) for name in names})
    short = private_renames(kept)
    shipped = tuple((name, _rename_private(kept[name], short)) for name in names)
    package = "_regauth_node_" + hashlib.sha256(repr(shipped).encode("utf-8")).hexdigest()[:12]
    parts = [_HEAD.format(modules=", ".join(names), prog=prog, flags=flags, usage=usage), f"_P = {package!r}\n_S = (\n"]
    parts.extend(f"({name!r}, {_literal(text)}),\n" for name, text in shipped)
    parts.append(")")
    parts.append(_LOADER if entry == ENTRY else f"\n_E = {entry!r}\n_F = {prog!r}\n" + _LAZY_LOADER)
    return "".join(parts).encode("utf-8")
