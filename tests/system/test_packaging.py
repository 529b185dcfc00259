"""A non-editable install works: templates and the apply script ship inside the wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, gar_profile

pytestmark = pytest.mark.system


def test_wheel_install_renders_from_elsewhere(tmp_path: Path, profile_dir: Path) -> None:
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    installed = target / "generator" / "templates"
    assert (target / "generator" / "node" / "containerd.py").is_file()
    assert (installed / "cloud-config.yaml.j2").is_file()
    profile = gar_profile(profile_dir)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    # The installed `regauth` command (the console-script entry point), run from an
    # unrelated folder with the repo off sys.path: only the installed copy can answer.
    script = target / "bin" / "regauth"
    assert "from generator.__main__ import run" in script.read_text()
    result = subprocess.run(
        [str(script), "render", str(profile), "-o", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    which = subprocess.run([sys.executable, "-c", "import generator; print(generator.__file__)"], env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert Path(which.stdout.strip()).resolve().is_relative_to(target.resolve())  # that environment imports the installed copy
    import generator

    assert (tmp_path / "out/node/user-data").read_bytes().startswith(b"#cloud-config\n")
    from generator.applyscript import script_for_plan  # a containerd plan ships only the modules it needs

    plan = json.loads((tmp_path / "out/node/rootfs/etc/regauth/plan.json").read_text())
    assert (tmp_path / "out/node/rootfs/usr/local/sbin/regauth-apply").read_bytes() == script_for_plan(plan["steps"])
    assert Path(generator.__file__).resolve().is_relative_to(ROOT)  # the test process itself still uses the repo
