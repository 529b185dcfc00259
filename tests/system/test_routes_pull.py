"""Issue 5, mirrors and TLS: real containerd pulls configured only by regauth's hosts.toml.

- Mirror: an image named ``docker.io/library/...`` is pulled by real containerd
  (1.6, 1.7, 2.x) through a mirror on the local GAR-like token registry, addressed with
  a path (``override_path``) like an Artifact Registry remote repository, and
  authenticated with the *mirror host's* credentials.  Docker Hub is unreachable in
  the sandbox, so only the mirror can answer.
- Private CA: containerd runs without the test CA in its environment; only the
  generated ``certs.d/HOST/hosts.toml`` (``ca = "ca.crt"``) makes it trust the
  registry.  The same config without regauth's hosts.toml fails with an x509 error.

The apply step runs without ``--root``: the profile points ``config`` and
``hosts_dir`` into the test's temp dir, so the ``config_path`` written into
config.toml is the very directory containerd then reads.

Run alone:  python3 -m pytest -m system tests/system/test_routes_pull.py
"""

# ruff: noqa: F811 - pytest fixtures are imported, then named as parameters
from __future__ import annotations

import json
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

from tests.support.containerd import (  # noqa: F401 - fixtures
    Containerd,
    config_dump,
    containerd_binary,
    ctd_dir,
    default_config,
    dumped_auth,
    prepare_test_config,
    running_containerd,
)
from tests.support.cri import PullError
from tests.support.registry import RegistryEnv, TokenRequest, push_image, registry_env, token_log  # noqa: F401 - fixtures
from tests.system.test_pull import assert_no_secret, run

pytestmark = pytest.mark.system

MIRROR_PREFIX = "regauth-test/dockerhub"  # like an AR remote repository: PROJECT/REPO
UPSTREAM_REPO = "library/hello"


