"""Print the import graph between generator/ subpackages (module-level and lazy imports alike).

    python scripts/import_graph.py [REV]   # REV: read the tree of a git revision instead of the work tree

One line per arrow ``a -> b (n)``: n imports in a's modules name b.  Top-level modules
(cli.py, render.py, ...) count as their own nodes.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sources(rev: str | None) -> dict[str, str]:
    if rev is None:
        return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in (ROOT / "generator").rglob("*.py")}
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "generator"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {n: subprocess.run(["git", "show", f"{rev}:{n}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout for n in names if n.endswith(".py")}


def unit(module: str) -> str:
    """generator.profile.load -> profile; generator.cli -> cli."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def graph(rev: str | None = None) -> Counter[tuple[str, str]]:
    arrows: Counter[tuple[str, str]] = Counter()
    for name, text in sources(rev).items():
        module = name[:-3].replace("/", ".").removesuffix(".__init__")
        here = unit(module)
        package = module if name.endswith("__init__.py") else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(text)):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    targets = [".".join(base + ([node.module] if node.module else []))]
                else:
                    targets = [node.module or ""]
                    if node.module == "generator":
                        targets = [f"generator.{a.name}" for a in node.names]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
                targets = [str(node.args[0].value)]
            for t in targets:
                if t.startswith("generator.") and unit(t) != here:
                    arrows[(here, unit(t))] += 1
    return arrows


if __name__ == "__main__":
    arrows = graph(sys.argv[1] if len(sys.argv) > 1 else None)
    for (a, b), n in sorted(arrows.items()):
        back = " <-> (cycle)" if (b, a) in arrows else ""
        print(f"{a} -> {b} ({n}){back}")
