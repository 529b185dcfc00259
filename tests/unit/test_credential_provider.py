"""Issue 16: regauth-credential-provider (kubelet's v1 plugin protocol) and the kubelet
step that installs it (store, CredentialProviderConfig, kubelet flags per distribution).

The shipped program is rendered from a profile and run as kubelet runs it, by the
oldest and newest node Pythons, against the fake metadata server and the fake Secret
Manager; every request and answer is checked against the v1 plugin schema written from
the Kubernetes API reference.  The real pulls with these answers are in
tests/system/test_provider_pull.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.node import jsontext, kubeletflags
from tests.support import node_pythons
from tests.conftest import ROOT, run_cli, write_profile
from tests.support.fake_gsm import running_fake_gsm
from tests.support.fake_metadata import DOWN, running_fake_metadata

SCHEMA = json.loads((ROOT / "tests/fixtures/schemas/kubelet-credentialprovider-plugin-v1.schema.json").read_text())
CONFIG_SCHEMA = json.loads((ROOT / "tests/fixtures/schemas/kubelet-credentialprovider-v1.schema.json").read_text())
PYTHONS = (node_pythons.OLDEST, node_pythons.NEWEST)  # the one list: tests/support/nodepython.py
PROVIDER = "usr/local/sbin/regauth-credential-provider"
STORED = "registry.example.com:5000"
KEYLESS = "europe-docker.pkg.dev"
SM = "us-docker.pkg.dev"
PASSWORD = "s3cr3t-stored \"q\" $x"


def render(folder: Path, endpoint: str, flags: str = "none", password: str = PASSWORD) -> Path:
    (folder / "pw").write_text(password + "\n")
    (folder / "pw").chmod(0o600)
    path = write_profile(folder, f"""
        version: 1
        targets:
          kubelet:
            credential_provider: {{type: regauth, kubelet_flags: {flags}, cache_duration: 10m}}
        secrets:
          pw: {{source: file, path: pw}}
          sm: {{source: gcp-secret-manager, project: regauth-test, secret: gar-reader, version: 1, fetch: boot, endpoint: '{endpoint}'}}
        registries:
          - {{host: '{STORED}', auth: {{type: basic, username: robot, secret: pw}}}}
          - {{host: {KEYLESS}, auth: {{type: gcp-vm-identity}}}}
          - {{host: {SM}, auth: {{type: gcp-service-account, secret: sm, username: _json_key}}}}
        """)
    result = run_cli("render", str(path), "-o", str(folder / "out"))
    assert result.code == 0, result.err
    return folder / "out" / "node" / "rootfs"


def apply(rootfs: Path, root: Path, python: str = PYTHONS[0]) -> subprocess.CompletedProcess:
    return subprocess.run([python, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(root), "--plan",
                           str(rootfs / "etc/regauth/plan.json"), "--no-restart"], capture_output=True, text=True, timeout=60)  # fmt: skip


def ask(python: str, root: Path, image: object, md_host: str, raw: bytes | None = None) -> subprocess.CompletedProcess:
    request = {"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest", "image": image}
    if raw is None:
        jsonschema.validate(request, SCHEMA)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCE_")}
    env["GCE_METADATA_HOST"] = md_host
    return subprocess.run([python, str(root / PROVIDER), "--root", str(root)], input=raw if raw is not None else json.dumps(request).encode(),
                          capture_output=True, env=env, timeout=60)  # fmt: skip


def answer(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    return doc


@pytest.fixture
def node(tmp_path: Path):
    """A node root with the rendered plan applied and the provider installed (as user-data does)."""
    with running_fake_metadata() as md, running_fake_gsm(require_bearer=lambda t: md.state.token_is_valid(t)) as gsm:
        gsm.add_secret("regauth-test", "gar-reader", b'{"type": "service_account", "private_key": "k"}')
        rootfs = render(tmp_path, gsm.rest_endpoint)
        root = tmp_path / "root"
        result = apply(rootfs, root)
        assert result.returncode == 0, result.stderr
        (root / PROVIDER).parent.mkdir(parents=True, exist_ok=True)
        (root / PROVIDER).write_bytes((rootfs / PROVIDER).read_bytes())
        (root / PROVIDER).chmod(0o755)
        yield root, md, gsm, rootfs


@pytest.mark.parametrize("python", PYTHONS)
def test_answers_for_each_source_and_image_form(node, python: str) -> None:
    root, md, gsm, _ = node
    for image in (f"{STORED}/team/app:v1", f"{STORED}/team/app@sha256:{'a' * 64}", f"{STORED}/team/app"):
        doc = answer(ask(python, root, image, md.host_port))
        assert doc["cacheKeyType"] == "Registry" and doc["cacheDuration"] == "600s"
        assert doc["auth"] == {STORED: {"username": "robot", "password": PASSWORD}}
    keyless = answer(ask(python, root, f"{KEYLESS}/p/r/img:1", md.host_port))
    token = keyless["auth"][KEYLESS]
    assert token["username"] == "oauth2accesstoken" and md.state.token_is_valid(token["password"])
    assert int(keyless["cacheDuration"][:-1]) < md.state.token_ttl
    sm = answer(ask(python, root, f"{SM}/p/r/img@sha256:{'b' * 64}", md.host_port))
    assert sm["auth"][SM]["username"] == "_json_key" and json.loads(sm["auth"][SM]["password"])["type"] == "service_account"
    for other in ("registry.example.com/team/app:v1", "registry.example.com:5001/x", "busybox", "docker.io/library/busybox:1.36", "localhost/x"):
        doc = answer(ask(python, root, other, md.host_port))
        assert doc["auth"] == {} and doc["cacheKeyType"] == "Image", other


def test_secret_manager_answers_come_from_a_root_only_cache(node) -> None:
    root, md, gsm, _ = node
    image = f"{SM}/p/r/img:1"
    first = answer(ask(PYTHONS[0], root, image, md.host_port))
    assert gsm.fetch_count() == 1
    warm = answer(ask(PYTHONS[1], root, image, md.host_port))
    assert warm["auth"] == first["auth"] and gsm.fetch_count() == 1
    assert 0 < int(warm["cacheDuration"][:-1]) <= 600  # what is left of the cache entry, not a fresh 10m
    cache = root / "var/cache/regauth-credential-provider"
    (entry,) = cache.iterdir()
    assert cache.stat().st_mode & 0o777 == 0o700 and entry.stat().st_mode & 0o777 == 0o600
    entry.chmod(0o644)  # someone else could have written it: not trusted, fetched again
    assert answer(ask(PYTHONS[0], root, image, md.host_port))["auth"] == first["auth"] and gsm.fetch_count() == 2


def test_errors_are_one_line_and_never_a_secret(node, tmp_path: Path) -> None:
    root, md, gsm, _ = node
    bad = ask(PYTHONS[0], root, "x", md.host_port, raw=b"not json")
    assert bad.returncode == 2 and bad.stdout == b"" and len(bad.stderr.decode().strip().splitlines()) == 1
    wrong = ask(PYTHONS[0], root, "x", md.host_port, raw=json.dumps({"apiVersion": "credentialprovider.kubelet.k8s.io/v1beta1", "kind": "CredentialProviderRequest", "image": "x"}).encode())
    assert wrong.returncode == 2 and b"v1beta1" in wrong.stderr
    md.state.set_fault(DOWN)
    down = ask(PYTHONS[0], root, f"{KEYLESS}/p/r/i:1", md.host_port)
    assert down.returncode == 1 and down.stdout == b"" and b"metadata token" in down.stderr and b": FAILED [node-fetch-" in down.stderr
    assert len(down.stderr.decode().strip().splitlines()) == 1, down.stderr  # retries are not printed
    assert PASSWORD.encode() not in down.stderr
    empty = tmp_path / "empty"
    (empty / PROVIDER).parent.mkdir(parents=True)
    (empty / PROVIDER).write_bytes((root / PROVIDER).read_bytes())
    missing = ask(PYTHONS[0], empty, f"{STORED}/a:b", md.host_port)
    assert missing.returncode == 1 and b"regauth-credential-provider: FAILED [node-provider-store] " in missing.stderr and b"run regauth-apply" in missing.stderr and len(missing.stderr.splitlines()) == 1


def test_kubelet_step_writes_store_config_and_is_idempotent(node) -> None:
    root, md, gsm, rootfs = node
    store = root / "etc/regauth/credential-provider.json"
    assert store.stat().st_mode & 0o777 == 0o600
    config = json.loads((root / "etc/kubernetes/credential-provider-config.yaml").read_text())
    jsonschema.validate(config, CONFIG_SCHEMA)
    (entry,) = config["providers"]
    assert entry["name"] == "regauth-credential-provider" and entry["matchImages"] == sorted([STORED, KEYLESS, SM])
    # Nothing but the store holds the password (0600); no config.json with keys.
    for path in root.rglob("*"):
        if path.is_file() and path != store and path.name != "plan.json":
            assert PASSWORD.encode() not in path.read_bytes(), path
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    again = apply(rootfs, root, PYTHONS[1])
    assert again.returncode == 0 and "already up to date" in again.stderr, again.stderr
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


KUBEADM = '# kubeadm extras\nKUBELET_EXTRA_ARGS="--node-ip=10.0.0.5 --image-credential-provider-config /old.yaml --v=2"\nOTHER=1\n'
WANTED = {"image-credential-provider-config": "/etc/kubernetes/cp.yaml", "image-credential-provider-bin-dir": "/usr/local/sbin"}


def test_kubeadm_extra_args_merge_keeps_other_flags() -> None:
    new = kubeletflags.merge_default_kubelet(KUBEADM, WANTED, "/etc/default/kubelet")
    assert new == ('# kubeadm extras\nKUBELET_EXTRA_ARGS="--node-ip=10.0.0.5 --v=2 --image-credential-provider-bin-dir=/usr/local/sbin '
                   '--image-credential-provider-config=/etc/kubernetes/cp.yaml"\nOTHER=1\n')  # fmt: skip
    assert kubeletflags.merge_default_kubelet(new, WANTED, "f") == new
    assert kubeletflags.merge_default_kubelet(None, WANTED, "f").startswith('KUBELET_EXTRA_ARGS="--image-credential-provider-bin-dir=')
    twice = kubeletflags.merge_default_kubelet('KUBELET_EXTRA_ARGS=--a\nKUBELET_EXTRA_ARGS="--b"\n', WANTED, "f")
    assert twice.splitlines()[0] == "KUBELET_EXTRA_ARGS=--a" and twice.splitlines()[1].startswith('KUBELET_EXTRA_ARGS="--b --image')  # the one that counts
    # The shell reads it back as the same arguments.
    out = subprocess.run(["bash", "-c", 'source /dev/stdin; printf "%s\\n" $KUBELET_EXTRA_ARGS'], input=new, capture_output=True, text=True)
    assert out.stdout.split() == ["--node-ip=10.0.0.5", "--v=2", "--image-credential-provider-bin-dir=/usr/local/sbin", "--image-credential-provider-config=/etc/kubernetes/cp.yaml"]


def test_microk8s_args_and_rancher_config_merges() -> None:
    args = "--kubeconfig=${SNAP_DATA}/credentials/kubelet.config\n--image-credential-provider-bin-dir=/old\n--node-labels=a=b\n"
    new = kubeletflags.merge_microk8s_args(args, WANTED)
    assert new.splitlines() == ["--kubeconfig=${SNAP_DATA}/credentials/kubelet.config", "--node-labels=a=b",
                                "--image-credential-provider-bin-dir=/usr/local/sbin", "--image-credential-provider-config=/etc/kubernetes/cp.yaml"]  # fmt: skip
    assert kubeletflags.merge_microk8s_args(new, WANTED) == new
    k3s = '{"token": "t", "kubelet-arg": ["max-pods=50", "image-credential-provider-config=/old"]}'
    merged = json.loads(kubeletflags.merge_rancher_config(k3s, WANTED, "config.yaml"))
    assert merged == {"token": "t", "kubelet-arg": ["max-pods=50", "image-credential-provider-bin-dir=/usr/local/sbin",
                                                    "image-credential-provider-config=/etc/kubernetes/cp.yaml"]}  # fmt: skip
    single = json.loads(kubeletflags.merge_rancher_config('{"kubelet-arg": "max-pods=50"}', WANTED, "c"))
    assert single["kubelet-arg"][0] == "max-pods=50"



def seed_distribution(root: Path, marker: str | None) -> None:
    """Make ``root`` look like a node of one distribution: its folder (marker ends in /)
    or its kubelet flags file with an unrelated flag that must survive."""
    if marker and marker.endswith("/"):
        (root / marker).mkdir(parents=True)
    elif marker:
        (root / marker).parent.mkdir(parents=True)
        (root / marker).write_text("--node-labels=a=b\n")

@pytest.mark.parametrize("distro,marker,path", [
    ("kubeadm", None, "etc/default/kubelet"),
    ("microk8s", "var/snap/microk8s/current/args/kubelet", "var/snap/microk8s/current/args/kubelet"),
    ("k3s", "etc/rancher/k3s/", "etc/rancher/k3s/config.yaml"),
    ("rke2", "etc/rancher/rke2/", "etc/rancher/rke2/config.yaml"),
])  # fmt: skip
def test_auto_flags_land_where_the_distribution_reads_them(tmp_path: Path, distro: str, marker: str | None, path: str) -> None:
    with running_fake_metadata() as md:
        rootfs = render(tmp_path, "http://127.0.0.1:9", flags="auto")
        root = tmp_path / "root"
        seed_distribution(root, marker)
        result = apply(rootfs, root)
        assert result.returncode == 0, result.stderr
        text = (root / path).read_text()
        assert "image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml" in text, text
        assert "image-credential-provider-bin-dir=/usr/local/sbin" in text
        assert f"({distro})" in result.stderr
        again = apply(rootfs, root)
        assert "already up to date" in again.stderr and (root / path).read_text() == text
        del md


def doctor(root: Path, *extra: str) -> tuple[int, dict]:
    result = run_cli("doctor", str(root), "--json", *extra)
    return result.code, json.loads(result.out)


def test_doctor_reads_provider_config_flags_and_binary(node) -> None:
    root, md, gsm, _ = node
    (root / "etc/default").mkdir(parents=True, exist_ok=True)
    flags = kubeletflags.flags("/etc/kubernetes/credential-provider-config.yaml", "/usr/local/sbin")
    (root / "etc/default/kubelet").write_text(kubeletflags.merge_default_kubelet(None, flags, "f"))
    code, doc = doctor(root, "--image", f"{STORED}/team/app:v1")
    assert code == 0 and doc["findings"] == [] and any(f["kind"] == "kubelet-provider" for f in doc["files"]), doc
    code, doc = doctor(root, "--image", "other.example.com/a:b")
    assert [f["code"] for f in doc["findings"]] == ["image-host"] and "matchImages" in doc["findings"][0]["message"]
    (root / PROVIDER).chmod(0o644)
    code, doc = doctor(root)
    assert code == 1 and [f["code"] for f in doc["findings"]] == ["provider-binary"] and "not executable" in doc["findings"][0]["message"]
    (root / "etc/default/kubelet").write_text('KUBELET_EXTRA_ARGS="--v=2"\n')
    code, doc = doctor(root)
    assert [(f["code"], f["severity"]) for f in doc["findings"]] == [("provider-flags", "warning")]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_jsontext_reads_and_writes_as_json_does(value: object) -> None:
    """The provider's start-up JSON (CPython's _json without the json module) agrees with json."""
    text = jsontext.dumps(value)
    assert json.loads(text) == value and jsontext.loads(text) == value
    pretty = json.dumps(value, indent=1, ensure_ascii=False)
    assert jsontext.loads(" \n" + pretty + "\n") == json.loads(pretty)


@pytest.mark.parametrize("bad", ["", "{", "[1,]", '{"a": 1} x', "{'a': 1}", '"\\x"', "01"])
def test_jsontext_refuses_what_json_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(ValueError):
        jsontext.loads(bad)


@pytest.mark.parametrize("flags, marker, active, expected", [
    ("kubeadm", None, "kubelet", "systemctl restart kubelet"),
    ("auto", "var/snap/microk8s/current/args/kubelet", "snap.microk8s.daemon-kubelite", "snap restart microk8s.daemon-kubelite"),
    ("auto", "etc/rancher/k3s/", "k3s-agent", "systemctl restart k3s-agent"),
    ("rke2", None, "rke2-server", "systemctl restart rke2-server"),
])  # fmt: skip
def test_kubelet_restarts_once_for_flags_and_never_for_the_store(tmp_path: Path, flags: str, marker: str | None, active: str, expected: str) -> None:
    """Flags and provider config are read at kubelet's start (the running unit of the
    distribution restarts once); the store is read per request (a changed password
    restarts nothing)."""
    bin_dir, calls = tmp_path / "fakebin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("systemctl", "snap"):  # record argv; only ACTIVE "is running"
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\n'
                                    f'if [ "$1" = is-active ]; then [ "$3" = "{active}" ]; exit $?; fi\nexit 0\n')  # fmt: skip
        (bin_dir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    root = tmp_path / "root"
    seed_distribution(root, marker)
    rootfs = render(tmp_path, "http://127.0.0.1:9", flags=flags)
    argv = [PYTHONS[0], str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(root), "--plan", str(rootfs / "etc/regauth/plan.json")]

    def restarts() -> list[str]:
        return [line for line in calls.read_text().splitlines() if "restart" in line] if calls.exists() else []

    for _ in range(2):
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
    assert restarts() == [expected]
    render(tmp_path, "http://127.0.0.1:9", flags=flags, password="rotated")  # same paths, new plan
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0 and "credential-provider.json" in result.stderr and "no restart needed" in result.stderr, result.stderr
    assert restarts() == [expected]
    assert b"rotated" in (root / "etc/regauth/credential-provider.json").read_bytes()


def test_token_lifetimes_become_cache_durations_kubelet_drops_in_time(node) -> None:
    root, md, gsm, _ = node
    for ttl, expected in ((3599, 3299), (500, 250), (1, 0)):
        md.state.token_ttl = ttl
        doc = answer(ask(PYTHONS[0], root, f"{KEYLESS}/p/r/i:1", md.host_port))
        assert doc["cacheDuration"] == f"{expected}s", (ttl, doc["cacheDuration"])  # "0s": kubelet does not cache it


HUB_STORE = {"format": 1, "cache_seconds": 300, "registries": [{"host": "registry-1.docker.io", "username": "hubuser", "password": "hub-pw"}]}


@pytest.mark.parametrize("written", ["nginx", "library/nginx:1.27", "docker.io/library/nginx", "index.docker.io/library/nginx@sha256:" + "c" * 64,
                                     "team/app:v1", "docker.io/team/app", "registry-1.docker.io/team/app:v1"])
def test_docker_hub_answers_under_the_key_kubelet_looks_up(written: str) -> None:
    """kubelet asks with the normalised name (parsers.ParseImageName: nginx ->
    docker.io/library/nginx; index.docker.io -> docker.io; registry-1.docker.io stays)
    and looks the answer's auth up with that same name (BasicDockerKeyring.Lookup:
    URLsMatch, then the index.docker.io fallback): the key must match it."""
    from generator.core.imageref import kubelet_match, parse_image
    from generator.node.credprovider import answer as provider_answer

    ref = parse_image(written)
    sent = f"{ref.registry}/{ref.repository}" if not written.startswith("registry-1.docker.io/") else written.split(":")[0]
    request = {"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest", "image": sent}
    jsonschema.validate(request, SCHEMA)
    doc = provider_answer(sent, HUB_STORE)
    jsonschema.validate(doc, SCHEMA)
    assert doc["cacheKeyType"] == "Registry" and list(doc["auth"].values()) == [{"username": "hubuser", "password": "hub-pw"}]
    (key,) = doc["auth"]
    assert key == sent.split("/")[0] and kubelet_match(key, parse_image(sent)), (key, sent)
    assert provider_answer("ghcr.io/team/app", HUB_STORE)["auth"] == {}  # other hosts stay unanswered


def test_docker_hub_through_the_shipped_provider_and_its_match_images(tmp_path: Path) -> None:
    """The rendered CredentialProviderConfig lets kubelet run the provider for Docker Hub
    images (matchImages docker.io, as kubelet names them), no warning, and the shipped
    program answers kubelet's request for docker.io/library/nginx under docker.io."""
    from generator.core.imageref import kubelet_match, parse_image

    (tmp_path / "pw").write_text("hub-token\n")
    (tmp_path / "pw").chmod(0o600)
    path = write_profile(tmp_path, """
        version: 1
        targets: {kubelet: {credential_provider: {type: regauth, kubelet_flags: none}}}
        secrets: {pw: {source: file, path: pw}}
        registries: [{host: registry-1.docker.io, auth: {type: basic, username: hubuser, secret: pw}}]
        """)
    result = run_cli("render", str(path), "-o", str(tmp_path / "out"))
    assert result.code == 0 and "docker-hub" not in result.err and "Docker Hub" not in result.err, result.err
    rootfs, root = tmp_path / "out" / "node" / "rootfs", tmp_path / "root"
    assert apply(rootfs, root).returncode == 0
    config = json.loads((root / "etc/kubernetes/credential-provider-config.yaml").read_text())
    jsonschema.validate(config, CONFIG_SCHEMA)
    (entry,) = config["providers"]
    assert entry["matchImages"] == ["docker.io", "registry-1.docker.io"]
    for sent in ("docker.io/library/nginx", "docker.io/team/app", "registry-1.docker.io/team/app"):
        assert any(kubelet_match(m, parse_image(sent)) for m in entry["matchImages"]), sent
    (root / PROVIDER).parent.mkdir(parents=True, exist_ok=True)
    (root / PROVIDER).write_bytes((rootfs / PROVIDER).read_bytes())
    for python in PYTHONS:
        doc = answer(ask(python, root, "docker.io/library/nginx", "127.0.0.1:9"))
        assert doc["auth"] == {"docker.io": {"username": "hubuser", "password": "hub-token"}}


