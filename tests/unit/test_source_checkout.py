"""regauth runs from a source checkout with nothing installed (issue 13).

``python -m generator`` from the repo root must find the templates in ``templates/``
beside the package when the installed package ``generator.templates`` does not exist.
The test venv has regauth installed (editable), so the child first removes every
import hook and path entry that installation added, leaving exactly what a fresh
interpreter with the repo on sys.path sees.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

UNINSTALLED = r"""
import runpy, sys
# What an editable or wheel install adds: a meta-path finder and site-packages entries
# that can map generator.templates.  Drop both; keep the stdlib and third-party libraries.
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in repr(h).lower()]
sys.path.insert(0, sys.argv[1])
for name in [m for m in sys.modules if m == "generator" or m.startswith("generator.")]:
    del sys.modules[name]
import importlib.util
assert importlib.util.find_spec("generator.templates") is None, "generator.templates still importable"
sys.argv = ["regauth"] + sys.argv[2:]
runpy.run_module("generator", run_name="__main__", alter_sys=True)
"""


def _uninstalled(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", UNINSTALLED, str(ROOT), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_render_from_source_checkout_without_install(tmp_path: Path, profile_dir: Path) -> None:
    profile = profile_dir / "node.yaml"
    profile.write_text("version: 1\ntargets:\n  containerd: {version: \"1.7\"}\nsecrets:\n  k: {source: file, path: key.json}\n"
                       "registries:\n  - host: europe-docker.pkg.dev\n    auth: {type: gcp-service-account, secret: k}\n")
    proc = _uninstalled("render", str(profile), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "internal error" not in proc.stderr
    assert (tmp_path / "out/node/rootfs/usr/local/sbin/regauth-apply").is_file()
    assert "rendered 1 profile" in proc.stdout + proc.stderr


def test_missing_templates_is_one_clear_line(tmp_path: Path, profile_dir: Path) -> None:
    """A copy of the package with no templates anywhere: exit 1, one line naming the fix, no internal error."""
    import shutil

    src = tmp_path / "src"
    shutil.copytree(ROOT / "generator", src / "generator", ignore=shutil.ignore_patterns("__pycache__"))
    profile = profile_dir / "node.yaml"
    profile.write_text("version: 1\ntargets:\n  containerd: {version: \"1.7\"}\nsecrets:\n  k: {source: file, path: key.json}\n"
                       "registries:\n  - host: europe-docker.pkg.dev\n    auth: {type: gcp-service-account, secret: k}\n")
    proc = subprocess.run([sys.executable, "-c", UNINSTALLED, str(src), "render", str(profile), "-o", str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "templates are missing" in proc.stderr and "fix:" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
