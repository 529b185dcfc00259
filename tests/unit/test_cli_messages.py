"""Issue 17 item 13: small messages that were wrong or unhelpful."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ROOT, gar_profile, run_cli, write_profile


def test_name_clash_names_the_output_folder_given(profile_dir: Path) -> None:
    (profile_dir / "sub").mkdir()
    (profile_dir / "sub/key.json").write_bytes((profile_dir / "key.json").read_bytes())
    a = gar_profile(profile_dir, name="a")
    b = gar_profile(profile_dir / "sub", name="a")
    result = run_cli("render", str(a), str(b), "-o", "o3", cwd=profile_dir)
    assert result.code == 2
    assert "both would write o3/a/" in result.err and "out/a/" not in result.err
    validate = run_cli("validate", str(a), str(b), cwd=profile_dir)
    assert validate.code == 2 and "out/a/" not in validate.err and "another profile is also named 'a'" in validate.err


def test_unknown_command_suggests_the_close_one() -> None:
    result = run_cli("rendr", "profiles/demo.yaml")
    assert result.code == 2
    assert result.err.strip().splitlines()[0] == (
        "regauth: unknown command 'rendr' (did you mean 'render'?); commands: render, validate, schema, doctor, verify (regauth --help)")
    assert "did you mean" not in run_cli("frobnicate").err and run_cli("frobnicate").code == 2


def test_doctor_without_arguments_is_one_plain_line() -> None:
    result = run_cli("doctor")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "regauth doctor: nothing to check: name files or directories (e.g. regauth doctor /etc), or pass --error TEXT"]


def test_invalid_profile_messages_say_nothing_was_written_only_for_render(profile_dir: Path) -> None:
    bad = write_profile(profile_dir, """
        version: 1
        targets: {containerd: {version: "1.7"}}
        registries:
          - {host: "*.pkg.dev", auth: {type: basic, username: u, secret: nope}}
        """)
    for command, says in (("verify", False), ("validate", False), ("render", True)):
        result = run_cli(command, str(bad), cwd=profile_dir)
        assert result.code == 2, (command, result.err)
        assert ("nothing was written" in result.err) is says, (command, result.err)
        assert "error:" in result.err


def test_manifest_says_regauth_apply_reads_the_plan(profile_dir: Path) -> None:
    profile = gar_profile(profile_dir)
    assert run_cli("render", str(profile), "-o", "out", cwd=profile_dir).code == 0
    manifest = json.loads((profile_dir / "out/node/manifest.json").read_text())
    (plan,) = [f for f in manifest["files"] if f["path"] == "rootfs/etc/regauth/plan.json"]
    assert plan["note"].startswith("what regauth-apply reads")


def test_doctor_json_gives_1_based_columns(tmp_path: Path) -> None:
    config = tmp_path / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('version = 2\n\n  [plugins."io.containerd.grpc.v1.cri".registry.configs."*.pkg.dev".auth]\n'
                      '    username = "u"\n    password = "p"\n')
    config.chmod(0o600)
    result = run_cli("doctor", str(config), "--json", cwd=tmp_path)
    findings = json.loads(result.out)["findings"]
    (host,) = [f for f in findings if f["code"] == "host-key"]
    assert (host["line"], host["col"]) == (3, 3)  # the '[' of the indented header
    assert all(f["col"] >= 1 for f in findings if f["line"]), findings
    assert f"{config}:3:3: error: [host-key]" in run_cli("doctor", str(config), cwd=tmp_path).out
