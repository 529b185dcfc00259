"""Issue 5: every runtime target, rendered and applied as a node applies it.

For each target: the merge keeps unrelated content, a second apply is byte-identical,
secret files are 0600, and a node without the runtime fails clearly or skips as the
profile says.  Files that no runtime here can read (k3s/RKE2 registries.yaml, kubelet's
files) are validated against schemas written from their documented types
(tests/fixtures/schemas, each names its source).  Real consumers are in
tests/system/ (containerd, skopeo).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from generator.tomlcompat import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import applyscript
from generator.targets import TARGETS
from tests.conftest import ROOT, run_cli, write_profile
from tests.support.keys import key_file_bytes
from tests.support.nodepython import interpreter, on_every_node_python

apply = applyscript.module()
SCHEMAS = ROOT / "tests" / "fixtures" / "schemas"
MK8S = ROOT / "tests" / "fixtures" / "microk8s"
HOST = "europe-docker.pkg.dev"
ROBOT = "registry.example.com:5000"
PASSWORD = "s3cr${SNAP}t$x\\y"
TEMPLATE = "/var/snap/microk8s/current/args/containerd-template.toml"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


@pytest.fixture
def folder(profile_dir: Path) -> Path:
    (profile_dir / "pw").write_text(PASSWORD + "\n")
    (profile_dir / "pw").chmod(0o600)
    return profile_dir


def profile(folder: Path, targets: str, registries: str | None = None, name: str = "node") -> Path:
    registries = registries if registries is not None else (
        f"registries:\n  - {{host: {HOST}, auth: {{type: gcp-service-account, secret: gar-key}}}}\n"
        f"  - {{host: '{ROBOT}', auth: {{type: basic, username: robot, secret: pw}}}}\n"
    )
    body = "version: 1\ntargets:\n" + targets + "secrets:\n  gar-key: {source: file, path: key.json}\n  pw: {source: file, path: pw}\n" + registries
    return write_profile(folder, body, name)


_RENDERED: dict[str, Path] = {}


def render(path: Path) -> Path:
    """Render like a user; the same profile and inputs render once per session (the
    node-program tests run once per node Python, the render is the same each time)."""
    inputs = hashlib.sha256(path.name.encode())
    for item in sorted(path.parent.iterdir()):
        if item.is_file():
            inputs.update(item.name.encode() + b"\0" + item.read_bytes() + b"\0")
    out = path.parent / "out"
    cached = _RENDERED.get(inputs.hexdigest())
    if cached is not None and cached.is_dir():
        shutil.copytree(cached, out / path.stem, symlinks=True)
    else:
        result = run_cli("render", str(path), "-o", str(out))
        assert result.code == 0, result.err
        _RENDERED[inputs.hexdigest()] = out / path.stem
    return out / path.stem / "rootfs"


def run_apply(rootfs: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    script, plan = rootfs / "usr/local/sbin/regauth-apply", rootfs / "etc/regauth/plan.json"
    return subprocess.run([str(interpreter()), str(script), "--root", str(root), "--plan", str(plan), "--no-restart", *extra], capture_output=True, text=True, timeout=60)


def node_with(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o644)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def applied_twice(rootfs: Path, root: Path) -> str:
    first = run_apply(rootfs, root)
    assert first.returncode == 0, first.stderr
    before = tree(root)
    second = run_apply(rootfs, root)
    assert second.returncode == 0, second.stderr
    assert "updated" not in second.stderr, second.stderr
    assert tree(root) == before, "second apply changed files"
    assert PASSWORD not in first.stderr + second.stderr
    return first.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def b64auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# ------------------------------------------------------------------ docker / podman / crio / kubelet auths


AUTH_CASES = {
    "docker": ("/root/.docker/config.json", HOST),
    "podman": ("/root/.config/containers/auth.json", HOST),
    "crio": ("/etc/containers/auth.json", HOST),
    "kubelet": ("/var/lib/kubelet/config.json", HOST),
}


@on_every_node_python
@pytest.mark.parametrize("target", sorted(AUTH_CASES))
def test_auth_file_merge_keeps_unrelated_and_is_idempotent(target: str, folder: Path, sa_key: dict) -> None:
    path, _ = AUTH_CASES[target]
    root = folder / "root"
    unrelated = {
        "auths": {"other.example": {"auth": b64auth("u", "p")}, HOST: {"auth": b64auth("_json_key", "stale"), "identitytoken": "old"}},
        "credHelpers": {"gcr.io": "gcloud"},
        "HttpHeaders": {"User-Agent": "kept"},
    }
    node_with(root, {path: json.dumps(unrelated, indent=1)})
    applied_twice(render(profile(folder, f"  {target}: {{}}\n")), root)
    result = root / path.lstrip("/")
    doc = json.loads(result.read_text())
    assert mode(result) == 0o600
    assert doc["credHelpers"] == {"gcr.io": "gcloud"} and doc["HttpHeaders"] == {"User-Agent": "kept"}
    assert doc["auths"]["other.example"] == unrelated["auths"]["other.example"]
    assert doc["auths"][HOST] == {"auth": b64auth("_json_key_base64", base64.b64encode(key_file_bytes(sa_key)).decode())}  # stale entry replaced whole
    assert base64.b64decode(doc["auths"][ROBOT]["auth"]).decode() == f"robot:{PASSWORD}"
    jsonschema.validate(doc, schema("docker-auths.schema.json"))
    assert (root / path.lstrip("/")).with_name(result.name + ".regauth.orig").read_text() == json.dumps(unrelated, indent=1)


def test_docker_hub_keys_per_runtime(folder: Path) -> None:
    registries = "registries:\n  - {host: registry-1.docker.io, auth: {type: basic, username: robot, secret: pw}}\n"
    rootfs = render(profile(folder, "  docker: {}\n  podman: {}\n  kubelet: {}\n", registries))
    assert list(json.loads((rootfs / "root/.docker/config.json").read_text())["auths"]) == ["https://index.docker.io/v1/"]
    assert list(json.loads((rootfs / "root/.config/containers/auth.json").read_text())["auths"]) == ["docker.io"]
    assert list(json.loads((rootfs / "var/lib/kubelet/config.json").read_text())["auths"]) == ["https://index.docker.io/v1/"]


@on_every_node_python
@pytest.mark.parametrize(
    "target, existing, words",
    [
        ("docker", {"credsStore": "desktop"}, ["credsStore", "desktop"]),
        ("docker", {"credHelpers": {HOST: "gcloud"}}, ["credHelpers", "docker-credential-gcloud"]),
        ("podman", {"credHelpers": {HOST: "gcloud"}}, ["credHelpers", HOST]),
    ],
)
def test_credential_helper_conflicts_fail_clearly_and_touch_nothing(target: str, existing: dict, words: list[str], folder: Path) -> None:
    root = folder / "root"
    path = AUTH_CASES[target][0]
    node_with(root, {path: json.dumps(existing)})
    # Two targets: the containerd one is fine, but nothing may be written when one fails.
    result = run_apply(render(profile(folder, f'  containerd: {{version: "1.7"}}\n  {target}: {{}}\n')), root)
    assert result.returncode == 1, result.stderr
    assert all(w in result.stderr for w in words), result.stderr
    assert tree(root) == {path.lstrip("/"): json.dumps(existing).encode()}


@on_every_node_python
def test_kubelet_globs_and_credential_provider(folder: Path) -> None:
    targets = '  kubelet:\n    match: {"*-docker.pkg.dev": europe-docker.pkg.dev}\n    credential_provider: {type: gcp}\n'
    root = folder / "root"
    other = {"apiVersion": "kubelet.config.k8s.io/v1", "kind": "CredentialProviderConfig", "providers": [
        {"name": "ecr-credential-provider", "apiVersion": "credentialprovider.kubelet.k8s.io/v1", "matchImages": ["*.dkr.ecr.*.amazonaws.com"], "defaultCacheDuration": "12h"}]}  # fmt: skip
    node_with(root, {"/etc/kubernetes/credential-provider-config.yaml": yaml.safe_dump(other)})
    log = applied_twice(render(profile(folder, targets)), root)
    auths = json.loads((root / "var/lib/kubelet/config.json").read_text())["auths"]
    assert auths[HOST] == auths["*-docker.pkg.dev"]
    config = yaml.safe_load((root / "etc/kubernetes/credential-provider-config.yaml").read_text())
    jsonschema.validate(config, schema("kubelet-credentialprovider-v1.schema.json"))
    assert [p["name"] for p in config["providers"]] == ["ecr-credential-provider", "auth-provider-gcp"]
    gcp = config["providers"][1]
    assert gcp["matchImages"] == ["container.cloud.google.com", "gcr.io", "*.gcr.io", "*.pkg.dev"] and gcp["args"] == ["get-credentials", "--v=3"]
    assert mode(root / "etc/kubernetes/credential-provider-config.yaml") == 0o644
    assert "/usr/local/bin/auth-provider-gcp is not installed" in log and "--image-credential-provider-config=" in log


def test_credential_provider_alone_needs_no_registries_and_no_secret(folder: Path) -> None:
    path = write_profile(folder, "version: 1\ntargets:\n  kubelet: {config_json: false, credential_provider: {type: gcp}}\n", "provider")
    rootfs = render(path)
    assert mode(rootfs.parent / "user-data") == 0o644 and mode(rootfs / "etc/regauth/plan.json") == 0o644
    assert sorted(p for p in tree(rootfs) if not p.startswith(("usr/", "etc/regauth"))) == ["etc/kubernetes/credential-provider-config.yaml"]
    missing = write_profile(folder, "version: 1\ntargets:\n  kubelet: {}\n", "nothing")
    result = run_cli("validate", str(missing))
    assert result.code == 2 and "missing required key 'registries'" in result.err


# ------------------------------------------------------------------ k3s / rke2


K3S_EXISTING = """\
# written by hand
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.gcr.io"
  quay.io:
    endpoint: ["https://quay-mirror.example"]