K3S_YAML = """\
# /etc/rancher/k3s/config.yaml: managed by hand
token: "K10abc::server:xyz"   # join token
node-label:
  - "tier=web"
kubelet-arg:
  # tuned for the big nodes
  - max-pods=150   # see runbook
  - 'image-credential-provider-config=/old/cp.yaml'
  - "v=2"
write-kubeconfig-mode: '0644'
"""


@pytest.mark.parametrize("text,kept", [
    (K3S_YAML, ["max-pods=150", "v=2"]),
    ("# only a comment\n", []),
    ("token: t\n", []),
    ("kubelet-arg:\n- max-pods=50\n# trailing comment\nfoo: bar\n", ["max-pods=50"]),
    ("kubelet-arg: [max-pods=50, 'a=b', \"image-credential-provider-bin-dir=/x\"]  # flow\nx: 1\n", ["max-pods=50", "a=b"]),
    ("kubelet-arg: feature-gates=A=true,B=false  # one string\n", ["feature-gates=A=true,B=false"]),
])  # fmt: skip
def test_rancher_config_yaml_is_edited_in_place(text: str, kept: list[str]) -> None:
    """Only regauth's kubelet-arg entries change: every other line of the user's file
    stays byte-identical (comments included), the result reads (PyYAML) as the old
    document with our two flags, and a second run changes nothing."""
    import yaml

    new = kubeletflags.merge_rancher_config(text, WANTED, "config.yaml")
    ours = ["image-credential-provider-bin-dir=/usr/local/sbin", "image-credential-provider-config=/etc/kubernetes/cp.yaml"]
    before, after = yaml.safe_load(text) or {}, yaml.safe_load(new)
    assert after == dict(before, **{"kubelet-arg": kept + ours})
    assert list(after) == list(before) + ([] if "kubelet-arg" in before else ["kubelet-arg"])  # key order kept
    assert kubeletflags.merge_rancher_config(new, WANTED, "config.yaml") == new
    old_lines = [line for line in text.splitlines() if "kubelet-arg" not in line and "image-credential-provider" not in line]
    new_lines = [line for line in new.splitlines() if "kubelet-arg" not in line and "image-credential-provider" not in line]
    assert new_lines == old_lines  # every other line, comments included, as it was
    if text == K3S_YAML:
        assert new == K3S_YAML.replace("  - 'image-credential-provider-config=/old/cp.yaml'\n", "").replace(
            '  - "v=2"\n', '  - "v=2"\n  - "image-credential-provider-bin-dir=/usr/local/sbin"\n  - "image-credential-provider-config=/etc/kubernetes/cp.yaml"\n')


