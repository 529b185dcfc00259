"""``output.program: image``: the image has the node program, user-data only the plan (issue 15).

The node program is ~20 KB gzipped since it reads TOML itself (issue 14), which no
longer fits AWS's 16 KB next to any credentials.  A profile whose image was built with
out/NAME/packer/ can leave the program out of user-data; these tests pin what that
user-data holds, that the image then gets a program that serves any plan, and the one
line an image without the program prints.
"""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
from pathlib import Path

import yaml

from generator import applyscript
from generator.outputs.cloudinit import _run_baked
from tests.conftest import gar_profile, run_cli, write_profile

ROOT = Path(__file__).resolve().parents[2]


def _render(folder: Path, profile: Path, env: dict[str, str] | None = None) -> Path:
    result = run_cli("render", str(profile), "-o", str(folder / "out"), env=env)
    assert result.code == 0, result.err
    return folder / "out" / profile.stem


def _image_profile(folder: Path, extra: str = "") -> Path:
    return write_profile(folder, gar_profile(folder).read_text() + f"output:\n  program: image\n{extra}", name="baked")


def test_user_data_carries_only_the_plan(profile_dir: Path) -> None:
    out = _render(profile_dir, _image_profile(profile_dir))
    doc = yaml.safe_load((out / "user-data").read_bytes())
    assert [f["path"] for f in doc["write_files"]] == [applyscript.PLAN_PATH]
    entry = doc["write_files"][0]
    plan = gzip.decompress(base64.b64decode(entry["content"])) if entry["encoding"] == "gz+b64" else base64.b64decode(entry["content"])
    assert plan == (out / "rootfs/etc/regauth/plan.json").read_bytes()
    assert entry["permissions"] == "0600"  # it holds the key
    assert doc["runcmd"] == [_run_baked(applyscript.VM_PATH)]
    assert len((out / "user-data").read_bytes()) < 5 * 1024


def test_the_image_gets_a_program_for_any_plan(profile_dir: Path) -> None:
    """Every module: user-data from another profile (other runtimes) still finds its code."""
    out = _render(profile_dir, _image_profile(profile_dir))
    baked = (out / "packer/files/rootfs" / applyscript.VM_PATH.lstrip("/")).read_bytes()
    assert baked == applyscript.full_script() == (out / "rootfs" / applyscript.VM_PATH.lstrip("/")).read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert any(f["path"] == "packer/files/rootfs" + applyscript.VM_PATH for f in manifest["files"])


def test_default_still_ships_the_program_in_user_data(profile_dir: Path) -> None:
    out = _render(profile_dir, gar_profile(profile_dir))
    doc = yaml.safe_load((out / "user-data").read_bytes())
    assert [f["path"] for f in doc["write_files"]] == [applyscript.VM_PATH, applyscript.PLAN_PATH]
    assert doc["runcmd"] == [[applyscript.VM_PATH]]


def test_every_runtime_fits_aws_only_with_the_program_in_the_image(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "scripts/demo-key.py", "profiles/keys/demo-gar-key.json"], cwd=ROOT, check=True, capture_output=True)
    every = (ROOT / "bench/profiles/all-runtimes-aws.yaml").read_text().replace("path: keys/", f"path: {ROOT}/profiles/keys/")
    embedded = write_profile(tmp_path, every, name="every")
    env = {"REGAUTH_EXAMPLE_PASSWORD": "robot-password-made-up-here"}
    refused = run_cli("render", str(embedded), "-o", str(tmp_path / "out"), env=env)
    assert refused.code == 2
    assert "[userdata-too-large]" in refused.err and "output.program: image" in refused.err
    baked = write_profile(tmp_path, every.replace("output:\n", "output:\n  program: image\n"), name="every-baked")
    out = _render(tmp_path, baked, env)
    assert len((out / "user-data").read_bytes()) <= 12 * 1024


def test_an_image_without_the_program_says_so_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "sbin/regauth-apply"
    run = subprocess.run(["sh", "-c", _run_baked(str(missing))], capture_output=True, text=True)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.splitlines() == [
        f"regauth-apply: FAILED [node-program-missing] {missing} is not in this image, so the plan user-data delivered "
        f"was not applied; build the image with out/NAME/packer/ (it bakes {missing}), or render with output.program: user-data"
    ]
    explained = run_cli("doctor", "--error", run.stderr.strip())
    assert explained.code in (0, 1) and "node-program-missing" in explained.out + explained.err


def test_an_image_with_the_program_runs_it(tmp_path: Path) -> None:
    program = tmp_path / "regauth-apply"
    program.write_text("#!/bin/sh\necho ran \"$@\"; exit 3\n")
    program.chmod(0o755)
    run = subprocess.run(["sh", "-c", _run_baked(str(program))], capture_output=True, text=True)
    assert (run.returncode, run.stdout, run.stderr) == (3, "ran\n", "")


def test_a_wrong_value_is_refused_with_the_choices(profile_dir: Path) -> None:
    profile = write_profile(profile_dir, gar_profile(profile_dir).read_text() + "output:\n  program: baked\n", name="wrong")
    result = run_cli("validate", str(profile))
    assert result.code == 2
    assert "output.program" in result.err and "image" in result.err and "user-data" in result.err


def test_no_packer_warning_when_the_profile_says_the_image_goes_with_its_user_data(profile_dir: Path) -> None:
    """The no-plan warning tells users an image needs user-data too; with output.program:
    image that is what the profile says, so it would be noise."""
    body = gar_profile(profile_dir).read_text()
    warned = run_cli("validate", str(write_profile(profile_dir, body + "output:\n  packer: {}\n", name="warned")))
    assert warned.code == 0 and "[packer-no-plan]" in warned.err
    quiet = run_cli("validate", str(write_profile(profile_dir, body + "output:\n  program: image\n  packer: {}\n", name="quiet")))
    assert quiet.code == 0 and "[packer-no-plan]" not in quiet.err, quiet.err


def test_every_file_reaches_the_node_by_user_data_or_the_image(tmp_path: Path) -> None:
    """With refresh units and a plan without secrets: what user-data leaves out, the
    image has (packer's baked_files is the one rule), and only the plan may come both ways."""
    text = """
        version: 1
        refresh: 1h
        targets: {containerd: {version: "2.1"}}
        secrets:
          pw: {source: gcp-secret-manager, project: regauth-test, secret: robot-pw, version: latest, fetch: boot, endpoint: 'http://127.0.0.1:9'}
        registries:
          - {host: 'registry.example.com:5000', auth: {type: basic, username: robot, secret: pw}}
        """
    out = _render(tmp_path, write_profile(tmp_path, text.rstrip(" ") + "        output:\n          program: image\n", name="baked"))
    (tmp_path / "default").mkdir()
    default = _render(tmp_path / "default", write_profile(tmp_path / "default", text, name="plain"))
    delivered = {f["path"] for f in yaml.safe_load((default / "user-data").read_bytes())["write_files"]}
    doc = yaml.safe_load((out / "user-data").read_bytes())
    by_user_data = {f["path"] for f in doc["write_files"]}
    image_root = out / "packer/files/rootfs"
    in_image = {"/" + p.relative_to(image_root).as_posix() for p in image_root.rglob("*") if p.is_file()}
    assert by_user_data == {applyscript.PLAN_PATH}
    assert "/etc/systemd/system/regauth-refresh.timer" in delivered and len(delivered) > 2
    assert delivered <= by_user_data | in_image, delivered - by_user_data - in_image
    assert by_user_data & in_image <= {applyscript.PLAN_PATH}
