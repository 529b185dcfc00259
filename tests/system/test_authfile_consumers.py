"""Issue 5: Docker and Podman / CRI-O auth files read by a real consumer, skopeo.

skopeo (containers/image, the library Podman and CRI-O pull with) reads a
Docker-style auth file through ``--authfile`` and does the registry token dance
(GET with Basic to the realm) against the GAR-like token registry.  The
``certs.d/HOST`` directory regauth writes is the only trust for the test CA
(``--cert-dir``).  For Podman, the ``registries.conf.d`` drop-in regauth writes is
used as skopeo's registries.conf, and an image named ``docker.io/...`` comes from the
mirror (path prefix included), authenticated with the mirror host's credentials.

Everything runs in the sandbox (loopback only; Docker Hub is unreachable there).

Run alone:  python3 -m pytest -m system tests/system/test_authfile_consumers.py
"""

# ruff: noqa: F811 - pytest fixtures are imported, then named as parameters
from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.containerd import clean_env, missing, short_tempdir
from tests.support.registry import RegistryEnv, TokenRequest, push_image, registry_env, token_log  # noqa: F401 - fixtures
from tests.system.test_pull import assert_no_secret, run

pytestmark = pytest.mark.system
MIRROR_PREFIX = "regauth-test/podman-mirror"


@pytest.fixture
def workdir():
    with short_tempdir("auth-") as path:
        yield path


def skopeo(env: RegistryEnv, args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("skopeo")
    if binary is None:
        missing("skopeo not found; run: apt-get install skopeo")
    return subprocess.run(env.sandbox.command([binary, *args]), capture_output=True, text=True, timeout=60,
                          env=clean_env(**(extra_env or {})), stdin=subprocess.DEVNULL)  # fmt: skip


def render_apply(env: RegistryEnv, workdir: Path, targets: str, registries: str, existing: dict[str, str]) -> tuple[Path, str]:
    """Render, then apply with --root onto a node that already has ``existing`` files."""
    folder = workdir / "profile"
    folder.mkdir()
    (folder / "key.json").write_bytes(env.key_file)
    (folder / "key.json").chmod(0o600)
    shutil.copy(env.ca_file, folder / "ca.pem")
    (folder / "node.yaml").write_text(
        "version: 1\n" + targets + "secrets:\n  gar-key: {source: file, path: key.json}\nregistries:\n" + registries
    )
    root = workdir / "node"
    for path, text in existing.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text(text)
    python = sys.executable
    out = workdir / "out"
    rendered = run(env.sandbox, [python, "-m", "generator", "render", str(folder / "node.yaml"), "-o", str(out)])
    rootfs = out / "node" / "rootfs"
    argv = [python, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(root), "--plan", str(rootfs / "etc/regauth/plan.json"), "--no-restart"]
    first = run(env.sandbox, argv)
    snapshot = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    second = run(env.sandbox, argv)
    assert "already up to date" in second.stderr
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == snapshot, "second apply changed files"
    return root, rendered.stderr + first.stderr + second.stderr


def registry_entry(env: RegistryEnv, extra: str = "") -> str:
    return f"  - host: {json.dumps(env.host())}\n    auth: {{type: gcp-service-account, secret: gar-key}}\n    tls: {{ca_file: ca.pem}}\n" + extra


@pytest.mark.parametrize(
    "target, auth_file, certs",
    [
        ("docker", "/root/.docker/config.json", "/etc/docker/certs.d"),
        ("podman", "/root/.config/containers/auth.json", "/etc/containers/certs.d"),
        ("crio", "/etc/containers/auth.json", "/etc/containers/certs.d"),
    ],
)
def test_skopeo_reads_the_merged_auth_file(target: str, auth_file: str, certs: str, registry_env: RegistryEnv,
                                           token_log: list[TokenRequest], workdir: Path) -> None:  # fmt: skip
    env = registry_env
    unrelated = {"auths": {"other.example": {"auth": "b3RoZXI6c2VjcmV0"}}, "credHelpers": {"gcr.io": "gcloud"}, "HttpHeaders": {"User-Agent": "x"}}
    root, output = render_apply(env, workdir, f"targets:\n  {target}: {{}}\n", registry_entry(env), {auth_file: json.dumps(unrelated)})
    assert_no_secret(env, output, "regauth output")
    path = root / auth_file.lstrip("/")
    doc = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for key, value in unrelated.items():  # merge kept everything else
        for k, v in value.items():
            assert doc[key][k] == v
    cert_dir = root / certs.lstrip("/") / env.host()
    assert (cert_dir / "ca.crt").read_bytes() == env.ca_file.read_bytes()

    token_log.clear()
    result = skopeo(env, ["inspect", "--authfile", str(path), "--cert-dir", str(cert_dir), f"docker://{env.image_ref()}"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Digest"] == env.image.manifest_digest
    assert token_log and all((r.method, r.username, r.status) == ("GET", "_json_key_base64", 200) for r in token_log), token_log
    # Control: the same call without our auth file is refused by the registry.
    token_log.clear()
    anonymous = skopeo(env, ["inspect", "--no-creds", "--cert-dir", str(cert_dir), f"docker://{env.image_ref()}"])
    assert anonymous.returncode != 0 and token_log and token_log[0].username == ""


def test_podman_mirror_drop_in_and_auth_file(registry_env: RegistryEnv, token_log: list[TokenRequest], workdir: Path) -> None:
    env = registry_env
    image = env.sandbox.call(push_image, env.pki, env.port, f"{MIRROR_PREFIX}/library/hello", "v2")
    extra = f"    mirror_for: docker.io\n    path: /v2/{MIRROR_PREFIX}\n"
    root, output = render_apply(env, workdir, "targets:\n  podman: {}\n", registry_entry(env, extra), {})
    conf = root / "etc/containers/registries.conf.d/50-regauth.conf"
    assert f'location = "{env.host()}/{MIRROR_PREFIX}"' in conf.read_text()
    token_log.clear()
    # The drop-in is a complete registries.conf (skopeo's hidden --registries-conf; 1.9
    # ignores CONTAINERS_REGISTRIES_CONF); SSL_CERT_FILE stands in for certs.d, since
    # --cert-dir applies to the named registry, not to its mirrors.
    result = skopeo(
        env,
        ["--registries-conf", str(conf), "inspect", "--raw", "--authfile", str(root / "root/.config/containers/auth.json"), "docker://docker.io/library/hello:v2"],
        {"SSL_CERT_FILE": str(env.ca_file)},
    )
    assert result.returncode == 0, result.stderr
    # --raw: the manifest bytes (plain inspect also lists tags, which only the upstream serves).
    assert "sha256:" + hashlib.sha256(result.stdout.encode()).hexdigest() == image.manifest_digest
    assert any(f"repository:{MIRROR_PREFIX}/library/hello:pull" in r.scope for r in token_log), token_log
    assert all((r.username, r.status) == ("_json_key_base64", 200) for r in token_log), token_log