@pytest.mark.parametrize("text,words", [
    ("kubelet-arg: [a,\n  b]\n", "one - item per line"),
    ("kubelet-arg: &args [a]\n", "one - item per line"),
    ("kubelet-arg:\n  - max-pods=50\n    continued\n", "on one line"),
    ("kubelet-arg:\n  - {a: b}\n", "not a list of strings"),
    ("kubelet-arg: []\nkubelet-arg: [a]\n", "appears 2 times"),
])  # fmt: skip
def test_rancher_config_shapes_regauth_cannot_edit_are_refused_in_one_line(tmp_path: Path, text: str, words: str) -> None:
    from generator.node.errors import ApplyError

    with pytest.raises(ApplyError, match=words) as caught:
        kubeletflags.merge_rancher_config(text, WANTED, "config.yaml")
    assert "\n" not in str(caught.value) and caught.value.code
    # Through the shipped regauth-apply: one FAILED line, the file untouched.
    rootfs = render(tmp_path, "http://127.0.0.1:9", flags="k3s")
    root = tmp_path / "root"
    (root / "etc/rancher/k3s").mkdir(parents=True)
    (root / "etc/rancher/k3s/config.yaml").write_text(text)
    result = apply(rootfs, root)
    assert result.returncode == 1 and (root / "etc/rancher/k3s/config.yaml").read_text() == text
    assert [line for line in result.stderr.splitlines() if "FAILED" in line] == [result.stderr.strip().splitlines()[-1]], result.stderr


def test_shipped_apply_edits_a_k3s_config_yaml_in_place(tmp_path: Path) -> None:
    """The shipped regauth-apply (run by an interpreter with PyYAML, as on a cloud-init
    node) keeps the user's config.yaml byte for byte but for our kubelet-arg entries,
    keeps its mode, and changes nothing on the second run."""
    import sys

    import yaml

    rootfs = render(tmp_path, "http://127.0.0.1:9", flags="k3s")
    root = tmp_path / "root"
    config = root / "etc/rancher/k3s/config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(K3S_YAML)
    config.chmod(0o600)
    first = apply(rootfs, root, sys.executable)
    assert first.returncode == 0, first.stderr
    text = config.read_text()
    assert text.startswith("# /etc/rancher/k3s/config.yaml: managed by hand\n") and "  - max-pods=150   # see runbook\n" in text
    assert yaml.safe_load(text)["kubelet-arg"] == ["max-pods=150", "v=2", "image-credential-provider-bin-dir=/usr/local/sbin",
                                                   "image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml"]  # fmt: skip
    assert config.stat().st_mode & 0o777 == 0o600
    again = apply(rootfs, root, sys.executable)
    assert again.returncode == 0 and "already up to date" in again.stderr and config.read_text() == text
