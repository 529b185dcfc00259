"""``regauth-apply``, the program that runs on the VM: built per plan from ``generator/node``.

The node program is the package ``generator.node`` (standard library only, Python 3.6
syntax).  regauth ships one file per plan holding exactly the modules its step kinds
need, found by following the package's own imports from ``node/main.py`` and from each
step kind's module (``node/plan.py``); the generator imports the same modules for the
rootfs preview, doctor and verify, so previews and tests run the code a node runs.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from generator.errors import RuntimeFailure

VM_PATH = "/usr/local/sbin/regauth-apply"
# kubelet's credential provider (issue 16): a second program from the same package,
# built the same way from its own entry module.
PROVIDER_NAME = "regauth-credential-provider"
PROVIDER_ENTRY = "credprovider"
PLAN_PATH = "/etc/regauth/plan.json"
NODE_DIR = Path(__file__).resolve().parent / "node"
PACKAGE = "generator.node"
ENTRY = "main"


@lru_cache(maxsize=1)
def templates_dir() -> Path:
    """Where the shipped templates are.

    Installed (wheel or editable), they are the package ``generator.templates``; in a
    source checkout run as ``python -m generator`` (the repo on sys.path, nothing
    installed) that package does not exist, and the top-level ``templates/`` folder
    beside ``generator/`` is the same files.  Found from ``__file__`` rather than
    importlib.resources, which costs ~15 ms of a ~100 ms cold start.
    """
    try:
        import generator.templates as shipped
    except ImportError:
        beside = Path(__file__).resolve().parent.parent / "templates"
        if (beside / "cloud-config.yaml.j2").is_file():
            return beside
        raise RuntimeFailure(
            f"regauth's templates are missing: neither the package generator.templates nor {beside} exists",
            "reinstall regauth (pip install regauth), or run it from a complete source checkout",
        ) from None
    return Path(shipped.__file__).parent


@lru_cache(maxsize=None)
def source(name: str) -> str:
    """The readable source of node module ``name`` (as in the repo)."""
    return (NODE_DIR / f"{name}.py").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def imports_of(name: str) -> frozenset[str]:
    """The package modules ``name`` imports (``from .x import y``, ``from . import x``), at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source(name))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level > 1 or isinstance(node, ast.Import) and any(a.name.startswith("generator") for a in node.names):
            raise RuntimeFailure(f"generator/node/{name}.py imports outside its package", "node modules import only each other and the standard library")
    return frozenset(found)


def step_modules(kinds: Iterable[str]) -> frozenset[str]:
    """The modules that prepare ``kinds`` (names no step kind has, e.g. "hosts", are ignored)."""
    from generator.node.plan import STEP_KINDS

    return frozenset(STEP_KINDS[k][0] for k in kinds if k in STEP_KINDS)


@lru_cache(maxsize=64)
def modules_for(kinds: frozenset[str], entry: str = ENTRY) -> tuple[str, ...]:
    """Every module a program for ``kinds`` (entered at module ``entry``) needs, each
    after the modules it imports."""
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

    for name in sorted(step_modules(kinds) | {entry}):
        visit(name)
    return tuple(order)


# The entry of the shipped file: every Python 3 parses this part, so an interpreter
# older than the node modules' syntax (3.6) gets one clear line instead of a SyntaxError.
_HEAD = '''#!/usr/bin/python3{flags}
# {prog}: built by regauth from generator/node ({modules}); edit the source there, not this file.
import sys
if sys.version_info < (3, 6):
    sys.stderr.write("{prog}: needs Python 3.6 or newer, this is %s; nothing was changed\\n" % sys.version.split()[0])
    sys.exit(1)
'''

# Why a finder: a run pays only for the modules it imports (the provider's warm answer
# never loads the fetch code); ModuleSpec by way of sys and no importlib/types import,
# which would cost more than the provider's whole answer.
_LOADER = '''

def _load():
    # Modules of _S run when first imported, under a package name unique to this file.
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


@lru_cache(maxsize=64)
def script_for(kinds: frozenset[str]) -> bytes:
    """The one file a node gets for a plan with step ``kinds``: its modules' sources and a
    small loader (pure: the same kinds give the same bytes)."""
    return program(ENTRY, kinds, "regauth-apply", "")


@lru_cache(maxsize=1)
def provider_program() -> bytes:
    """regauth-credential-provider: the modules ``credprovider`` imports and the same loader.

    Started as ``python3 -IS`` (kubelet execs it): isolated from PYTHON* variables and
    the user's site (it runs as root with kubelet's environment), and without the
    site-packages setup it never needs, which is a third of an interpreter's start.
    """
    return program(PROVIDER_ENTRY, frozenset(), PROVIDER_NAME, " -IS")


def program(entry: str, kinds: frozenset[str], prog: str, flags: str) -> bytes:
    """One shipped file: module ``entry`` (whose ``main`` runs), the step modules of
    ``kinds`` and everything they import; ``flags`` go on the ``#!`` line."""
    names = modules_for(kinds, entry)
    sources = tuple((name, source(name)) for name in names)
    digest = hashlib.sha256(repr(sources).encode("utf-8")).hexdigest()[:12]
    body = [_HEAD.format(modules=", ".join(names), prog=prog, flags=flags), f"_P = {('_regauth_node_' + digest)!r}\n", f"_E = {entry!r}\n_F = {prog!r}\n", "_S = (\n"]
    body.extend(f"    ({name!r}, {text!r}),\n" for name, text in sources)
    body.append(")\n")
    body.append(_LOADER)
    return "".join(body).encode("utf-8")


def all_kinds() -> frozenset[str]:
    from generator.node.plan import STEP_KINDS

    return frozenset(STEP_KINDS)


@lru_cache(maxsize=1)
def module() -> ModuleType:
    """Every node module's names in one namespace (for previews and tests), plus ``STEPS``
    (step kind -> prepare function).  The functions are the package's own."""
    import importlib

    facade = ModuleType("regauth_apply")
    for name in modules_for(all_kinds()):
        mod = importlib.import_module(f"{PACKAGE}.{name}")
        for key, value in vars(mod).items():
            if not key.startswith("__"):
                facade.__dict__.setdefault(key, value)
    from generator.node.main import steps

    facade.STEPS = steps(sorted(all_kinds()))
    return facade
