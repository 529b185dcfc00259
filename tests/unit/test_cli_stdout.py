"""Issue 17 items 6 and 8: regauth on stdout.

- ``-o -`` writes one profile's user-data to stdout (byte for byte the file a render
  writes), refuses several profiles with exit 2, and never creates a folder named ``-``;
- ``--format terraform`` prints the flat JSON object of strings Terraform's ``external``
  data source requires;
- a reader that goes away (``| head -1``) ends the command quietly with exit 141.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, gar_profile, run_cli, write_profile


def _written_user_data(profile: Path, out: Path) -> bytes:
    result = run_cli("render", str(profile), "-o", str(out))
    assert result.code == 0, result.err
    return (out / profile.stem / "user-data").read_bytes()


def test_dash_writes_the_user_data_to_stdout_and_no_folder(profile_dir: Path) -> None:
    profile = gar_profile(profile_dir)
    proc = subprocess.run([sys.executable, "-m", "generator", "render", str(profile), "-o", "-"], cwd=profile_dir,
                          capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _written_user_data(profile, profile_dir / "files")
    assert proc.stdout.startswith(b"#cloud-config\n")
    assert not (profile_dir / "-").exists() and not (profile_dir / "out").exists()


def test_dash_refuses_several_profiles_with_exit_2(profile_dir: Path) -> None:
    a = gar_profile(profile_dir, name="a")
    b = gar_profile(profile_dir, name="b")
    for args in ([str(a), str(b)], [str(profile_dir)]):
        result = run_cli("render", *args, "-o", "-", cwd=profile_dir)
        assert result.code == 2, result.err
        assert "one profile" in result.err and result.out == ""
        assert not (profile_dir / "-").exists()


def test_dash_with_dry_run_is_refused(profile_dir: Path) -> None:
    result = run_cli("render", str(gar_profile(profile_dir)), "-o", "-", "--dry-run", cwd=profile_dir)
    assert result.code == 2 and "--dry-run" in result.err and result.out == ""


@pytest.mark.parametrize("compress", ["never", "always"])
def test_terraform_format_is_a_flat_object_of_strings(profile_dir: Path, compress: str) -> None:
    profile = write_profile(profile_dir, f"""
        version: 1
        targets: {{containerd: {{version: "1.7"}}}}
        output: {{compress: {compress}}}
        secrets:
          gar-key: {{source: file, path: key.json}}
        registries:
          - {{host: europe-docker.pkg.dev, auth: {{type: gcp-service-account, secret: gar-key}}}}
        """)
    result = run_cli("render", str(profile), "--format", "terraform", cwd=profile_dir)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert set(doc) == {"profile", "user_data", "user_data_encoding", "user_data_base64", "manifest"}
    assert all(isinstance(v, str) for v in doc.values())  # what `external` requires
    expected = _written_user_data(profile, profile_dir / "files")
    assert base64.b64decode(doc["user_data_base64"]) == expected
    if compress == "always":
        assert doc["user_data_encoding"] == "base64" and base64.b64decode(doc["user_data"]) == expected
    else:
        assert doc["user_data_encoding"] == "text" and doc["user_data"].encode() == expected
    manifest = json.loads(doc["manifest"])
    assert manifest["profile"] == "node" and any(f["path"] == "user-data" for f in manifest["files"])
    assert not (profile_dir / "out").exists()


def test_terraform_format_refuses_an_output_folder(profile_dir: Path) -> None:
    result = run_cli("render", str(gar_profile(profile_dir)), "--format", "terraform", "-o", "build", cwd=profile_dir)
    assert result.code == 2 and "stdout" in result.err and not (profile_dir / "build").exists()


def _into_closed_pipe(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run regauth with stdout a real pipe whose reader is already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "generator", *args], cwd=cwd, stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr


def test_closed_pipe_ends_quietly_with_141(profile_dir: Path) -> None:
    node = ROOT / "tests/fixtures/doctor/clean-node"
    for args in (["schema"], ["doctor", str(node)], ["render", str(gar_profile(profile_dir)), "-o", "-"]):
        code, err = _into_closed_pipe(args, profile_dir)
        assert code == 141, (args, err)
        assert "BrokenPipe" not in err and "internal error" not in err and "Exception ignored" not in err, (args, err)