configs:
  "other.example":
    auth: {username: someone, password: other}
    tls: {insecure_skip_verify: true}
  "europe-docker.pkg.dev":
    auth: {username: _json_key, password: stale}
    tls: {insecure_skip_verify: false}
"""


@on_every_node_python
@pytest.mark.parametrize("distro", ["k3s", "rke2"])
def test_registries_yaml_merge_mirrors_tls_and_schema(distro: str, folder: Path, sa_key: dict) -> None:
    (folder / "ca.pem").write_bytes(_ca_pem())
    registries = (
        f"registries:\n  - {{host: {HOST}, auth: {{type: gcp-service-account, secret: gar-key}}, mirror_for: docker.io, path: /v2/my-project/hub}}\n"
        f"  - {{host: '{ROBOT}', auth: {{type: basic, username: robot, secret: pw}}, tls: {{ca_file: ca.pem}}}}\n"
    )
    root = folder / "root"
    path = f"/etc/rancher/{distro}/registries.yaml"
    node_with(root, {path: K3S_EXISTING})
    applied_twice(render(profile(folder, f"  {distro}: {{}}\n", registries)), root)
    result = root / path.lstrip("/")
    assert mode(result) == 0o600
    doc = yaml.safe_load(result.read_text())
    assert json.loads(result.read_text()) == doc  # JSON text: valid YAML, stdlib on the node
    jsonschema.validate(doc, schema("k3s-registries.schema.json"))
    before = yaml.safe_load(K3S_EXISTING)
    assert doc["configs"]["other.example"] == before["configs"]["other.example"]
    assert doc["mirrors"]["quay.io"] == before["mirrors"]["quay.io"]
    assert doc["mirrors"]["docker.io"] == {"endpoint": [f"https://{HOST}", "https://mirror.gcr.io"], "rewrite": {"^(.*)$": "my-project/hub/$1"}}
    assert doc["configs"][HOST] == {"auth": {"username": "_json_key_base64", "password": base64.b64encode(key_file_bytes(sa_key)).decode()}, "tls": {"insecure_skip_verify": False}}
    tls = doc["configs"][ROBOT]["tls"]
    assert doc["configs"][ROBOT]["auth"] == {"username": "robot", "password": PASSWORD}
    assert (root / tls["ca_file"].lstrip("/")).read_bytes() == _ca_pem()


def test_k3s_refuses_two_mirrors_with_different_paths(folder: Path) -> None:
    registries = (
        "registries:\n  - {host: a.example, auth: {type: basic, username: u, secret: pw}, mirror_for: docker.io, path: /v2/p/one}\n"
        "  - {host: b.example, auth: {type: basic, username: u, secret: pw}, mirror_for: docker.io, path: /v2/p/two}\n"
    )
    result = run_cli("validate", str(profile(folder, "  k3s: {}\n  containerd: {version: '1.7'}\n", registries)))
    assert result.code == 2 and "k3s applies a mirror's rewrite to every endpoint of docker.io" in result.err


@on_every_node_python
def test_yaml_errors_never_quote_the_file(folder: Path) -> None:
    root = folder / "root"
    node_with(root, {"/etc/rancher/k3s/registries.yaml": "configs:\n  x:\n    auth: {password: hunter2-secret\n"})
    result = run_apply(render(profile(folder, "  k3s: {}\n")), root)
    assert result.returncode == 1 and "is not valid YAML (line" in result.stderr
    assert "hunter2" not in result.stderr


# ------------------------------------------------------------------ containerd hosts.toml


@on_every_node_python
def test_containerd_hosts_toml_merges_with_a_foreign_one(folder: Path) -> None:
    (folder / "ca.pem").write_bytes(_ca_pem())
    registries = (
        f"registries:\n  - {{host: {HOST}, auth: {{type: gcp-service-account, secret: gar-key}}, mirror_for: docker.io, path: /v2/p/hub}}\n"
        f"  - {{host: '{ROBOT}', auth: {{type: basic, username: robot, secret: pw}}, tls: {{ca_file: ca.pem}}}}\n"
    )
    foreign = 'server = "https://docker.io"\nskip_verify = false\n\n[host."https://mirror.gcr.io"]\n  capabilities = ["pull", "resolve"]\n  [host."https://mirror.gcr.io".header]\n    x-a = ["b"]\n'
    root = folder / "root"
    stock = (ROOT / "tests/fixtures/containerd/1.6.20-default.toml").read_text()
    node_with(root, {"/etc/containerd/certs.d/docker.io/hosts.toml": foreign, "/etc/containerd/config.toml": stock})
    applied_twice(render(profile(folder, '  containerd: {version: "1.6"}\n', registries)), root)
    hosts = tomllib.loads((root / "etc/containerd/certs.d/docker.io/hosts.toml").read_text())
    assert list(hosts["host"]) == ["https://europe-docker.pkg.dev/v2/p/hub", "https://mirror.gcr.io"]  # ours first
    assert hosts["host"]["https://mirror.gcr.io"] == {"capabilities": ["pull", "resolve"], "header": {"x-a": ["b"]}}
    assert hosts["server"] == "https://registry-1.docker.io" and hosts["skip_verify"] is False
    config = tomllib.loads((root / "etc/containerd/config.toml").read_text())
    registry = config["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    assert registry["config_path"] == "/etc/containerd/certs.d"
    assert "config_path = \"/etc/containerd/certs.d\"  # set by regauth" in (root / "etc/containerd/config.toml").read_text()
    robot = tomllib.loads((root / f"etc/containerd/certs.d/{ROBOT}/hosts.toml").read_text())
    assert robot == {"server": f"https://{ROBOT}", "ca": "ca.crt"}


@on_every_node_python
def test_containerd_mirrors_next_to_registry_mirrors_refused(folder: Path) -> None:
    registries = f"registries:\n  - {{host: {HOST}, auth: {{type: gcp-service-account, secret: gar-key}}, mirror_for: docker.io}}\n"
    root = folder / "root"
    legacy = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n  endpoint = ["https://mirror.gcr.io"]\n'
    node_with(root, {"/etc/containerd/config.toml": legacy})
    result = run_apply(render(profile(folder, '  containerd: {version: "1.7"}\n', registries)), root)
    assert result.returncode == 1 and "registry.mirrors.docker.io" in result.stderr and "config_path" in result.stderr
    assert (root / "etc/containerd/config.toml").read_text() == legacy


def test_containerd_too_old_for_hosts_toml(folder: Path) -> None:
    registries = f"registries:\n  - {{host: {HOST}, auth: {{type: gcp-service-account, secret: gar-key}}, mirror_for: docker.io}}\n"
    result = run_cli("validate", str(profile(folder, '  containerd: {version: "1.4"}\n', registries)))
    assert result.code == 2 and "cannot read hosts.toml" in result.err


def test_containerd_12_writes_a_version_1_config(folder: Path) -> None:
    text = (render(profile(folder, '  containerd: {version: "1.2"}\n')) / "etc/containerd/config.toml").read_text()
    assert text.startswith("version = 1\n")
    assert tomllib.loads(text)["plugins"]["cri"]["registry"]["configs"][ROBOT]["auth"]["password"] == PASSWORD


# ------------------------------------------------------------------ MicroK8s


@on_every_node_python
@pytest.mark.parametrize("fixture, table", [
    ("containerd-template-08a8c4a.toml", ("plugins", "io.containerd.grpc.v1.cri")),
    ("containerd-template-c9099aa-legacy.toml", ("plugins", "cri")),
])  # fmt: skip
def test_microk8s_template_merge_keeps_placeholders_and_escapes_dollars(fixture: str, table: tuple, folder: Path) -> None:
    original = (MK8S / fixture).read_text()
    root = folder / "root"
    node_with(root, {TEMPLATE: original})
    applied_twice(render(profile(folder, "  microk8s: {wait_for_template: 0}\n")), root)
    merged = (root / TEMPLATE.lstrip("/")).read_text()
    assert mode(root / TEMPLATE.lstrip("/")) == 0o600
    assert merged.startswith(original.rstrip("\n"))  # the template itself untouched, byte for byte
    assert "$" not in merged[len(original):]  # none of our values can meet the snap's sed
    rendered = apply.snap_render(merged)
    assert "${" not in rendered
    auth = tomllib.loads(rendered)
    for key in table:
        auth = auth[key]
    assert auth["registry"]["configs"][ROBOT]["auth"] == {"username": "robot", "password": PASSWORD}


@on_every_node_python
def test_microk8s_current_style_template_gets_hosts_toml_in_snap_data(folder: Path) -> None:
    # Derived from the 08a8c4a template the way current MicroK8s ships it: config_path,
    # no registry.mirrors (FIELD_NOTES section 7).
    original = (MK8S / "containerd-template-08a8c4a.toml").read_text()
    derived = original[: original.index("    # 'plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors'")] + '    config_path = "${SNAP_DATA}/args/certs.d"\n'
    (folder / "ca.pem").write_bytes(_ca_pem())
    registries = f"registries:\n  - {{host: '{ROBOT}', auth: {{type: basic, username: robot, secret: pw}}, tls: {{ca_file: ca.pem}}}}\n"
    root = folder / "root"
    node_with(root, {TEMPLATE: derived})
    applied_twice(render(profile(folder, "  microk8s: {wait_for_template: 0}\n", registries)), root)
    assert (root / f"var/snap/microk8s/current/args/certs.d/{ROBOT}/ca.crt").read_bytes() == _ca_pem()
    assert 'config_path = "${SNAP_DATA}/args/certs.d"' in (root / TEMPLATE.lstrip("/")).read_text()


@on_every_node_python
def test_microk8s_waits_for_the_template_then_applies(folder: Path) -> None:
    root = folder / "root"
    rootfs = render(profile(folder, "  microk8s: {wait_for_template: 30}\n"))
    original = (MK8S / "containerd-template-08a8c4a.toml").read_text()
    # The snap installs while regauth-apply waits: the template appears a little later.
    timer = threading.Timer(0.5, node_with, (root, {TEMPLATE: original}))
    timer.start()
    try:
        result = run_apply(rootfs, root)
    finally:
        timer.cancel()
    assert result.returncode == 0, result.stderr
    assert "waiting up to 30s" in result.stderr and "microk8s: " in result.stderr


@on_every_node_python
@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_microk8s_without_template_fails_or_skips(policy: str, folder: Path) -> None:
    root = folder / "root"
    root.mkdir()
    result = run_apply(render(profile(folder, f"  microk8s: {{wait_for_template: 0, if_missing: {policy}}}\n")), root)
    if policy == "fail":
        assert result.returncode == 1 and "install MicroK8s before regauth-apply runs" in result.stderr
    else:
        assert result.returncode == 0 and "skipped" in result.stderr
    assert tree(root) == {}


# ------------------------------------------------------------------ every target: missing runtime


ALL_TARGETS = {
    "containerd": '  containerd: {version: "1.7", if_missing: POLICY}\n',
    "k3s": "  k3s: {if_missing: POLICY}\n",
    "rke2": "  rke2: {if_missing: POLICY}\n",
    "docker": "  docker: {if_missing: POLICY}\n",
    "podman": "  podman: {if_missing: POLICY}\n",
    "crio": "  crio: {if_missing: POLICY}\n",
    "kubelet": "  kubelet: {if_missing: POLICY}\n",
}


@on_every_node_python
@pytest.mark.parametrize("target", sorted(ALL_TARGETS))
@pytest.mark.parametrize("policy", ["fail", "skip", "write"])
def test_node_without_the_runtime(target: str, policy: str, folder: Path) -> None:
    root = folder / "root"
    root.mkdir()
    result = run_apply(render(profile(folder, ALL_TARGETS[target].replace("POLICY", policy), name=f"{target}-{policy}")), root)
    if policy == "fail":
        assert result.returncode == 1 and "is not installed on this node" in result.stderr and "if_missing" in result.stderr
        assert tree(root) == {}
    elif policy == "skip":
        assert result.returncode == 0 and "skipped" in result.stderr
        assert tree(root) == {}
    else:
        assert result.returncode == 0 and "its files are written for when it is" in result.stderr
        secret_files = [p for p in root.rglob("*") if p.is_file() and mode(p) != 0o644]
        assert secret_files and all(mode(p) == 0o600 for p in secret_files)


@on_every_node_python
def test_runtime_found_on_path_is_detected(folder: Path) -> None:
    root = folder / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/dockerd").write_text("#!/bin/sh\n")
    result = run_apply(render(profile(folder, "  docker: {if_missing: fail}\n")), root)
    assert result.returncode == 0, result.stderr


def test_every_example_profile_validates(tmp_path: Path) -> None:
    # A copy, with the throwaway key `make demo` would create, so demo.yaml is checked too.
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "profiles"
    shutil.copytree(ROOT / "profiles", copy, ignore=shutil.ignore_patterns("*.json"))
    subprocess.run([sys.executable, str(ROOT / "scripts/demo-key.py"), str(copy / "keys/demo-gar-key.json")], check=True)
    paths = sorted(copy.glob("*.yaml"))
    assert len(paths) >= 7
    result = run_cli("validate", *map(str, paths), env={"REGAUTH_EXAMPLE_PASSWORD": "x"})
    assert result.code == 0, result.err


# ------------------------------------------------------------------ profile validation


@pytest.mark.parametrize(
    "entry, where, words",
    [
        ("path: /v2/p/r", "registries[0].path", "path only applies to a mirror"),
        ("mirror_for: docker.io, path: /p/r", "registries[0].path", "write path: /v2/p/r"),
        ("mirror_for: europe-docker.pkg.dev", "registries[0].mirror_for", "cannot mirror itself"),
        ("mirror_for: 'https://docker.io'", "registries[0].mirror_for", "mirror_for: docker.io"),
        ("tls: {cert_file: c.pem}", "registries[0].tls", "cert_file needs key_file"),
        ("tls: {ca: c.pem}", "registries[0].tls.ca", "unknown key 'ca'\n  fix: allowed here: ca_file, cert_file, key_file"),
        ("tls: {ca_file: ../../c.pem}", "registries[0].tls.ca_file", "leaves the profile's folder"),
    ],
)
def test_route_fields_are_validated_with_positions(entry: str, where: str, words: str, folder: Path) -> None:
    registries = f"registries:\n  - {{host: {HOST}, auth: {{type: gcp-service-account, secret: gar-key}}, {entry}}}\n"
    result = run_cli("validate", str(profile(folder, '  containerd: {version: "1.7"}\n', registries)))
    assert result.code == 2, result.err
    assert "node.yaml:" in result.err and re.search(rf"error: \[[a-z0-9-]+\] {re.escape(where)}:", result.err) and words in result.err, result.err


def test_tls_files_are_checked_at_render(folder: Path) -> None:
    (folder / "ca.pem").write_text("not a certificate\n")
    (folder / "client.pem").write_bytes(_ca_pem())
    (folder / "client.key").write_bytes(_key_pem())
    (folder / "client.key").chmod(0o644)
    registries = f"registries:\n  - {{host: {HOST}, auth: {{type: gcp-service-account, secret: gar-key}}, tls: {{ca_file: ca.pem, cert_file: client.pem, key_file: client.key}}}}\n"
    result = run_cli("render", str(profile(folder, '  containerd: {version: "1.7"}\n', registries)), "-o", str(folder / "out"))
    assert result.code == 2
    assert "tls.ca_file: ca_file is not a PEM certificate" in result.err
    assert "tls.key_file: key_file " in result.err and "chmod 600" in result.err
    (folder / "client.key").chmod(0o600)
    result = run_cli("render", str(profile(folder, '  containerd: {version: "1.7"}\n', registries)), "-o", str(folder / "out"))
    assert "key_file does not belong to cert_file" in result.err
    assert not (folder / "out").exists()


def test_kubelet_match_is_validated(folder: Path) -> None:
    targets = '  kubelet:\n    match: {"https://*.pkg.dev": europe-docker.pkg.dev, "*-docker.pkg.dev": nowhere.example}\n'
    result = run_cli("validate", str(profile(folder, targets)))
    assert result.code == 2
    assert "has a scheme" in result.err and "'nowhere.example' is not a host under registries:" in result.err


def test_docker_mirror_is_a_warning(folder: Path) -> None:
    registries = f"registries:\n  - {{host: {HOST}, auth: {{type: gcp-service-account, secret: gar-key}}, mirror_for: docker.io, path: /v2/p/r}}\n"
    result = run_cli("render", str(profile(folder, "  docker: {}\n", registries)), "-o", str(folder / "out"))
    assert result.code == 0 and "warning: [authfile-mirror] targets.docker: Docker cannot use" in result.err


# ------------------------------------------------------------------ the shipped script


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_shipped_script_has_what_its_kind_needs(kind: str) -> None:
    script = applyscript.script_for_plan([{"kind": kind, "registries": []}])
    namespace: dict = {"__name__": "regauth_apply_shipped"}
    exec(compile(script, "regauth-apply", "exec"), namespace)
    shipped = namespace["_P"]
    assert sys.modules[f"{shipped}.main"].steps([kind])[kind].__module__.startswith(shipped)
    assert len(script) < len(applyscript.full_script())


def test_containerd_only_script_stays_small() -> None:
    """AWS allows 16 KB of user-data: a containerd node must not carry the other runtimes."""
    small = applyscript.script_for_plan([{"kind": "containerd", "registries": [{"host": "h", "password": "p"}]}])
    assert b"def auths_merge" not in small and b"def registries_yaml_merge" not in small and b"def load_document" not in small
    # Measured 2026-11-30: 17,738 of 26,486 bytes gzipped, then 18,159 of 27,142 with containerd
    # 1.x's header keys, 1.6's relative globs and the MicroK8s config dump; the TOML reader both carry is ~5.3 KB
    # of it.  The demo's plan (one key) and cloud-config add ~3 KB, so the demo for AWS would
    # need this <= ~13.35 KB to fit 16 KB (README: Limitations): the bound below is where it
    # is now, not that goal, so growth is noticed.  18,691 after 1.x's handling of a version-3
    # file (1.6 and 1.7 differ) and of TOML it reads differently got their own rule and message (doctor shares the first).
    small_gz, full_gz = len(gzip.compress(small, 9)), len(gzip.compress(applyscript.full_script(), 9))
    assert small_gz < full_gz * 3 // 4
    assert small_gz <= 18_700


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_dollar_safe_strings_survive_the_snap_sed(value: str) -> None:
    text = apply.toml_string(value, True)
    assert "$" not in text
    assert tomllib.loads("v = " + apply.snap_render(text))["v"] == value


# ------------------------------------------------------------------ helpers: a CA and a key, made now


def _pki() -> tuple[bytes, bytes]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "regauth unit CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem


_PKI = _pki()


def _ca_pem() -> bytes:
    return _PKI[0]


def _key_pem() -> bytes:
    """A key that does not belong to _ca_pem() (fresh)."""
    return _pki()[1]


# ------------------------------------------------------------------ restarts (fake systemctl / snap on PATH)


def _fake_tools(folder: Path, active: set[str]) -> tuple[dict[str, str], Path]:
    """systemctl and snap stand-ins that only record their argv (no host service is touched)."""
    bin_dir, calls = folder / "fakebin", folder / "calls.log"
    bin_dir.mkdir()
    for tool in ("systemctl", "snap"):
        script = bin_dir / tool
        script.write_text(
            "#!/bin/sh\n"
            f'echo "{tool} $*" >> "{calls}"\n'
            'if [ "$1" = is-active ]; then case "$3" in ' + ("|".join(sorted(active)) or "none-active") + ") exit 0;; *) exit 3;; esac; fi\n"
            "exit 0\n"
        )
        script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, calls


@on_every_node_python
@pytest.mark.parametrize(
    "targets, node, active, expected",
    [
        ("  k3s: {}\n", {}, {"k3s-agent"}, ["systemctl restart k3s-agent"]),
        ("  rke2: {}\n", {}, set(), []),
        ("  microk8s: {wait_for_template: 0}\n", {TEMPLATE: (MK8S / "containerd-template-08a8c4a.toml").read_text()},
         {"snap.microk8s.daemon-containerd"}, ["snap restart microk8s.daemon-containerd"]),
        ("  docker: {}\n", {}, {"docker"}, []),  # the CLI reads config.json per pull
        ("  crio: {}\n", {}, {"crio"}, ["systemctl restart crio"]),
    ],
)  # fmt: skip
def test_restart_only_running_units_and_only_on_change(targets: str, node: dict, active: set[str], expected: list[str], folder: Path) -> None:
    root = folder / "root"
    root.mkdir()
    node_with(root, node)
    env, calls = _fake_tools(folder, active)
    rootfs = render(profile(folder, targets))
    script, plan = rootfs / "usr/local/sbin/regauth-apply", rootfs / "etc/regauth/plan.json"
    for _ in range(2):  # the second run changes nothing and must restart nothing
        result = subprocess.run([str(interpreter()), str(script), "--root", str(root), "--plan", str(plan)], capture_output=True, text=True, timeout=60, env={**os.environ, **env})
        assert result.returncode == 0, result.stderr
    made = [line for line in (calls.read_text().splitlines() if calls.exists() else []) if "is-active" not in line]
    assert made == expected
