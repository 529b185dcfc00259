"""The render command end to end, in a separate process like a user runs it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from generator.tomlcompat import tomllib
from pathlib import Path

import pytest
import yaml

from generator import applyscript
from generator.errors import RuntimeFailure
from generator.outputs import writer
from generator.outputs.manifest import OutputFile
from tests.conftest import ROOT, gar_profile, run_cli, write_profile
from tests.support.keys import key_file_bytes


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_render_writes_layout_modes_and_manifest(profile_dir: Path, sa_key: dict) -> None:
    profile = gar_profile(profile_dir, username="_json_key")
    out = profile_dir / "out"
    result = run_cli("render", str(profile), "-o", str(out))
    assert result.code == 0, result.err
    node = out / "node"
    assert sorted(_tree(node)) == [
        "manifest.json",
        # packer/ is checked in detail in test_packer_output.py (build-time key: no plan baked)
        "packer/files/install.sh",
        "packer/files/rootfs/etc/systemd/system/regauth-apply.service",
        "packer/files/rootfs/usr/local/sbin/regauth-apply",
        "packer/registry-auth.pkr.hcl",
        "packer/required-plugins.pkr.hcl",
        "rootfs/etc/containerd/config.toml",
        "rootfs/etc/regauth/plan.json",
        "rootfs/usr/local/sbin/regauth-apply",
        "user-data",
    ]
    modes = {p: stat.S_IMODE((node / p).stat().st_mode) for p in _tree(node)}
    assert modes["user-data"] == 0o600
    assert modes["rootfs/etc/regauth/plan.json"] == 0o600
    assert modes["rootfs/etc/containerd/config.toml"] == 0o600
    assert modes["rootfs/usr/local/sbin/regauth-apply"] == 0o755
    manifest = json.loads((node / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (node / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["mode"] == f"{modes[entry['path']]:04o}"
    assert {e["path"]: e["secret"] for e in manifest["files"]}["rootfs/usr/local/sbin/regauth-apply"] is False
    # The exact key bytes reach the config under the exact host.
    config = tomllib.loads((node / "rootfs/etc/containerd/config.toml").read_text())
    auth = config["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"]["europe-docker.pkg.dev"]["auth"]
    assert auth == {"username": "_json_key", "password": key_file_bytes(sa_key).decode()}


def test_user_data_writes_files_base64_with_quoted_modes(profile_dir: Path) -> None:
    out = profile_dir / "out"
    assert run_cli("render", str(gar_profile(profile_dir)), "-o", str(out)).code == 0
    raw = (out / "node/user-data").read_bytes()
    assert raw.startswith(b"#cloud-config\n")
    doc = yaml.safe_load(raw)
    by_path = {f["path"]: f for f in doc["write_files"]}
    assert set(by_path) == {applyscript.VM_PATH, applyscript.PLAN_PATH}
    import gzip

    for entry in by_path.values():
        assert entry["encoding"] in ("b64", "gz+b64") and entry["owner"] == "root:root"
        assert isinstance(entry["permissions"], str)
        content = base64.b64decode(entry["content"])
        if entry["encoding"] == "gz+b64":
            content = gzip.decompress(content)
        assert content == (out / "node/rootfs" / entry["path"].lstrip("/")).read_bytes()
    assert by_path[applyscript.VM_PATH]["encoding"] == "gz+b64"  # a third of the size
    assert by_path[applyscript.PLAN_PATH]["permissions"] == "0600"
    assert doc["runcmd"] == [[applyscript.VM_PATH]]
    assert b"permissions: '0600'" in raw


def test_render_is_deterministic(profile_dir: Path) -> None:
    profile = gar_profile(profile_dir)
    first, second = profile_dir / "a", profile_dir / "b"
    assert run_cli("render", str(profile), "-o", str(first)).code == 0
    assert run_cli("render", str(profile), "-o", str(second)).code == 0
    assert _tree(first / "node") == _tree(second / "node")


def test_invalid_profile_exits_2_and_writes_nothing(profile_dir: Path) -> None:
    good = gar_profile(profile_dir, name="good")
    bad = gar_profile(profile_dir, host="'*.pkg.dev'", name="bad")
    out = profile_dir / "out"
    result = run_cli("render", str(good), str(bad), "-o", str(out))
    assert result.code == 2
    assert "bad.yaml:8:11: error: [registry-host-wildcard] registries[0].host: '*.pkg.dev' is a wildcard" in result.err
    assert "Traceback" not in result.err
    assert not out.exists()


def test_failed_render_leaves_previous_output(profile_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = profile_dir / "out"
    assert run_cli("render", str(gar_profile(profile_dir)), "-o", str(out)).code == 0
    before = _tree(out / "node")
    real_open = os.open
    calls = {"n": 0}

    def failing_open(path, flags, mode=0o777, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device", str(path))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(writer.os, "open", failing_open)
    files = [OutputFile(f"f{i}", b"x", 0o644, False) for i in range(5)]
    with pytest.raises(RuntimeFailure) as info:
        writer.write_tree(out / "node", files)
    assert "No space left on device" in info.value.render() and "previous output is unchanged" in info.value.render()
    assert _tree(out / "node") == before
    assert sorted(os.listdir(out)) == ["node"]


def test_rerender_replaces_the_folder_whole(profile_dir: Path) -> None:
    out = profile_dir / "out"
    profile = gar_profile(profile_dir)
    assert run_cli("render", str(profile), "-o", str(out)).code == 0
    (out / "node" / "stale-file").write_text("old")
    assert run_cli("render", str(profile), "-o", str(out)).code == 0
    assert not (out / "node" / "stale-file").exists()
    assert sorted(os.listdir(out)) == ["node"]


def test_secret_never_in_output_streams_or_manifest(profile_dir: Path, sa_key: dict) -> None:
    out = profile_dir / "out"
    profile = gar_profile(profile_dir)
    for args in (["render", str(profile), "-o", str(out), "-v"], ["render", str(profile), "--dry-run"], ["validate", str(profile)]):
        result = run_cli(*args)
        assert result.code == 0, result.err
        blob = result.out + result.err
        assert "PRIVATE KEY" not in blob and sa_key["private_key_id"] not in blob
    manifest = (out / "node/manifest.json").read_text()
    assert sa_key["private_key_id"] not in manifest
    assert base64.b64encode(key_file_bytes(sa_key)).decode()[:40] not in manifest


def test_missing_env_secret_and_world_readable_key(tmp_path: Path, sa_key: dict) -> None:
    key = tmp_path / "key.json"
    key.write_bytes(key_file_bytes(sa_key))
    key.chmod(0o644)
    profile = write_profile(
        tmp_path,
        """
        version: 1
        targets: {containerd: {version: "2.1"}}
        secrets:
          k: {source: file, path: key.json}
          p: {source: env, var: REGAUTH_TEST_UNSET_VAR}
        registries:
          - {host: europe-docker.pkg.dev, auth: {type: gcp-service-account, secret: k}}
          - {host: registry.example.com, auth: {type: basic, username: robot, secret: p}}
        """,
    )
    result = run_cli("render", str(profile), "-o", str(tmp_path / "out"))
    assert result.code == 2
    assert "readable by group or others (mode 0644)" in result.err and f"chmod 600 {key}" in result.err
    assert "environment variable REGAUTH_TEST_UNSET_VAR is not set" in result.err
    assert not (tmp_path / "out").exists()


def test_basic_auth_from_env_strips_one_newline_and_v3_table(tmp_path: Path) -> None:
    profile = write_profile(
        tmp_path,
        """
        version: 1
        targets: {containerd: {version: "2.1"}}
        secrets:
          p: {source: env, var: REGAUTH_TEST_PW}
        registries:
          - {host: "registry.example.com:5000", auth: {type: basic, username: robot, secret: p}}
        """,
    )
    out = tmp_path / "out"
    result = run_cli("render", str(profile), "-o", str(out), env={"REGAUTH_TEST_PW": 'p"a\\ss\n'})
    assert result.code == 0, result.err
    config = tomllib.loads((out / "node/rootfs/etc/containerd/config.toml").read_text())
    assert config["version"] == 3 and config["imports"] == ["conf.d/50-regauth.toml"]
    config = tomllib.loads((out / "node/rootfs/etc/containerd/conf.d/50-regauth.toml").read_text())  # containerd 2.x: regauth's drop-in
    assert config["version"] == 3
    auth = config["plugins"]["io.containerd.cri.v1.images"]["registry"]["configs"]["registry.example.com:5000"]["auth"]
    assert auth == {"username": "robot", "password": 'p"a\\ss'}


def test_help_has_examples_for_every_command() -> None:
    for args in ([], ["render"], ["validate"], ["schema"]):
        result = run_cli(*args, "--help")
        assert result.code == 0 and "example" in result.out


def test_no_google_import_for_help_or_file_renders(profile_dir: Path) -> None:
    import subprocess
    import sys

    out = profile_dir / "out"
    for args in (["--help"], ["render", str(gar_profile(profile_dir)), "-o", str(out)]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "generator", *args], capture_output=True, text=True, cwd=ROOT)
        imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
        assert not [m for m in imported if m.startswith("google")], args


def test_render_imports_only_the_runtimes_it_names(profile_dir: Path) -> None:
    """Cold start (issue 9): a containerd profile loads no other runtime's module, and a
    valid profile never needs difflib (did-you-mean hints are for mistakes)."""
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys\n"
        "from generator.__main__ import run\n"
        "code = run()\n"
        "print(json.dumps([code, sorted(m for m in sys.modules if m.startswith('generator.targets.') or m == 'difflib')]))\n"
    )
    out = profile_dir / "out"
    proc = subprocess.run(
        [sys.executable, "-c", probe, "render", str(gar_profile(profile_dir)), "-o", str(out)],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )
    code, modules = json.loads(proc.stdout.splitlines()[-1])
    assert code == 0, proc.stderr
    assert modules == ["generator.targets.base", "generator.targets.common", "generator.targets.containerd", "generator.targets.hoststoml"]


def test_fleet_warning_shown_once_with_a_count(profile_dir: Path) -> None:
    """The same advice for many profiles is one warning plus where else it applies."""
    for i in range(6):
        path = gar_profile(profile_dir, host=f"registry{i}.example.com", name=f"node{i}")
        path.write_text(path.read_text() + "output: {packer: {}}\n")  # uses Packer: the no-plan warning
    result = run_cli("render", str(profile_dir), "-o", str(profile_dir / "out"))
    assert result.code == 0, result.err
    assert result.err.count("warning:") == 1, result.err
    assert "(the same warning in 5 other place(s): " in result.err and "and 2 more)" in result.err


def test_warnings_group_on_advice_even_when_messages_differ() -> None:
    from generator.errors import Problem, render_problems

    warnings = [Problem(f"p{i}.yaml", f"registry{i}.example.com: something", "the same advice", "output", 3, 1, "warning") for i in range(3)]
    text = render_problems(warnings)
    assert text.count("warning:") == 1 and "registry0.example.com" in text and "registry2.example.com" not in text
    assert "(the same warning in 2 other place(s): p1.yaml:3:1, p2.yaml:3:1)" in text


def test_errors_group_only_when_identical() -> None:
    from generator.errors import Problem, render_problems

    same = [Problem(f"p{i}.yaml", "unknown key 'x'", "allowed here: a, b", "targets", 3, 1) for i in range(3)]
    other = Problem("p9.yaml", "unknown key 'y'", "allowed here: a, b", "targets", 3, 1)
    text = render_problems([*same, other])
    assert text.count("error:") == 2
    assert "unknown key 'x'" in text and "unknown key 'y'" in text
    assert "(the same error in 2 other place(s): p1.yaml:3:1, p2.yaml:3:1)" in text


def test_identical_files_in_one_tree_are_one_file(profile_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The apply script sits in rootfs/ and packer/files/: written once, linked once;
    where the filesystem refuses hard links, written twice with the same result."""
    gar_profile(profile_dir)
    assert run_cli("render", str(profile_dir / "node.yaml"), "-o", str(profile_dir / "out")).code == 0
    a = profile_dir / "out/node/rootfs/usr/local/sbin/regauth-apply"
    b = profile_dir / "out/node/packer/files/rootfs/usr/local/sbin/regauth-apply"
    assert os.path.samefile(a, b) and a.stat().st_nlink == 2 and stat.S_IMODE(a.stat().st_mode) == 0o755
    manifest = json.loads((profile_dir / "out/node/manifest.json").read_text())
    assert sum(1 for f in manifest["files"] if f["path"].endswith("/usr/local/sbin/regauth-apply")) == 2  # both names listed

    def no_links(src, dst):  # type: ignore[no-untyped-def]
        raise PermissionError(1, "Operation not permitted")  # e.g. a FAT or SMB output folder

    monkeypatch.setattr(writer.os, "link", no_links)
    files = [OutputFile("one", b"x" * 8192, 0o755, False), OutputFile("sub/two", b"x" * 8192, 0o755, False)]
    writer.write_tree(profile_dir / "copies", files)
    one, two = profile_dir / "copies/one", profile_dir / "copies/sub/two"
    assert not os.path.samefile(one, two) and one.read_bytes() == two.read_bytes() == b"x" * 8192


def test_modes_are_exact_whatever_the_umask(profile_dir: Path) -> None:
    files = [OutputFile("secret", b"s", 0o600, True), OutputFile("bin/tool", b"#!/bin/sh\n", 0o755, False), OutputFile("doc", b"d", 0o644, False)]
    old = os.umask(0o077)
    try:
        writer.write_tree(profile_dir / "strict", files)
    finally:
        os.umask(old)
    old = os.umask(0)
    try:
        writer.write_tree(profile_dir / "loose", files)
    finally:
        os.umask(old)
    for tree_dir in ("strict", "loose"):
        modes = {f.relpath: stat.S_IMODE((profile_dir / tree_dir / f.relpath).stat().st_mode) for f in files}
        assert modes == {"secret": 0o600, "bin/tool": 0o755, "doc": 0o644}, tree_dir
