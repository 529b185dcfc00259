"""Issue 16: regauth-credential-provider's answer drives a real CRI PullImage.

What kubelet does with a credential provider: run it with a CredentialProviderRequest
on stdin, take ``auth`` from the CredentialProviderResponse and send it in the CRI
``PullImage`` call.  Here: render a profile with ``credential_provider: {type: regauth}``,
apply it to a node root, run the shipped provider (Python 3.6, the oldest node
Python) and pull through containerd 1.6 / 1.7 / 2.x whose config.toml holds no
credentials at all, from the GAR-like token registry, three ways:

- ``_json_key`` from the credentials stored on the node (rendered from a key file);
- keyless: ``gcp-vm-identity``, ``oauth2accesstoken`` + the fake metadata server's
  token, which the token server accepts only when the metadata server issued it;
- Secret Manager fetched by the provider at request time (fake server, bearer from
  the fake metadata server), then served from its root-only cache.

Requests and responses are validated against the v1 plugin schema
(tests/fixtures/schemas/kubelet-credentialprovider-plugin-v1.schema.json).

Run alone:  python3 -m pytest -m system tests/system/test_provider_pull.py
"""

# ruff: noqa: F811 - pytest fixtures are imported, then named as parameters
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.support import node_pythons
from tests.support.containerd import (  # noqa: F401 - fixtures
    REPO,
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
from tests.support.fake_gsm import running_fake_gsm
from tests.support.fake_metadata import running_fake_metadata
from tests.support.registry import RegistryEnv, TokenRequest, registry_env, token_log  # noqa: F401 - fixtures

pytestmark = pytest.mark.system

PY36 = node_pythons.OLDEST  # the one list: tests/support/nodepython.py
SCHEMA = json.loads((REPO / "tests/fixtures/schemas/kubelet-credentialprovider-plugin-v1.schema.json").read_text())
PROVIDER = "usr/local/sbin/regauth-credential-provider"
CASES = ("stored-json-key", "keyless", "secret-manager")


def profile_text(case: str, host: str, gsm_endpoint: str) -> str:
    if case == "stored-json-key":
        secrets = "secrets:\n  gar-key: {source: file, path: key.json}\n"
        auth = "{type: gcp-service-account, secret: gar-key, username: _json_key}"
    elif case == "keyless":
        secrets, auth = "", "{type: gcp-vm-identity}"
    else:
        secrets = ("secrets:\n  gar-key: {source: gcp-secret-manager, project: regauth-test, secret: gar-reader, version: 1, "
                   f"fetch: boot, endpoint: '{gsm_endpoint}'}}\n")  # fmt: skip
        auth = "{type: gcp-service-account, secret: gar-key}"
    return ("version: 1\ntargets:\n  kubelet:\n    credential_provider: {type: regauth, kubelet_flags: kubeadm}\n"
            + secrets + f"registries:\n  - host: '{host}'\n    auth: {auth}\n")  # fmt: skip


def render_and_apply(folder: Path, text: str, key_file: bytes) -> tuple[Path, str]:
    """Render with the generator, apply with the shipped regauth-apply (Python 3.6) to a node root."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.json").write_bytes(key_file)
    (folder / "key.json").chmod(0o600)
    (folder / "node.yaml").write_text(text)
    out, root = folder / "out", folder / "root"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rendered = subprocess.run([sys.executable, "-m", "generator", "render", str(folder / "node.yaml"), "-o", str(out)],
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    rootfs = out / "node" / "rootfs"
    installed = root / PROVIDER  # delivered like regauth-apply (write_files), before runcmd applies the plan
    installed.parent.mkdir(parents=True)
    installed.write_bytes((rootfs / PROVIDER).read_bytes())
    installed.chmod(0o755)
    applied = subprocess.run([PY36, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(root), "--plan",
                              str(rootfs / "etc/regauth/plan.json"), "--no-restart"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    return root, rendered.stderr + applied.stderr


def ask(root: Path, image: str, md_host: str) -> tuple[dict, str]:
    """Run the installed provider as kubelet does; return (response, stderr)."""
    request = {"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest", "image": image}
    jsonschema.validate(request, SCHEMA)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCE_")}
    env["GCE_METADATA_HOST"] = md_host
    proc = subprocess.run([PY36, str(root / PROVIDER), "--root", str(root)], input=json.dumps(request).encode(),
                          capture_output=True, env=env, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    answer = json.loads(proc.stdout)
    jsonschema.validate(answer, SCHEMA)
    return answer, proc.stderr.decode()


def credentials_free_config(binary: Containerd, workdir: Path) -> Path:
    """A stock config (test-local paths) with nothing under registry; on 2.x the transfer
    service unpacks for the native snapshotter (FIELD_NOTES 8: tests only)."""
    text = prepare_test_config(default_config(binary), workdir)
    if binary.major >= 2 and "io.containerd.transfer.v1.local" not in config_dump_text(binary, text, workdir):
        text += '\n[[plugins."io.containerd.transfer.v1.local".unpack_config]]\n  platform = "linux/amd64"\n  snapshotter = "native"\n'
    config = workdir / "config.toml"
    config.write_text(text)
    return config


def config_dump_text(binary: Containerd, text: str, workdir: Path) -> str:
    probe = workdir / "probe.toml"
    probe.write_text(text)
    return json.dumps(config_dump(binary, probe).get("plugins", {}).get("io.containerd.transfer.v1.local", {}).get("unpack_config") or "")


@pytest.mark.parametrize("case", CASES)
def test_provider_answer_pulls_with_nothing_in_config(case: str, containerd_binary: Containerd, registry_env: RegistryEnv,
                                                      token_log: list[TokenRequest], ctd_dir: Path) -> None:  # fmt: skip
    env, binary = registry_env, containerd_binary
    host = env.host()
    with running_fake_metadata() as md, running_fake_gsm(require_bearer=lambda t: md.state.token_is_valid(t)) as gsm:
        gsm.add_secret("regauth-test", "gar-reader", env.key_file)
        env.token_server.access_token_ok = md.state.token_is_valid
        try:
            root, output = render_and_apply(ctd_dir / "node", profile_text(case, host, gsm.rest_endpoint), env.key_file)
            answer, stderr = ask(root, env.image_ref(), md.host_port)
            assert answer["cacheKeyType"] == "Registry" and list(answer["auth"]) == [host]
            user = answer["auth"][host]["username"]
            password = answer["auth"][host]["password"]
            if case == "keyless":
                assert user == "oauth2accesstoken" and md.state.token_is_valid(password)
                assert int(answer["cacheDuration"][:-1]) < md.state.token_ttl  # kubelet drops it before the token dies
            elif case == "stored-json-key":
                assert user == "_json_key" and password == env.key_file.decode()
            else:
                assert user == "_json_key_base64" and password == base64.b64encode(env.key_file).decode()
                assert gsm.fetch_count() == 1
                again, _ = ask(root, env.image_ref(), md.host_port)  # warm: from the root-only cache
                assert again["auth"] == answer["auth"] and gsm.fetch_count() == 1
            config = credentials_free_config(binary, ctd_dir)
            assert dumped_auth(binary, config_dump(binary, config), host) is None
            token_log.clear()
            with running_containerd(binary, config, ctd_dir, env.sandbox, ca_file=env.ca_file) as ctd:
                with pytest.raises(PullError, match="401"):  # the config holds nothing: anonymous is refused
                    ctd.pull(env.image_ref())
                token_log.clear()
                assert ctd.pull(env.image_ref(), auth=(user, password)) == env.image.config_digest
            assert token_log and all((r.username, r.status) == (user, 200) for r in token_log), token_log
            # No secret outside the store / cache: not in logs, not in world-readable files.
            for text in (output, stderr, ctd.log_text()):
                assert password not in text
            for path in root.rglob("*"):
                if path.is_file() and path.stat().st_mode & 0o004:
                    assert password.encode() not in path.read_bytes(), f"{path} is world-readable and holds the password"
        finally:
            env.token_server.access_token_ok = None


def test_non_matching_and_digest_and_portless_images(registry_env: RegistryEnv, ctd_dir: Path) -> None:
    """Images of other registries get an empty auth (cacheKeyType Image); digests and tags parse."""
    env = registry_env
    with running_fake_metadata() as md:
        root, _ = render_and_apply(ctd_dir / "node", profile_text("stored-json-key", env.host(), ""), env.key_file)
        digest = f"{env.host()}/{env.image.repository}@{env.image.manifest_digest}"
        answer, _ = ask(root, digest, md.host_port)
        assert list(answer["auth"]) == [env.host()]
        for other in (env.image_ref(with_port=False), "docker.io/library/busybox:1", "busybox", "registry.test:1/x:y"):
            answer, _ = ask(root, other, md.host_port)
            assert answer["auth"] == {} and answer["cacheKeyType"] == "Image", other


def test_verify_runs_the_provider_then_the_token_exchange(registry_env: RegistryEnv, token_log: list[TokenRequest], ctd_dir: Path) -> None:
    """``regauth verify --provider``: kubelet's half (ask the provider) and containerd's half
    (token exchange, manifest) with what it answered; a foreign image fails clearly."""
    env = registry_env
    root, _ = render_and_apply(ctd_dir / "node", profile_text("stored-json-key", env.host(), ""), env.key_file)
    base = [sys.executable, "-m", "generator", "verify", "--provider", str(root / PROVIDER), "--provider-root", str(root), "--ca-file", str(env.ca_file), "--json"]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    token_log.clear()
    ok = subprocess.run(env.sandbox.command(base + ["--image", env.image_ref()]), capture_output=True, text=True, env=environment, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (result,) = json.loads(ok.stdout)["registries"]
    assert result["status"] == "ok" and "username _json_key" in result["steps"][0]
    assert token_log and token_log[0].username == "_json_key" and token_log[0].status == 200
    assert env.key_file.decode() not in ok.stdout + ok.stderr
    foreign = subprocess.run(env.sandbox.command(base + ["--image", "other.test/a/b:1"]), capture_output=True, text=True, env=environment, timeout=120)
    assert foreign.returncode == 1 and "no credentials for other.test" in foreign.stdout


HUB_MIRROR = "regauth-test/dockerhub"  # the loopback registry stands in for Docker Hub (PROJECT/REPO prefix)


def test_docker_hub_image_through_the_provider(containerd_binary: Containerd, registry_env: RegistryEnv,
                                               token_log: list[TokenRequest], ctd_dir: Path) -> None:  # fmt: skip
    """Docker Hub (registry-1.docker.io in the profile) through the provider, as kubelet
    runs it: the request names the normalised image (docker.io/library/hello), the
    answer's key is docker.io (which kubelet's keyring lookup matches: kubelet_match is
    its URLsMatch), and the CRI pull of docker.io/library/hello:v1 with that auth
    succeeds with nothing in config.toml.  Docker Hub itself is unreachable here: a
    hosts.toml for docker.io (test setup, not regauth's) sends containerd to the
    loopback token registry, which refuses anonymous pulls, so the pull proves that
    containerd used the provider's credentials for the host it contacted."""
    from generator.core.imageref import kubelet_match, parse_image
    from tests.support.registry import push_image

    env, binary = registry_env, containerd_binary
    image = env.sandbox.call(push_image, env.pki, env.port, f"{HUB_MIRROR}/library/hello", "v1")
    text = ("version: 1\ntargets:\n  kubelet:\n    credential_provider: {type: regauth, kubelet_flags: none}\n"
            "secrets:\n  hub-key: {source: file, path: key.json}\n"
            "registries:\n  - {host: registry-1.docker.io, auth: {type: gcp-service-account, secret: hub-key, username: _json_key}}\n")  # fmt: skip
    root, output = render_and_apply(ctd_dir / "node", text, env.key_file)
    assert "Docker Hub" not in output
    config_doc = json.loads((root / "etc/kubernetes/credential-provider-config.yaml").read_text())
    (entry,) = config_doc["providers"]
    sent = "docker.io/library/hello"  # kubelet's parsers.ParseImageName("hello:v1")
    assert any(kubelet_match(m, parse_image(sent)) for m in entry["matchImages"]), entry["matchImages"]
    with running_fake_metadata() as md:
        answer, stderr = ask(root, sent, md.host_port)
    assert answer["cacheKeyType"] == "Registry" and list(answer["auth"]) == ["docker.io"]
    assert kubelet_match("docker.io", parse_image(sent))
    user, password = answer["auth"]["docker.io"]["username"], answer["auth"]["docker.io"]["password"]
    assert (user, password) == ("_json_key", env.key_file.decode())

    certs = ctd_dir / "certs.d"
    (certs / "docker.io").mkdir(parents=True)
    (certs / "docker.io" / "hosts.toml").write_text(
        'server = "https://registry-1.docker.io"\n\n'
        f'[host."https://{env.host()}/v2/{HUB_MIRROR}"]\n  capabilities = ["pull", "resolve"]\n  override_path = true\n')
    config = credentials_free_config(binary, ctd_dir)
    text, n = re.subn(r"(?m)^(\s*config_path = ).*$", lambda m: m.group(1) + json.dumps(str(certs)), config.read_text(), count=1)
    assert n == 1
    config.write_text(text)
    token_log.clear()
    with running_containerd(binary, config, ctd_dir, env.sandbox, ca_file=env.ca_file) as ctd:
        with pytest.raises(PullError, match="401"):  # nothing in the config: anonymous is refused
            ctd.pull("docker.io/library/hello:v1")
        token_log.clear()
        assert ctd.pull("docker.io/library/hello:v1", auth=(user, password)) == image.config_digest
    assert token_log and all((r.username, r.status) == (user, 200) for r in token_log), token_log
    for text in (output, stderr, ctd.log_text()):
        assert password not in text
