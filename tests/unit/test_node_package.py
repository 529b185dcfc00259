"""The node program as a package (generator/node) and the one file regauth ships per plan.

- every node module imports only the standard library and its siblings, and compiles
  and imports on the oldest node Python (3.6);
- what is shipped is the same code (same syntax tree once docstrings, comments and
  annotations are gone and after the checked renaming of local variables), byte-identical
  for the same plan, and refuses Python < 3.6
  in one line;
- for every combination of step kinds the shipped file RUNS on 3.6 and 3.13 against a
  fake root and writes exactly what the package writes on this interpreter.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import itertools
import json
import keyword
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from generator import applyscript, nodebuild
from generator.node import main as node_main
from generator.node import plan as node_plan
from tests.conftest import run_cli, write_profile
from tests.support import node_pythons

# Every python3 a supported cloud image ships (README: node requirements), plus Debian's own:
# the one list is tests/support/nodepython.py.
OLDEST, NEWEST = Path(node_pythons.OLDEST), Path(node_pythons.NEWEST)
NODE_PYTHONS = [Path(p) for p in node_pythons.NODE_PYTHONS]
NODE_IDS = [node_pythons.python_id(str(p)) for p in NODE_PYTHONS]
MODULES = nodebuild.all_modules()


def interpreter(path: Path) -> str:
    return node_pythons.require_python(str(path))  # skips locally, fails under CI=true


# ------------------------------------------------------------------ the package itself
@pytest.mark.parametrize("name", MODULES)
def test_node_module_imports_only_the_standard_library(name: str) -> None:
    tree = ast.parse(nodebuild.source(name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 1, f"{name}.py: only `from .sibling import` inside the package"
            assert all((node.module or a.name).split(".")[0] in MODULES for a in node.names), f"{name}.py line {node.lineno}"
            continue
        else:
            continue
        for full in names:
            top = full.split(".")[0]
            # PyYAML is optional on the node (imported inside a try, ImportError handled).
            assert top in sys.stdlib_module_names or top == "yaml", f"{name}.py line {node.lineno} imports {full}, which is not in the standard library"
    assert "from __future__ import annotations" not in nodebuild.source(name)


def test_yaml_is_optional_where_it_is_imported() -> None:
    tree = ast.parse(nodebuild.source("documents"))
    [guard] = [n for n in ast.walk(tree) if isinstance(n, ast.Try) and any(isinstance(s, ast.Import) and s.names[0].name == "yaml" for s in n.body)]
    assert any(isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in guard.handlers)


@pytest.mark.parametrize("python", NODE_PYTHONS, ids=NODE_IDS)
def test_every_node_module_compiles_and_imports_on_node_pythons(python: Path, tmp_path: Path) -> None:
    # A copy as a top-level package: importing it there evaluates every annotation and
    # default the way a node does, without the generator (or this repo) on sys.path.
    shutil.copytree(nodebuild.NODE_DIR, tmp_path / "regauth_node", ignore=shutil.ignore_patterns("__pycache__"))
    check = (
        "import importlib, sys\n"
        "sys.path.insert(0, '.')\n"
        "for name in sys.argv[1:]:\n"
        "    compile(open('regauth_node/%s.py' % name, encoding='utf-8').read(), name, 'exec')\n"
        "    importlib.import_module('regauth_node.' + name)\n"
        "print('ok', len(sys.argv) - 1)\n"
    )
    proc = subprocess.run([interpreter(python), "-I", "-B", "-c", check, *MODULES], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"ok {len(MODULES)}", proc.stderr


def test_lazy_imports_are_the_modules_a_plan_adds() -> None:
    """An import inside a function ships only when plan.modules adds it: check that every
    such import is one plan.modules knows how to add, and that it does add it."""
    lazy = {name: nodebuild.lazy_imports_of(name) for name in MODULES if name != "credprovider"}
    assert set().union(*lazy.values()) <= {"hoststoml", "bootfetch", "kubeletprovider", "refresh"}, lazy
    # refresh: added by the profile's refresh: (render), not by a step.
    assert "('refresh', " in applyscript.script_for_plan([], refresh=True).decode() and "('refresh', " not in applyscript.script_for_plan([]).decode()
    regauth = {"kind": "kubelet", "registries": [], "provider": {"type": "regauth"}}
    assert "kubeletprovider" in node_plan.modules([regauth])
    assert "kubeletprovider" not in node_plan.modules([{"kind": "kubelet", "registries": [], "provider": {"type": "gcp"}}])
    # regauth-credential-provider is its own program: it ships its lazy imports itself.
    provider = applyscript.provider_program().decode()
    assert all(f"({name!r}, " in provider for name in nodebuild.lazy_imports_of("credprovider")), nodebuild.lazy_imports_of("credprovider")
    tls = {"host": "r.example", "password": "p", "tls": {"ca": "x"}}
    boot = {"host": "r.example", "password_from": {"gcp_secret_manager": "projects/p/secrets/s/versions/1", "transform": "none"}}
    for kind in ("containerd", "microk8s"):
        assert "hoststoml" in node_plan.modules([{"kind": kind, "registries": [tls]}])
        assert "hoststoml" not in node_plan.modules([{"kind": kind, "registries": [{"host": "r", "password": "p"}]}])
    assert "bootfetch" in node_plan.modules([{"kind": "docker", "registries": [boot]}])
    assert "bootfetch" not in node_plan.modules([{"kind": "docker", "registries": [tls]}])


# ------------------------------------------------------------------ what is shipped
class _Bare(ast.NodeTransformer):
    """The syntax tree without docstrings, annotations and unused typing imports (an
    independent statement of what nodebuild.shrink may remove)."""

    def _body(self, node: ast.AST) -> ast.AST:
        self.generic_visit(node)
        body = node.body  # type: ignore[attr-defined]
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        return node

    visit_Module = visit_ClassDef = _body

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.returns = None
        for arg in node.args.posonlyargs + node.args.args + node.args.kwonlyargs + [a for a in (node.args.vararg, node.args.kwarg) if a]:
            arg.annotation = None
        return self._body(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        return ast.Assign(targets=[node.target], value=node.value) if node.value is not None else ast.Pass()


_KEYWORDS_PASSED = {k.arg for name in MODULES for c in ast.walk(ast.parse(nodebuild.source(name))) if isinstance(c, ast.Call) for k in c.keywords}


class _Renamed:
    """The syntax tree with each function's locals renamed as ``nodebuild.local_renames``
    says, after checking (independently of nodebuild) that the renaming is safe: the
    function has no nested function or class (lambdas that bind none of the renamed
    names), no global/nonlocal and no locals()/eval; an old name is
    bound in it, or is a parameter no call in the node package passes as a keyword; new
    names are distinct and none is a builtin or a name the function uses and keeps
    (a global, an import, a name it does not rename), so none hides another."""

    def __init__(self, renames: dict, module: ast.Module) -> None:
        self.renames = renames
        self.functions = [n for n in ast.walk(module) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]

    def rename(self) -> None:
        for index, mapping in self.renames.items():
            func = self.functions[index]
            inner = [n for stmt in func.body for n in ast.walk(stmt)]
            assert not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Global, ast.Nonlocal)) for n in inner)
            in_lambdas = [n for lam in inner if isinstance(lam, ast.Lambda) for n in ast.walk(lam)]  # they only read renamed names
            assert not {n.arg for n in in_lambdas if isinstance(n, ast.arg)} & set(mapping)
            assert not {n.id for n in in_lambdas if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)} & set(mapping)
            assert not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("locals", "vars", "eval", "exec", "dir", "globals") for n in inner)
            params = {a.arg for a in ast.walk(func.args) if isinstance(a, ast.arg)}
            bound = {n.id for n in inner if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} | {n.name for n in inner if isinstance(n, ast.ExceptHandler)}
            assert set(mapping) <= bound | params and not set(mapping) & _KEYWORDS_PASSED
            uses = {n.id for n in inner if isinstance(n, ast.Name)} | params | {n.arg for n in in_lambdas if isinstance(n, ast.arg)}
            uses |= {n.name for n in inner if isinstance(n, ast.ExceptHandler) and n.name}
            uses |= {(a.asname or a.name).split(".")[0] for n in inner if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
            assert not set(mapping.values()) & ((uses - set(mapping)) | set(dir(builtins)) | set(keyword.kwlist))
            assert len(set(mapping.values())) == len(mapping)
            for n in inner + [a for a in ast.walk(func.args) if isinstance(a, ast.arg) and a not in in_lambdas]:
                if isinstance(n, ast.arg) and n.arg in mapping:
                    n.arg = mapping[n.arg]
                elif isinstance(n, ast.Name) and n.id in mapping:
                    n.id = mapping[n.id]
                elif isinstance(n, ast.ExceptHandler) and n.name in mapping:
                    n.name = mapping[n.name]


def _normal(tree: ast.Module) -> str:
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    tree.body = [s for s in tree.body if not (isinstance(s, ast.ImportFrom) and s.module == "typing" and not any(a.name in used for a in s.names))]
    return ast.dump(tree)


@pytest.mark.parametrize("name", MODULES)
def test_shipped_module_is_the_same_code(name: str) -> None:
    shipped = nodebuild.shrink(name)
    expected = _Bare().visit(ast.parse(nodebuild.source(name)))
    _Renamed(nodebuild.renames_of(name), expected).rename()
    assert _normal(ast.parse(shipped)) == _normal(expected)
    assert "#" not in "".join(line for line in shipped.splitlines() if line.lstrip().startswith("#"))
    assert len(shipped) < len(nodebuild.source(name))


def test_shipped_file_is_byte_identical_for_the_same_plan() -> None:
    steps = [{"kind": "containerd", "registries": [{"host": "h", "password": "p", "tls": {"ca": "c"}}]}]
    first = applyscript.script_for_plan(steps)
    nodebuild.build.cache_clear()
    nodebuild.shrink.cache_clear()
    nodebuild.source.cache_clear()
    assert applyscript.script_for_plan(json.loads(json.dumps(steps))) == first
    assert applyscript.script_for_plan([{"kind": "docker", "registries": []}]) != first


def test_tree_shake_drops_only_what_nothing_reaches() -> None:
    modules = {
        "main": "from .a import used, dead\ndef main():\n return used()\n",
        "a": "import sys\nX = 1\ndef used():\n return getattr(sys.modules[__name__], 'helper')()\ndef helper():\n pass\ndef dead():\n return X\n",
    }
    out = nodebuild.tree_shake(modules)
    assert out["main"] == "from .a import used\ndef main():\n return used()\n"
    assert "def dead" not in out["a"] and "X = 1" not in out["a"]
    assert "def helper" in out["a"] and "def used" in out["a"] and "import sys" in out["a"]
    classes = {
        "main": "from .a import A, B\ndef main():\n return A().used() + B().kept()\n",
        "a": "class A(object):\n def __init__(self):\n  pass\n def used(self):\n  return self.helper()\n def helper(self):\n  return 1\n def dead(self):\n  return 2\n"
        "class B(dict):\n def kept(self):\n  return 1\n def keys(self):\n  return []\n",
    }
    out = nodebuild.tree_shake(classes)["a"]
    assert "def dead" not in out and "def used" in out and "def helper" in out and "def __init__" in out
    assert "def keys" in out  # dict may call it by a name the code never spells
    plain = nodebuild.tree_shake({"main": "import json\nimport os\n__all__ = ['main']\ndef main():\n return os.sep\n"})["main"]
    assert plain == "import os\ndef main():\n return os.sep\n"
    starred = nodebuild.tree_shake({"main": "from .a import *\ndef main():\n return f()\n", "a": "__all__ = ['f']\ndef f():\n pass\n"})["a"]
    assert starred.startswith("__all__")
    containerd = applyscript.script_for_plan([{"kind": "containerd", "registries": []}])
    assert b"def toml_value(" not in containerd and b"def toml_value(" in applyscript.full_script()


@pytest.mark.parametrize("roots", [("containerd",), MODULES], ids=["containerd", "all"])
def test_shipped_file_renames_private_names_only_where_every_use_is_shipped(roots: tuple) -> None:
    names = nodebuild.modules_for(frozenset(roots))
    kept = nodebuild.tree_shake({name: nodebuild.shrink(name) for name in names})
    mapping = nodebuild.private_renames(kept)
    assert mapping and all(old.startswith("_") and not old.startswith("__") for old in mapping)
    trees = {name: ast.parse(text) for name, text in kept.items()}
    spelled = {v for t in trees.values() for n in ast.walk(t) for f in ("id", "attr", "arg", "name", "asname") for v in [getattr(n, f, None)] if isinstance(v, str)}
    strings = {n.value for t in trees.values() for n in ast.walk(t) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    attributes_or_args = {getattr(n, "attr", None) or getattr(n, "arg", None) for t in trees.values() for n in ast.walk(t) if isinstance(n, (ast.Attribute, ast.arg))}
    assert not set(mapping) & (strings | attributes_or_args)
    assert not set(mapping.values()) & spelled and len(set(mapping.values())) == len(mapping)
    for tree in trees.values():  # a private name is bound only at top level (never shadowed)
        for scope in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))):
            inner = [n for s in (scope.body if isinstance(scope.body, list) else [scope.body]) for n in ast.walk(s)]
            assert not {n.id for n in inner if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)} & set(mapping)
            assert not {getattr(n, "name", None) for n in inner if isinstance(n, (ast.FunctionDef, ast.ClassDef))} & set(mapping)
    built = ast.parse(nodebuild.build(frozenset(roots)).decode("utf-8"))
    [shipped] = [ast.literal_eval(n.value) for n in built.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "_S"]
    for name, text in shipped:
        expected = trees[name]
        for n in ast.walk(expected):
            for field in ("id", "name"):
                if isinstance(getattr(n, field, None), str) and getattr(n, field) in mapping and not isinstance(n, ast.ExceptHandler):
                    setattr(n, field, mapping[getattr(n, field)])
        assert ast.dump(ast.parse(text)) == ast.dump(expected)


def test_python_older_than_3_6_gets_one_line_and_nothing_changes(tmp_path: Path) -> None:
    script = tmp_path / "regauth-apply"
    script.write_bytes(applyscript.full_script())
    root = tmp_path / "root"
    root.mkdir()
    # The oldest interpreter here, told it is 3.5: the entry's own check must stop it.
    fake = "import sys; sys.version_info = (3, 5, 9, 'final', 0); sys.version = '3.5.9 (fake)'; sys.argv = sys.argv[1:]; exec(compile(open(sys.argv[0]).read(), sys.argv[0], 'exec'), {'__name__': '__main__'})"
    proc = subprocess.run([interpreter(OLDEST), "-I", "-c", fake, str(script), "--root", str(root), "--plan", str(tmp_path / "plan.json")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == "regauth-apply: needs Python 3.6 or newer, this is 3.5.9; nothing was changed\n"
    assert list(root.iterdir()) == []
    head = script.read_text().split("\n_P = ")[0]
    ast.parse(head, feature_version=(3, 7))  # the oldest grammar ast can check; the head is plain Python 3


# ------------------------------------------------------------------ every combination runs
ALL_KINDS = sorted(node_plan.STEP_KINDS)
PROFILE = """
version: 1
targets:
  containerd: {version: "1.7"}
  microk8s: {wait_for_template: 0}
  k3s: {}
  rke2: {}
  docker: {}
  podman: {}
  crio: {}
  kubelet: {}