def _profile(folder: Path, body: str, key_file: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "key.json"
    key.write_bytes(key_file)
    key.chmod(0o600)
    path = folder / "node.yaml"
    path.write_text(body)
    return path


def render_apply(env: RegistryEnv, workdir: Path, registry_yaml: str, binary: Containerd) -> tuple[Path, str]:
    """Render a profile whose containerd target writes into ``workdir`` and apply it (no --root)."""
    config = workdir / "config.toml"
    body = (
        "version: 1\n"
        f"targets:\n  containerd:\n    version: {json.dumps(binary.minor_series)}\n"
        f"    config: {config}\n    hosts_dir: {workdir / 'certs.d'}\n    restart: never\n"
        "secrets:\n  gar-key: {source: file, path: key.json}\n"
        f"registries:\n{registry_yaml}"
    )
    profile = _profile(workdir / "profile", body, env.key_file)
    out = workdir / "out"
    python = sys.executable
    rendered = run(env.sandbox, [python, "-m", "generator", "render", str(profile), "-o", str(out)])
    rootfs = out / "node" / "rootfs"
    applied = run(env.sandbox, [python, str(rootfs / "usr/local/sbin/regauth-apply"), "--plan", str(rootfs / "etc/regauth/plan.json"), "--no-restart"])
    return config, rendered.stderr + applied.stderr


def stock_config(binary: Containerd, workdir: Path, config_path: str | None = None) -> Path:
    """The binary's own default config, test-local; 2.x's non-empty config_path optionally replaced."""
    text = prepare_test_config(default_config(binary), workdir)
    if config_path is not None:
        text, n = re.subn(r"(?m)^(\s*config_path = ).*$", lambda m: m.group(1) + json.dumps(config_path), text, count=1)
        assert n == 1
    path = workdir / "config.toml"
    path.write_text(text)
    return path


def test_pull_through_mirror_with_override_path(containerd_binary: Containerd, registry_env: RegistryEnv,
                                                token_log: list[TokenRequest], ctd_dir: Path) -> None:  # fmt: skip
    env, binary = registry_env, containerd_binary
    image = env.sandbox.call(push_image, env.pki, env.port, f"{MIRROR_PREFIX}/{UPSTREAM_REPO}", "v1")
    # 2.x ships config_path = "/etc/containerd/certs.d:/etc/docker/certs.d": regauth must use
    # the config's own first directory (here pointed into the test dir), not its default.
    certs = ctd_dir / "certs.d"
    stock_config(binary, ctd_dir, str(certs) + ":/nonexistent/docker/certs.d" if binary.major >= 2 else None)
    registry_yaml = (
        f"  - host: {json.dumps(env.host())}\n"
        "    auth: {type: gcp-service-account, secret: gar-key}\n"
        "    mirror_for: docker.io\n"
        f"    path: /v2/{MIRROR_PREFIX}\n"
    )
    config, output = render_apply(env, ctd_dir, registry_yaml, binary)
    assert_no_secret(env, output, "regauth output")
    hosts = (certs / "docker.io" / "hosts.toml").read_text()
    assert 'server = "https://registry-1.docker.io"' in hosts
    assert f'[host."https://{env.host()}/v2/{MIRROR_PREFIX}"]' in hosts and "override_path = true" in hosts
    dump = config_dump(binary, config)
    plugin = dump["plugins"][binary.images_plugin]["registry"]
    assert plugin["config_path"].split(":")[0] == str(certs)
    assert dumped_auth(binary, dump, env.host())["username"] == "_json_key_base64"

    token_log.clear()
    with running_containerd(binary, config, ctd_dir, env.sandbox, ca_file=env.ca_file) as ctd:
        result = ctd.pull(f"docker.io/{UPSTREAM_REPO}:v1")
    assert result == image.config_digest, result
    # Credentials keyed by the mirror host were sent (POST password grant, accepted).
    assert token_log and all((r.method, r.username, r.status) == ("POST", "_json_key_base64", 200) for r in token_log), token_log
    assert any(f"repository:{MIRROR_PREFIX}/{UPSTREAM_REPO}:pull" in r.scope for r in token_log), [r.scope for r in token_log]
    assert_no_secret(env, ctd.log_text(), "containerd's log")


def test_private_ca_registry_trusted_only_through_hosts_toml(containerd_binary: Containerd, registry_env: RegistryEnv,
                                                            token_log: list[TokenRequest], ctd_dir: Path) -> None:  # fmt: skip
    env, binary = registry_env, containerd_binary
    # Baseline: the stock config, no SSL_CERT_FILE: the test CA is trusted by nothing.
    plain = stock_config(binary, ctd_dir, str(ctd_dir / "certs.d") if binary.major >= 2 else None)
    with running_containerd(binary, plain, ctd_dir, env.sandbox) as ctd, pytest.raises(PullError) as err:
        ctd.pull(env.image_ref())
    assert "x509" in err.value.details or "certificate" in err.value.details, err.value.details

    (ctd_dir / "profile").mkdir()
    shutil.copy(env.ca_file, ctd_dir / "profile" / "ca.pem")  # the profile's tls.ca_file
    registry_yaml = (
        f"  - host: {json.dumps(env.host())}\n"
        "    auth: {type: gcp-service-account, secret: gar-key}\n"
        "    tls: {ca_file: ca.pem}\n"
    )
    config, output = render_apply(env, ctd_dir, registry_yaml, binary)
    assert_no_secret(env, output, "regauth output")
    host_dir = ctd_dir / "certs.d" / env.host()
    assert (host_dir / "ca.crt").read_bytes() == env.ca_file.read_bytes()
    assert stat.S_IMODE((host_dir / "ca.crt").stat().st_mode) == 0o644
    assert 'ca = "ca.crt"' in (host_dir / "hosts.toml").read_text()

    token_log.clear()
    with running_containerd(binary, config, ctd_dir, env.sandbox) as ctd:  # no ca_file: hosts.toml only
        result = ctd.pull(env.image_ref())
    assert result == env.image.config_digest, result
    assert token_log and all(r.status == 200 for r in token_log), token_log
