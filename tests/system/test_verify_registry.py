"""Issue 7: ``regauth verify`` against the GAR-like token registry (distribution 2.8 + token server).

Why the real registry: verify claims to do what containerd does, so it must get the
same answers containerd gets from the same server (tests/support/registry.py: TLS with
a test CA, ``auth: token``, a token server accepting ``_json_key`` / ``_json_key_base64``).
``regauth verify`` runs as a user would, as a separate process inside the registry's
sandbox (loopback only, ``registry.test`` in its /etc/hosts); the token server's log
shows which requests it made.

Run alone:  python3 -m pytest -m system tests/system/test_verify_registry.py
"""

# ruff: noqa: F811 - pytest fixtures are imported, then named as parameters
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.containerd import REPO, clean_env
from tests.support.registry import RegistryEnv, TokenRequest, registry_env, token_log  # noqa: F401 - fixtures

pytestmark = pytest.mark.system


def profile(folder: Path, host: str, key_file: bytes, username: str | None = None, kind: str = "gcp-service-account") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.json").write_bytes(key_file)
    (folder / "key.json").chmod(0o600)
    auth = {"type": kind, "secret": "key"} | ({"username": username} if username else {})
    path = folder / "node.yaml"
    path.write_text(
        'version: 1\ntargets:\n  containerd:\n    version: "1.7"\nsecrets:\n  key: {source: file, path: key.json}\n'
        f"registries:\n  - host: {json.dumps(host)}\n    auth: {json.dumps(auth)}\n"
    )
    return path


def verify(env: RegistryEnv, *args: str, ca: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "generator", "verify", *args, "--timeout", "10", *(["--ca-file", str(env.ca_file)] if ca else [])]
    proc = subprocess.run(env.sandbox.command(argv), capture_output=True, text=True, check=False, timeout=120, stdin=subprocess.DEVNULL,
                          env=clean_env(PYTHONPATH=str(REPO), NO_GCE_CHECK="true", GCE_METADATA_HOST="127.0.0.1:9"))
    leaked = [s[:12] for s in env.secret_texts() if s in proc.stdout + proc.stderr]
    assert not leaked, f"secret material in verify output: {leaked}"
    return proc


@pytest.mark.parametrize("username", [None, "_json_key_base64", "_json_key"])
def test_good_key_pulls_manifest(username: str | None, registry_env: RegistryEnv, token_log: list[TokenRequest], tmp_path: Path) -> None:
    env = registry_env
    proc = verify(env, str(profile(tmp_path, env.host(), env.key_file, username)), "--image", env.image_ref())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sent = username or "_json_key_base64"
    assert f"OK      {env.host()}  [verify-ok] token via POST (OAuth2 password grant) as {sent}" in proc.stdout
    assert f"{env.image.repository}:{env.image.tag} readable ({env.image.manifest_digest})" in proc.stdout
    assert [(r.method, r.grant_type, r.username, r.status, r.scope) for r in token_log] == [
        ("POST", "password", sent, 200, f"repository:{env.image.repository}:pull")
    ]


def test_portless_host_and_no_image(registry_env: RegistryEnv, tmp_path: Path) -> None:
    env = registry_env
    proc = verify(env, str(profile(tmp_path, env.host(with_port=False), env.key_file)), "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["registries"][0]["status"] == "ok"
    assert "no repository checked" in doc["registries"][0]["summary"]


def test_wrong_key_is_refused_after_post_and_get(registry_env: RegistryEnv, token_log: list[TokenRequest], tmp_path: Path) -> None:
    env = registry_env
    proc = verify(env, str(profile(tmp_path, env.host(), env.wrong_key_file)), "--image", env.image_ref())
    assert proc.returncode == 1
    assert f"FAILED  {env.host()}  [verify-credentials-refused] credentials refused: POST 401, then GET with Basic 401" in proc.stdout
    assert "the registry rejected the key (puller@regauth-test.iam.gserviceaccount.com)" in proc.stdout
    assert [(r.method, r.status) for r in token_log] == [("POST", 401), ("GET", 401)]
    assert all("not the expected service-account key" in r.reason for r in token_log)


def test_key_json_sent_as_json_key_base64_is_named(registry_env: RegistryEnv, token_log: list[TokenRequest], tmp_path: Path) -> None:
    """_json_key vs _json_key_base64 mixed up (basic auth carrying the raw key JSON as _json_key_base64)."""
    env = registry_env
    proc = verify(env, str(profile(tmp_path, env.host(), env.key_file, "_json_key_base64", kind="basic")), "--image", env.image_ref())
    assert proc.returncode == 1 and "the password is key JSON but the username is _json_key_base64" in proc.stdout
    assert all("not base64 of key JSON" in r.reason for r in token_log) and token_log


@pytest.mark.parametrize(
    ("image", "text"),
    [
        ("regauth-test/images/missing:v1", "regauth-test/images/missing:v1: repository not found (404, NAME_UNKNOWN)"),
        ("regauth-test/images/hello:v9", "regauth-test/images/hello:v9: tag or digest not found (404, MANIFEST_UNKNOWN)"),
    ],
)
def test_unknown_repository_or_tag(image: str, text: str, registry_env: RegistryEnv, tmp_path: Path) -> None:
    env = registry_env
    proc = verify(env, str(profile(tmp_path, env.host(), env.key_file)), "--image", f"{env.host()}/{image}")
    assert proc.returncode == 1 and f"credentials accepted; {text}" in proc.stdout, proc.stdout


def test_registry_down_and_untrusted_tls(registry_env: RegistryEnv, tmp_path: Path) -> None:
    env = registry_env
    down = verify(env, str(profile(tmp_path / "down", "registry.test:9", env.key_file)))
    assert down.returncode == 1 and "cannot reach registry.test:9: connection refused" in down.stdout
    untrusted = verify(env, str(profile(tmp_path / "tls", env.host(), env.key_file)), ca=False)
    assert untrusted.returncode == 1 and f"TLS failure talking to {env.host()}" in untrusted.stdout
