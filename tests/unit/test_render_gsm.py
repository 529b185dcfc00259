"""Build-time Secret Manager secrets through the CLI, real client against the loopback fake."""

from __future__ import annotations

import base64
from generator.tomlcompat import tomllib
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_profile
from tests.support.fake_gsm import PERMISSION_DENIED, running_fake_gsm
from tests.support.keys import key_file_bytes

HOST = "europe-docker.pkg.dev"


def gsm_profile(folder: Path, name: str, endpoint: str, version: str = "2", host: str = HOST) -> Path:
    return write_profile(
        folder,
        f"""
        version: 1
        targets: {{containerd: {{version: "1.7"}}}}
        secrets:
          gar-key: {{source: gcp-secret-manager, project: regauth-test, secret: gar-reader, version: "{version}", endpoint: "{endpoint}"}}
        registries:
          - {{host: {host}, auth: {{type: gcp-service-account, secret: gar-key}}}}
        """,
        name=name,
    )


@pytest.fixture
def gsm():
    with running_fake_gsm() as fake:
        yield fake


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_build_time_fetch_renders_the_key_once_for_many_profiles(tmp_path: Path, gsm, sa_key: dict, transport: str) -> None:
    key = key_file_bytes(sa_key)
    gsm.add_secret("regauth-test", "gar-reader", b"v1", key)
    endpoint = gsm.rest_endpoint if transport == "rest" else "http://" + gsm.grpc_target
    a = gsm_profile(tmp_path, "a", endpoint)
    b = gsm_profile(tmp_path, "b", endpoint, host="us-docker.pkg.dev")
    result = run_cli("render", str(a), str(b), "-o", str(tmp_path / "out"), "--gsm-transport", transport, env={"REGAUTH_GSM_ANONYMOUS": "1"})
    assert result.code == 0, result.err
    assert gsm.fetch_count("regauth-test", "gar-reader") == 1
    config = tomllib.loads((tmp_path / "out/a/rootfs/etc/containerd/config.toml").read_text())
    auth = config["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"][HOST]["auth"]
    assert auth["password"] == base64.b64encode(key).decode()


def test_latest_gets_a_reproducibility_warning(tmp_path: Path, gsm, sa_key: dict) -> None:
    gsm.add_secret("regauth-test", "gar-reader", key_file_bytes(sa_key))
    profile = gsm_profile(tmp_path, "a", gsm.rest_endpoint, version="latest")
    result = run_cli("render", str(profile), "-o", str(tmp_path / "out"), "--gsm-transport", "rest", env={"REGAUTH_GSM_ANONYMOUS": "1"})
    assert result.code == 0, result.err
    assert "warning" in result.err and "pin a version number" in result.err


def test_permission_denied_exits_1_with_the_role(tmp_path: Path, gsm) -> None:
    gsm.inject("regauth-test", "gar-reader", PERMISSION_DENIED)
    profile = gsm_profile(tmp_path, "a", gsm.rest_endpoint)
    result = run_cli("render", str(profile), "-o", str(tmp_path / "out"), "--gsm-transport", "rest", env={"REGAUTH_GSM_ANONYMOUS": "1"})
    assert result.code == 1
    assert "roles/secretmanager.secretAccessor" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "out").exists()


def test_plain_http_endpoint_refused_without_anonymous(tmp_path: Path, gsm) -> None:
    profile = gsm_profile(tmp_path, "a", gsm.rest_endpoint)
    result = run_cli("render", str(profile), "-o", str(tmp_path / "out"), env={"REGAUTH_GSM_ANONYMOUS": "0"})
    assert result.code == 2 and "plain http" in result.err
