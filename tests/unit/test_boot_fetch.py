"""Boot-time fetch: the rendered apply step run for real against loopback fakes of the
GCE metadata server and the Secret Manager REST API (the VM's path, no Google client)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from generator.tomlcompat import tomllib
from pathlib import Path

import pytest

from generator import applyscript
from generator.secrets.resolve import password_from_payload
from tests.conftest import run_cli, write_profile
from tests.support.containerd import dropin_config
from tests.support.fake_gsm import running_fake_gsm
from tests.support.fake_metadata import DOWN, running_fake_metadata
from tests.support.keys import key_file_bytes

HOST = "europe-docker.pkg.dev"
V3 = ("plugins", "io.containerd.cri.v1.images", "registry", "configs")


@pytest.fixture
def servers():
    with running_fake_metadata() as md, running_fake_gsm() as gsm:
        yield md, gsm


def render_boot(folder: Path, endpoint: str, version: str = "3", username: str = "_json_key_base64") -> Path:
    profile = write_profile(
        folder,
        f"""
        version: 1
        targets: {{containerd: {{version: "2.1"}}}}
        secrets:
          gar-key:
            source: gcp-secret-manager
            project: regauth-test
            secret: gar-reader
            version: "{version}"
            fetch: boot
            endpoint: {endpoint}
        registries:
          - {{host: {HOST}, auth: {{type: gcp-service-account, secret: gar-key, username: {username}}}}}
        """,
    )
    result = run_cli("render", str(profile), "-o", str(folder / "out"))
    assert result.code == 0, result.err
    return folder / "out" / "node"


def run_apply(out: Path, root: Path, md_host: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCE_")}
    env["GCE_METADATA_HOST"] = md_host
    rootfs = out / "rootfs"
    return subprocess.run(
        [sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(root), "--plan", str(rootfs / "etc/regauth/plan.json"), "--no-restart", "--fetch-timeout", str(timeout)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def node_root(tmp: Path) -> Path:
    root = tmp / "node"
    (root / "etc/containerd").mkdir(parents=True)
    (root / "etc/containerd/config.toml").write_text('version = 3\n[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "overlayfs"\n')
    return root


def test_user_data_carries_no_secret_and_plan_names_the_secret(tmp_path: Path, servers) -> None:
    md, gsm = servers
    out = render_boot(tmp_path, gsm.rest_endpoint)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not any(f["secret"] for f in manifest["files"])
    assert oct((out / "user-data").stat().st_mode & 0o777) == "0o644"
    plan = json.loads((out / "rootfs/etc/regauth/plan.json").read_text())
    [entry] = plan["steps"][0]["registries"]
    assert entry["password_from"]["gcp_secret_manager"] == "projects/regauth-test/secrets/gar-reader/versions/3"
    assert "password" not in entry


@pytest.mark.parametrize("username", ["_json_key_base64", "_json_key"])
def test_boot_fetch_writes_exact_password(tmp_path: Path, servers, sa_key: dict, username: str) -> None:
    md, gsm = servers
    key = key_file_bytes(sa_key)
    gsm.add_secret("regauth-test", "gar-reader", b"old", b"older", key)
    out = render_boot(tmp_path, gsm.rest_endpoint, username=username)
    root = node_root(tmp_path)
    result = run_apply(out, root, md.host_port)
    assert result.returncode == 0, result.stderr
    config = tomllib.loads((root / "etc/containerd/config.toml").read_text())
    auth = dropin_config(root)["plugins"]["io.containerd.cri.v1.images"]["registry"]["configs"][HOST]["auth"]
    want = base64.b64encode(key).decode() if username == "_json_key_base64" else key.decode()
    assert auth == {"username": username, "password": want}
    assert config["plugins"]["io.containerd.cri.v1.images"]["snapshotter"] == "overlayfs"
    assert sa_key["private_key_id"] not in result.stderr + result.stdout
    # The token went in a header: the fake saw a bearer the metadata server issued.
    assert md.state.tokens_issued
    second = run_apply(out, root, md.host_port)
    assert second.returncode == 0 and "already up to date" in second.stderr


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("permission_denied", "roles/secretmanager.secretAccessor"),
        ("not_found", "not found"),
        ("bad_crc", "CRC32C"),
    ],
)
def test_boot_fetch_failures_leave_config_untouched(tmp_path: Path, servers, sa_key: dict, fault: str, expected: str) -> None:
    md, gsm = servers
    gsm.add_secret("regauth-test", "gar-reader", b"1", b"2", key_file_bytes(sa_key))
    from tests.support import fake_gsm as fg

    kinds = {"permission_denied": fg.PERMISSION_DENIED, "not_found": fg.NOT_FOUND, "bad_crc": fg.BAD_CRC}
    gsm.inject("regauth-test", "gar-reader", kinds[fault])
    out = render_boot(tmp_path, gsm.rest_endpoint)
    root = node_root(tmp_path)
    before = (root / "etc/containerd/config.toml").read_bytes()
    result = run_apply(out, root, md.host_port, timeout=5)
    assert result.returncode == 1
    assert expected in result.stderr and "left unchanged" in result.stderr
    assert (root / "etc/containerd/config.toml").read_bytes() == before
    assert sorted(os.listdir(root / "etc/containerd")) == ["config.toml"]


def test_garbage_payload_is_rejected(tmp_path: Path, servers) -> None:
    md, gsm = servers
    gsm.add_secret("regauth-test", "gar-reader", b"1", b"2", b"not a key at all")
    out = render_boot(tmp_path, gsm.rest_endpoint)
    root = node_root(tmp_path)
    result = run_apply(out, root, md.host_port, timeout=5)
    assert result.returncode == 1 and "not a service-account key" in result.stderr


def test_metadata_server_down_fails_within_the_bound(tmp_path: Path, servers, sa_key: dict) -> None:
    md, gsm = servers
    gsm.add_secret("regauth-test", "gar-reader", b"1", b"2", key_file_bytes(sa_key))
    md.state.set_fault(DOWN)
    out = render_boot(tmp_path, gsm.rest_endpoint)
    root = node_root(tmp_path)
    started = time.monotonic()
    result = run_apply(out, root, md.host_port, timeout=3)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "metadata token failed after" in result.stderr and "deadline" in result.stderr
    assert "retrying" in result.stderr
    assert elapsed < 30  # bounded by --fetch-timeout, not by the client's defaults


def test_metadata_comes_up_late_then_fetch_succeeds(tmp_path: Path, servers, sa_key: dict) -> None:
    md, gsm = servers
    gsm.add_secret("regauth-test", "gar-reader", b"1", b"2", key_file_bytes(sa_key))
    md.state.set_fault(DOWN, times=2)
    out = render_boot(tmp_path, gsm.rest_endpoint)
    result = run_apply(out, node_root(tmp_path), md.host_port, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("retrying") == 2


@pytest.mark.parametrize(
    ("transform", "payload", "password"),
    [
        ("raw", b"pass\n", "pass\n"),
        ("strip-newline", b"pass\r\n", "pass"),
        ("strip-newline", b"pass\n\n", "pass\n"),
        ("base64", b'{"a": "\\n"}\n', "eyJhIjogIlxuIn0K"),
        ("raw", "p\u00e4ss".encode(), "p\u00e4ss"),
    ],
)
def test_vm_and_render_derive_the_same_password(transform: str, payload: bytes, password: str) -> None:
    # One rule: render time imports the node's function (the shipped file carries it).
    assert password_from_payload is applyscript.module().password_from_payload
    assert password_from_payload(payload, transform) == password


def test_secret_manager_unavailable_is_retried(tmp_path: Path, servers, sa_key: dict) -> None:
    from tests.support.fake_gsm import UNAVAILABLE

    md, gsm = servers
    gsm.add_secret("regauth-test", "gar-reader", b"1", b"2", key_file_bytes(sa_key))
    gsm.inject("regauth-test", "gar-reader", UNAVAILABLE, times=2)
    out = render_boot(tmp_path, gsm.rest_endpoint)
    result = run_apply(out, node_root(tmp_path), md.host_port, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "attempt 2 failed (HTTP 503)" in result.stderr