secrets:
  pw: {source: env, var: REGAUTH_NODE_PW}
  ca: {source: file, path: ca.pem}
registries:
  - host: registry.example.com:5000
    auth: {type: basic, username: robot, secret: pw}
    tls: {ca_file: ca.pem}
  - host: europe-docker.pkg.dev
    auth: {type: basic, username: _json_key, secret: pw}
    mirror_for: docker.io
    path: /v2/p/r
"""


@pytest.fixture(scope="module")
def full_plan(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tests.unit.test_targets import _ca_pem

    folder = tmp_path_factory.mktemp("plan")
    (folder / "ca.pem").write_bytes(_ca_pem())
    profile = write_profile(folder, PROFILE)
    result = run_cli("render", str(profile), "-o", str(folder / "out"), env={"REGAUTH_NODE_PW": 'pw "q" $x \u00e9'})
    assert result.code == 0, result.err
    plan = json.loads((folder / "out/node/rootfs/etc/regauth/plan.json").read_text())
    assert sorted(s["kind"] for s in plan["steps"]) == ALL_KINDS
    return plan


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode & 0o7777) for p in sorted(root.rglob("*")) if p.is_file()}


def _fake_root(base: Path, plan: dict) -> Path:
    root = Path(tempfile.mkdtemp(dir=base))
    (root / "run/lock").mkdir(parents=True)
    for step in plan["steps"]:
        if step["kind"] == "microk8s":  # the snap's template, which MicroK8s installs
            template = root / step["path"].lstrip("/")
            template.parent.mkdir(parents=True, exist_ok=True)
            template.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "${SANDBOX_IMAGE}"\n')
    return root


@pytest.mark.parametrize("python", [OLDEST, NEWEST], ids=["3.6", "3.13"])
def test_every_combination_of_step_kinds_runs_on_node_pythons(python: Path, full_plan: dict, tmp_path: Path) -> None:
    exe = interpreter(python)
    base = Path(tempfile.mkdtemp(prefix="regauth-combo-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
    try:
        combos = [c for n in range(1, len(ALL_KINDS) + 1) for c in itertools.combinations(ALL_KINDS, n)]
        assert len(combos) == 2 ** len(ALL_KINDS) - 1
        shipped_sets = set()
        for combo in combos:
            plan = dict(full_plan, steps=[s for s in full_plan["steps"] if s["kind"] in combo])
            plan_file = base / "plan.json"
            plan_file.write_text(json.dumps(plan))
            script = base / "regauth-apply"
            script.write_bytes(applyscript.script_for_plan(plan["steps"]))
            shipped_sets.add(nodebuild.modules_for(frozenset(node_plan.modules(plan["steps"]))))
            node, here = _fake_root(base, plan), _fake_root(base, plan)
            proc = subprocess.run([exe, "-I", str(script), "--root", str(node), "--plan", str(plan_file), "--no-restart"], capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, (combo, proc.stderr)
            with contextlib.redirect_stderr(io.StringIO()) as log:
                code = node_main.main(["--root", str(here), "--plan", str(plan_file), "--no-restart"])
            assert code == 0, (combo, log.getvalue())
            got, want = _tree(node), _tree(here)
            assert got == want, (combo, sorted(set(got) ^ set(want)) or [k for k in got if got[k] != want[k]])
            assert want, combo  # something was written (the lock is the directory run/regauth, not a file)
            shutil.rmtree(node)
            shutil.rmtree(here)
        assert len(shipped_sets) > 10  # the combinations really ship different files
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ the plan's schema
@pytest.fixture(scope="module")
def example_plans(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """plan.json of every example profile (with the throwaway key `make demo` creates)."""
    from tests.conftest import ROOT

    copy = tmp_path_factory.mktemp("examples") / "profiles"
    shutil.copytree(ROOT / "profiles", copy, ignore=shutil.ignore_patterns("*.json"))
    subprocess.run([sys.executable, str(ROOT / "scripts/demo-key.py"), str(copy / "keys/demo-gar-key.json")], check=True, capture_output=True)
    out = copy.parent / "out"
    result = run_cli("render", *map(str, sorted(copy.glob("*.yaml"))), "-o", str(out), env={"REGAUTH_EXAMPLE_PASSWORD": "x"})
    assert result.code == 0, result.err
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/rootfs/etc/regauth/plan.json"))]


def test_plan_schema_is_the_committed_one_and_every_rendered_plan_matches_it(example_plans: list[dict], full_plan: dict) -> None:
    import jsonschema

    from generator.planschema import plan_schema
    from tests.conftest import ROOT

    schema = plan_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert json.loads((ROOT / "schema/plan-v1.json").read_text()) == schema, "run: python -m generator.planschema > schema/plan-v1.json"
    plans = example_plans + [full_plan]
    assert {s["kind"] for p in plans for s in p["steps"]} == set(ALL_KINDS)
    assert any("password_from" in e for p in plans for s in p["steps"] for e in s["registries"])
    for plan in plans:
        jsonschema.validate(plan, schema)
        node_plan.check_plan(plan)


BAD_PLANS = {
    "missing field": (lambda p: p["steps"][0].pop("path"), "step 1 (containerd) has no 'path'"),
    "wrong type": (lambda p: p["steps"][0].update(containerd_version=1.7), "step 1 (containerd): 'containerd_version' is not string"),
    "unknown field": (lambda p: p["steps"][0].update(new_config_version=2), "step 1 (containerd): unknown field 'new_config_version'"),
    "unknown kind": (lambda p: p["steps"][0].update(kind="cri-dockerd"), "step 1: unknown step kind 'cri-dockerd'"),
    "registry field": (lambda p: p["steps"][0]["registries"][0].pop("username"), "step 1 (containerd) registry 1 has no 'username'"),
    "format": (lambda p: p.update(format=2), "plan format 2 is not 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_a_plan_that_does_not_match_is_refused_in_one_line(case: str, full_plan: dict, tmp_path: Path) -> None:
    plan = json.loads(json.dumps(full_plan))
    plan["steps"] = [s for s in plan["steps"] if s["kind"] == "containerd"]
    script = tmp_path / "regauth-apply"
    script.write_bytes(applyscript.script_for_plan(plan["steps"]))
    mutate, message = BAD_PLANS[case]
    mutate(plan)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    root = tmp_path / "root"
    root.mkdir()
    proc = subprocess.run([interpreter(OLDEST), "-I", str(script), "--root", str(root), "--plan", str(tmp_path / "plan.json"), "--no-restart"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr and "re-render" in proc.stderr, proc.stderr
    assert [p for p in root.rglob("*")] == []


@pytest.mark.parametrize("python", [OLDEST, NEWEST], ids=["3.6", "3.13"])
def test_boot_fetch_plan_runs_on_node_pythons(python: Path, tmp_path: Path, sa_key: dict) -> None:
    """The one module only boot-fetch plans ship (bootfetch: metadata token, Secret
    Manager REST, CRC32C) against the loopback fakes, on the oldest and newest node Python."""
    import base64
    from generator.tomlcompat import tomllib

    from tests.support.containerd import dropin_config
    from tests.support.fake_gsm import running_fake_gsm
    from tests.support.fake_metadata import running_fake_metadata
    from tests.support.keys import key_file_bytes
    from tests.unit.test_boot_fetch import HOST, V3, node_root, render_boot

    exe = interpreter(python)
    with running_fake_metadata() as md, running_fake_gsm() as gsm:
        key = key_file_bytes(sa_key)
        gsm.add_secret("regauth-test", "gar-reader", b"old", b"older", key)
        rootfs = render_boot(tmp_path, gsm.rest_endpoint) / "rootfs"
        script = (rootfs / "usr/local/sbin/regauth-apply").read_bytes()
        assert b"'bootfetch'," in script
        root = node_root(tmp_path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GCE_")}
        env["GCE_METADATA_HOST"] = md.host_port
        argv = [exe, "-I", str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(root), "--plan", str(rootfs / "etc/regauth/plan.json"), "--no-restart", "--fetch-timeout", "20"]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    auth = dropin_config(root)
    for part in V3 + (HOST, "auth"):
        auth = auth[part]
    assert auth == {"username": "_json_key_base64", "password": base64.b64encode(key).decode()}


@pytest.mark.parametrize("python", NODE_PYTHONS, ids=NODE_IDS)
def test_every_step_kind_runs_on_every_node_python(python: Path, full_plan: dict, tmp_path: Path) -> None:
    """The plan with all eight step kinds (mirrors and TLS too): the shipped file writes
    what the package writes here, and a second run changes nothing."""
    exe = interpreter(python)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(full_plan))
    script = tmp_path / "regauth-apply"
    script.write_bytes(applyscript.script_for_plan(full_plan["steps"]))
    node, here = _fake_root(tmp_path, full_plan), _fake_root(tmp_path, full_plan)
    argv = [exe, "-I", str(script), "--root", str(node), "--plan", str(plan_file), "--no-restart"]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    with contextlib.redirect_stderr(io.StringIO()) as log:
        assert node_main.main(["--root", str(here), "--plan", str(plan_file), "--no-restart"]) == 0, log.getvalue()
    written = _tree(node)
    assert written == _tree(here)
    assert any(path.endswith("hosts.toml") for path in written) and any(path.endswith("registries.yaml") for path in written)
    second = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "updated" not in second.stderr, second.stderr
    assert _tree(node) == written
