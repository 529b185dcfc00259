"""Issue 7: ``regauth doctor`` finds every origin mistake with its line, and nothing in clean configs.

The corpus lives in tests/fixtures/doctor (keys filled in at test time, see
tests/support/doctor_corpus.py).  TOML/YAML fixtures carry ``# expect: CODE: text``
markers on the offending line; each test asserts exactly those findings: same code,
same line, that text in the report, and nothing else.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from generator.doctor.command import check_sources
from generator.doctor.discover import find, follow_imports
from generator.doctor.errors_explain import explain
from generator.doctor.findings import CODES
from generator.core.imageref import BadReference, parse_image
from generator.doctor.locate import json_positions, toml_positions
from generator.node.containerd_imports import read
from tests.conftest import ROOT, gar_profile, run_cli, write_profile
from tests.support.doctor_corpus import (
    CORPUS,
    Expect,
    markers,
    materialize,
    secret_fragments,
)

CONTAINERD_CASES = sorted((CORPUS / "containerd").glob("*.toml"))

# JSON has no comments: the broken node's JSON expectations, by file (relative to the node).
BROKEN_NODE_JSON = {
    "etc/containers/auth.json": [Expect(3, "host-key", 'look Docker Hub credentials up as "docker.io"')],
    "root/.docker/config.json": [
        Expect(3, "host-key", "'*.pkg.dev' is a wildcard"),
        Expect(4, "host-key", "https://index.docker.io/v1/"),
        Expect(5, "json-key-invalid", "a real newline inside a JSON string"),
        Expect(6, "auth-field", 'not base64 of "user:password"'),
        Expect(7, "oauth2accesstoken", "about an hour"),
        Expect(0, "permissions", "mode 0644"),  # this test loosens the file on purpose
    ],
    "var/lib/kubelet/config.json": [Expect(2, "ignored-key", "is at the top level")],
}


def _doctor_cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "generator", "doctor", *args], cwd=cwd, capture_output=True, text=True, check=False,
                          input=stdin, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def _blocks(text: str) -> dict[tuple[str, int, str], str]:
    """Rendered findings keyed by (file, line, code): 'file:line: severity: [code] ...' plus its why/fix lines."""
    out: dict[tuple[str, int, str], str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^(\S+?)(?::(\d+))?(?::\d+)?: (error|warning): \[([a-z0-9-]+)\]", line)
        if m:
            current = (m.group(1), int(m.group(2) or 0), m.group(4))
            assert current not in out, f"two findings at {current}"
            out[current] = line
        elif current and line.startswith("  "):
            out[current] += "\n" + line
        else:
            current = None
    return out


# --------------------------------------------------------------------- corpus


@pytest.mark.parametrize("fixture", CONTAINERD_CASES, ids=lambda p: p.stem)
def test_containerd_corpus_findings_match_markers(fixture: Path, tmp_path: Path) -> None:
    expected = markers(fixture)
    assert expected, f"{fixture.name} has no expect markers"
    path = materialize(fixture, tmp_path)
    found = find([str(path)])
    assert not found.unreadable
    findings = [f for r in check_sources(found.sources, None) for f in r.findings]
    assert Counter((f.line, f.code) for f in findings) == Counter((e.line, e.code) for e in expected), "\n".join(f.render() for f in findings)
    for e in expected:
        (hit,) = [f for f in findings if (f.line, f.code) == (e.line, e.code)]
        rendered = hit.render()
        assert e.text in rendered, f"line {e.line} [{e.code}]: {e.text!r} not in:\n{rendered}"
        assert rendered.startswith(f"{path}:{e.line}") and "\n  why: " in rendered and "\n  fix: " in rendered


def test_corpus_exercises_every_finding_code() -> None:
    used = {e.code for p in CORPUS.rglob("*") if p.suffix in (".toml", ".yaml") for e in markers(p)}
    used |= {e.code for es in BROKEN_NODE_JSON.values() for e in es}
    used.add("image-host")  # asserted with --image below
    used |= {"provider-flags", "provider-binary"}  # on applied nodes: tests/unit/test_credential_provider.py
    used |= {"missing-import", "config-version-release"}  # need a node tree and a release: tests/unit/test_doctor_containerd_release.py
    assert used == set(CODES), set(CODES) ^ used


def test_broken_node_walk_reports_every_file_with_lines(tmp_path: Path) -> None:
    node = materialize(CORPUS / "broken-node", tmp_path)
    (node / "root/.docker/config.json").chmod(0o644)
    expected: dict[tuple[str, int, str], str] = {}
    for path in sorted((CORPUS / "broken-node").rglob("*")):
        rel = path.relative_to(CORPUS / "broken-node").as_posix()
        for e in markers(path) if path.suffix in (".toml", ".yaml") else BROKEN_NODE_JSON.get(rel, []):
            expected[(f"broken-node/{rel}", e.line, e.code)] = e.text
    proc = _doctor_cli("broken-node", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    got = _blocks(proc.stdout)
    assert set(got) == set(expected), f"missing {set(expected) - set(got)}, extra {set(got) - set(expected)}"
    for key, text in expected.items():
        assert text in got[key], f"{key}: {text!r} not in {got[key]}"
    # the drop-in is only reachable through `imports` in config.toml
    assert "broken-node/etc/containerd/registry-auth.toml (containerd)" in proc.stdout
    as_json = json.loads(_doctor_cli("broken-node", "--json", cwd=tmp_path).stdout)
    assert {(f["file"], f["line"], f["code"]) for f in as_json["findings"]} == set(expected)
    assert all(f["why"] and f["fix"] for f in as_json["findings"]) and as_json["ok"] is False
    for fragment in secret_fragments():
        assert fragment not in proc.stdout + proc.stderr and fragment not in json.dumps(as_json)


def test_clean_node_and_stock_configs_have_no_findings(tmp_path: Path) -> None:
    materialize(CORPUS / "clean-node", tmp_path)
    proc = _doctor_cli("clean-node", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checked 7 file(s)" in proc.stdout and "no problems found" in proc.stdout
    stock = sorted((ROOT / "tests/fixtures/containerd").glob("*.toml")) + sorted((ROOT / "tests/fixtures/microk8s").glob("containerd-template*.toml"))
    assert len(stock) >= 3
    result = json.loads(_doctor_cli(*map(str, stock), "--json", cwd=tmp_path).stdout)
    assert result["findings"] == [] and result["ok"] is True
    assert {f["kind"] for f in result["files"]} == {"containerd", "microk8s"}
    # With --image, files without credentials say nothing individually; that none has any is said once.
    bare = _doctor_cli(str(stock[0]), "--image", "europe-docker.pkg.dev/p/r/app:1", cwd=tmp_path)
    assert bare.returncode == 1 and f"{stock[0]}: error: [image-host] none of the 1 file(s) checked holds any registry credentials" in bare.stdout


@pytest.mark.parametrize(
    ("image", "missing"),
    [
        ("europe-docker.pkg.dev/my-project/repo/app:1", set()),
        ("nginx:1.25", {"clean-node/var/snap/microk8s/current/args/containerd-template.toml"}),
        ("gcr.io/my-project/app:1", {"clean-node/etc/containerd/config.toml", "clean-node/etc/rancher/rke2/registries.yaml",
                                     "clean-node/root/.docker/config.json", "clean-node/etc/containers/auth.json",
                                     "clean-node/run/containers/0/auth.json", "clean-node/var/lib/kubelet/config.json",
                                     "clean-node/var/snap/microk8s/current/args/containerd-template.toml"}),
    ],
)
def test_image_host_matching_follows_each_runtime(image: str, missing: set[str], tmp_path: Path) -> None:
    materialize(CORPUS / "clean-node", tmp_path)
    result = json.loads(_doctor_cli("clean-node", "--image", image, "--json", cwd=tmp_path).stdout)
    hits = [f for f in result["findings"] if f["code"] == "image-host"]
    assert {f["file"] for f in hits} == missing, hits
    assert len(result["findings"]) == len(hits)
    for f in hits:
        assert f["line"] > 0 and parse_image(image).registry in f["message"]


def test_image_host_names_the_near_miss_and_the_line(tmp_path: Path) -> None:
    path = materialize(CORPUS / "containerd" / "v2-host-keys.toml", tmp_path)
    proc = _doctor_cli(str(path), "--image", "europe-docker.pkg.dev/p/r/app:1", cwd=tmp_path)
    block = _blocks(proc.stdout)[(str(path), 4, "image-host")]
    assert "no credentials for europe-docker.pkg.dev" in block and "*.pkg.dev" in block and "https://europe-docker.pkg.dev" in block
    assert '[plugins."io.containerd.grpc.v1.cri".registry.configs."europe-docker.pkg.dev".auth]' in block


# --------------------------------------------------------------------- rendered output


RENDER_CASES = {
    "gar16": ("1.6", "europe-docker.pkg.dev", "_json_key_base64"),
    "gar17": ("1.7", "us-docker.pkg.dev", "_json_key"),
    "gar21": ("2.1", "europe-west1-docker.pkg.dev", "_json_key_base64"),
}


def test_doctor_on_rendered_rootfs_reports_nothing(profile_dir: Path, tmp_path: Path) -> None:
    profiles = [gar_profile(profile_dir, version=v, host=h, username=u, name=n) for n, (v, h, u) in RENDER_CASES.items()]
    profiles.append(
        write_profile(
            profile_dir,
            """
            version: 1
            targets: {containerd: {version: "2.1"}}
            secrets:
              gar: {source: file, path: key.json}
              pw: {source: env, var: REGAUTH_DOCTOR_PW}
            registries:
              - {host: europe-docker.pkg.dev, auth: {type: gcp-service-account, secret: gar}}
              - {host: "registry.example.com:5000", auth: {type: basic, username: robot, secret: pw}}
              - {host: registry-1.docker.io, auth: {type: basic, username: robot, secret: pw}}
            """,
            name="mixed",
        )
    )
    out = tmp_path / "out"
    rendered = run_cli("render", *map(str, profiles), "-o", str(out), env={"REGAUTH_DOCTOR_PW": 'p"a\\ss ${SNAP}\n'})
    assert rendered.code == 0, rendered.err
    for name in [*RENDER_CASES, "mixed"]:
        rootfs = out / name / "rootfs"
        proc = _doctor_cli(str(rootfs), cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "no problems found" in proc.stdout and "etc/containerd/config.toml" in proc.stdout
    host = RENDER_CASES["gar21"][1]
    assert _doctor_cli(str(out / "gar21/rootfs"), "--image", f"{host}/p/r/app:1", cwd=tmp_path).returncode == 0
    miss = _doctor_cli(str(out / "gar21/rootfs"), "--image", "us-docker.pkg.dev/p/r/app:1", cwd=tmp_path)
    assert miss.returncode == 1 and "[image-host]" in miss.stdout and f"credentials for {host}" in miss.stdout


def test_doctor_on_stock_config_after_apply_is_clean(profile_dir: Path, tmp_path: Path) -> None:
    """The apply step merges into a real stock 1.6 config; the merged file is clean too."""
    out = tmp_path / "out"
    assert run_cli("render", str(gar_profile(profile_dir, version="1.6")), "-o", str(out)).code == 0
    node = tmp_path / "node"
    config = node / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text((ROOT / "tests/fixtures/containerd/1.6.20-default.toml").read_text())
    rootfs = out / "node/rootfs"
    apply = subprocess.run([sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(node), "--plan",
                            str(rootfs / "etc/regauth/plan.json"), "--no-restart"], capture_output=True, text=True, check=False, timeout=60)
    assert apply.returncode == 0, apply.stderr
    proc = _doctor_cli(str(node), "--image", "europe-docker.pkg.dev/p/r/app:1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout


def test_every_target_output_applied_to_a_node_is_clean(profile_dir: Path, tmp_path: Path) -> None:
    """Each registered runtime target (its EXAMPLE options), rendered and applied onto a node
    seeded with stock configs: doctor finds nothing in what regauth wrote, '${SNAP}' included."""
    from generator.targets import TARGETS

    profiles = []
    for name, target in TARGETS.items():
        options = "\n".join("  " + line for line in target.EXAMPLE.splitlines())
        profiles.append(write_profile(profile_dir, f"""
version: 1
targets:
{options}
secrets:
  gar: {{source: file, path: key.json}}
  pw: {{source: env, var: REGAUTH_DOCTOR_PW}}
registries:
  - {{host: europe-docker.pkg.dev, auth: {{type: gcp-service-account, secret: gar}}}}
  - {{host: us-docker.pkg.dev, auth: {{type: gcp-service-account, secret: gar, username: _json_key}}}}
  - {{host: "registry.example.com:5000", auth: {{type: basic, username: robot, secret: pw}}}}
""", name=f"t-{name}"))
    out = tmp_path / "out"
    rendered = run_cli("render", *map(str, profiles), "-o", str(out), env={"REGAUTH_DOCTOR_PW": "pa${SNAP_DATA}ss"})
    assert rendered.code == 0, rendered.err
    for name in TARGETS:
        node = tmp_path / f"node-{name}"
        seeds = [("etc/containerd/config.toml", "tests/fixtures/containerd/1.6.20-default.toml")]
        if name == "microk8s":  # elsewhere an unconfigured MicroK8s would (rightly) be reported: it reads only its template
            seeds.append(("var/snap/microk8s/current/args/containerd-template.toml", "tests/fixtures/microk8s/containerd-template-08a8c4a.toml"))
        for rel, stock in seeds:
            (node / rel).parent.mkdir(parents=True, exist_ok=True)
            (node / rel).write_text((ROOT / stock).read_text())
        rootfs = out / f"t-{name}" / "rootfs"
        apply = subprocess.run([sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(node), "--plan",
                                str(rootfs / "etc/regauth/plan.json"), "--no-restart"], capture_output=True, text=True, check=False, timeout=60)
        assert apply.returncode == 0, (name, apply.stderr)
        proc = _doctor_cli(str(node), "--image", "europe-docker.pkg.dev/p/r/app:1", cwd=tmp_path)
        assert proc.returncode == 0 and "no problems found" in proc.stdout, (name, proc.stdout)


# --------------------------------------------------------------------- inputs and exit codes


def test_unreadable_inputs_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello\n")
    for args, text in (
        (["missing.toml"], "no such file"),
        (["empty"], "no runtime registry config found"),
        (["notes.txt"], "not a config doctor knows"),
        ([], "nothing to check"),
        (["empty", "--image", "https://europe-docker.pkg.dev/x"], "has a scheme"),
    ):
        proc = _doctor_cli(*args, cwd=tmp_path)
        assert proc.returncode == 2 and text in proc.stderr, (args, proc.stdout, proc.stderr)


def test_named_file_of_any_name_is_sniffed_or_forced(tmp_path: Path) -> None:
    src = materialize(CORPUS / "broken-node" / "var/lib/kubelet/config.json", tmp_path)
    copy = tmp_path / "kubelet-backup.json"
    copy.write_bytes(src.read_bytes())
    copy.chmod(0o600)
    as_docker = json.loads(_doctor_cli(str(copy), "--json", cwd=tmp_path).stdout)
    as_kubelet = json.loads(_doctor_cli(str(copy), "--as", "kubelet", "--json", cwd=tmp_path).stdout)
    assert as_docker["files"][0]["kind"] == "docker" and as_kubelet["files"][0]["kind"] == "kubelet"
    assert "kubelet reads credentials only" in as_kubelet["findings"][0]["why"]


# --------------------------------------------------------------------- --error


ERRORS = [
    (
        ('failed to pull and unpack image "europe-docker.pkg.dev/my-project/repo/app:1": failed to resolve reference '
        '"europe-docker.pkg.dev/my-project/repo/app:1": failed to authorize: failed to fetch oauth token: unexpected status '
        "from GET request to https://europe-docker.pkg.dev/v2/token?scope=repository%3Amy-project%2Frepo%2Fapp%3Apull"
        "&service=europe-docker.pkg.dev: 401 Unauthorized"),
        ["oauth-token-rejected"], "europe-docker.pkg.dev", "europe-docker.pkg.dev/my-project/repo/app:1", 401,
    ),
    (
        ('Failed to pull image "us-docker.pkg.dev/p/r/app:2": rpc error: code = Unknown desc = failed to pull and unpack image '
        '\\"us-docker.pkg.dev/p/r/app:2\\": failed to resolve reference \\"us-docker.pkg.dev/p/r/app:2\\": failed to authorize: '
        "failed to fetch anonymous token: unexpected status from GET request to "
        "https://us-docker.pkg.dev/v2/token?scope=repository%3Ap%2Fr%2Fapp%3Apull&service=us-docker.pkg.dev: 403 Forbidden"),
        ["anonymous-token"], "us-docker.pkg.dev", "us-docker.pkg.dev/p/r/app:2", 403,
    ),
    (
        ('failed to pull and unpack image "registry.example.com:5000/app:1": failed to resolve reference '
        '"registry.example.com:5000/app:1": failed to do request: Head "https://registry.example.com:5000/v2/app/manifests/1": '
        "tls: failed to verify certificate: x509: certificate signed by unknown authority"),
        ["x509-unknown-authority"], "registry.example.com:5000", "registry.example.com:5000/app:1", 0,
    ),
    (
        ('failed to resolve reference "europe-docker.pkg.dev/p/r/app:1": unexpected status from HEAD request to '
        "https://europe-docker.pkg.dev/v2/p/r/app/manifests/1: 403 Forbidden"),
        ["forbidden"], "europe-docker.pkg.dev", "europe-docker.pkg.dev/p/r/app:1", 403,
    ),
    ('failed to resolve reference "europe-docker.pkg.dev/p/r/app:nope": europe-docker.pkg.dev/p/r/app:nope: not found',
     ["not-found"], "europe-docker.pkg.dev", "europe-docker.pkg.dev/p/r/app:nope", 0),
    (('failed to do request: Head "https://europe-docker.pkg.dev/v2/p/r/app/manifests/1": dial tcp: lookup '
     "europe-docker.pkg.dev on 127.0.0.53:53: no such host"), ["dns"], "europe-docker.pkg.dev", "", 0),
    ('failed to do request: Head "https://10.0.0.5:5000/v2/app/manifests/1": http: server gave HTTP response to HTTPS client',
     ["plain-http"], "10.0.0.5:5000", "", 0),
    ('Back-off pulling image "europe-docker.pkg.dev/p/r/app:1"', ["backoff"], "europe-docker.pkg.dev", "europe-docker.pkg.dev/p/r/app:1", 0),
]


@pytest.mark.parametrize(("text", "codes", "host", "image", "status"), ERRORS, ids=[e[1][0] for e in ERRORS])
def test_explain_error_text(text: str, codes: list[str], host: str, image: str, status: int) -> None:
    reading = explain(text)
    assert [e.code for e in reading.explanations] == codes
    assert reading.host == host and (reading.image.text if reading.image else "") == image and reading.status == status
    assert all(e.checks for e in reading.explanations)


def test_error_cli_explains_and_checks_configs_for_the_image_in_it(tmp_path: Path) -> None:
    anon = ERRORS[1][0]
    proc = _doctor_cli("--error", anon, cwd=tmp_path)
    assert proc.returncode == 0
    assert "[anonymous-token] no credentials matched us-docker.pkg.dev" in proc.stdout and "check: " in proc.stdout
    piped = _doctor_cli("--error", "-", "--json", cwd=tmp_path, stdin=ERRORS[0][0])
    assert json.loads(piped.stdout)["error"]["explanations"][0]["code"] == "oauth-token-rejected"
    unknown = _doctor_cli("--error", "something else entirely", cwd=tmp_path)
    assert unknown.returncode == 1 and "not one regauth recognises" in unknown.stdout
    # With configs too, the image named in the error is checked against them.
    materialize(CORPUS / "clean-node", tmp_path)
    both = _doctor_cli("--error", anon, "clean-node/etc/containers/auth.json", cwd=tmp_path)
    assert both.returncode == 1 and "[image-host]" in both.stdout and "us-docker.pkg.dev" in both.stdout


# --------------------------------------------------------------------- building blocks


def test_toml_positions_ignore_brackets_inside_strings_and_arrays() -> None:
    text = (
        'version = 2\nnote = """\n[not.a.table]\n"""\nlist = [\n  "[x]",\n]\n'
        '[plugins."io.containerd.grpc.v1.cri".registry.configs."h:1".auth]\n'
        "username = 'u' # [comment]\n"
        "a.b.c = 1\n"
    )
    pos = toml_positions(read(text, 2))
    assert ("not", "a", "table") not in pos.lines
    assert pos.line(("plugins", "io.containerd.grpc.v1.cri", "registry", "configs", "h:1", "auth", "username")) == 9
    assert pos.line(("plugins", "io.containerd.grpc.v1.cri", "registry", "configs", "h:1")) == 8
    assert pos.line(("plugins", "io.containerd.grpc.v1.cri", "registry", "configs", "h:1", "auth", "a", "b")) == 10
    assert pos.line(("missing",)) == 0


def test_json_positions() -> None:
    pos = json_positions('{\n "auths": {\n  "a": {"auth": "x"},\n  "b": [1, {"c": 2}]\n },\n "z": "}"\n}')
    assert pos.lines[("auths", "a", "auth")] == 3 and pos.lines[("auths", "b", "1", "c")] == 4 and pos.lines[("z",)] == 6


@pytest.mark.parametrize(
    ("text", "registry", "repository", "reference", "host"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", "registry-1.docker.io"),
        ("docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "7", "registry-1.docker.io"),
        ("europe-docker.pkg.dev/p/r/app@sha256:" + "a" * 64, "europe-docker.pkg.dev", "p/r/app", "sha256:" + "a" * 64, "europe-docker.pkg.dev"),
        ("registry.test:5000/team/app:v1", "registry.test:5000", "team/app", "v1", "registry.test:5000"),
        ("localhost/app", "localhost", "app", "latest", "localhost"),
    ],
)
def test_parse_image(text: str, registry: str, repository: str, reference: str, host: str) -> None:
    ref = parse_image(text)
    assert (ref.registry, ref.repository, ref.reference, ref.host) == (registry, repository, reference, host)


def test_parse_image_rejects_urls_and_spaces() -> None:
    for bad in ("https://europe-docker.pkg.dev/p/r/app", "", "a b", "Europe/App"):
        with pytest.raises(BadReference):
            parse_image(bad)


def test_follow_imports_resolves_against_the_node_root(tmp_path: Path) -> None:
    node = materialize(CORPUS / "broken-node", tmp_path)
    found = find([str(node / "etc/containerd/config.toml")])
    follow_imports(found)
    assert [s.real.name for s in found.sources] == ["config.toml", "registry-auth.toml"]


def test_help_path_does_not_import_doctor_or_verify() -> None:
    for args in (["--help"], ["doctor", "--help"], ["verify", "--help"]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "generator", *args], capture_output=True, text=True, check=False, cwd=ROOT)
        assert proc.returncode == 0 and "example" in proc.stdout
        imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
        heavy = [m for m in imported if m.startswith(("generator.doctor", "generator.verify", "generator.registryclient", "yaml", "cryptography"))]
        assert not heavy, (args, heavy)


def test_node_root_checks_known_locations_only_and_follows_symlinks(tmp_path: Path) -> None:
    node = materialize(CORPUS / "clean-node", tmp_path)
    snap = node / "var/snap/microk8s"
    (snap / "current").rename(snap / "6089")
    (snap / "current").symlink_to("6089")
    stray = node / "home/alice/backup/etc/containerd/config.toml"  # a copy in someone's home is not the node's config
    stray.parent.mkdir(parents=True)
    stray.write_text((CORPUS / "containerd/v2-missing-host.toml").read_text())
    proc = _doctor_cli("clean-node", cwd=tmp_path)
    assert proc.returncode == 0 and "checked 7 file(s)" in proc.stdout and "containerd-template.toml (microk8s)" in proc.stdout
    assert "backup" not in proc.stdout
    etc_only = _doctor_cli("clean-node/etc", cwd=tmp_path)
    # /etc, plus the MicroK8s template beside it (the node has MicroK8s, and that is the file it reads)
    assert etc_only.returncode == 0 and "checked 4 file(s): clean-node/etc/containerd/config.toml (containerd)" in etc_only.stdout
    assert "clean-node/var/snap/microk8s/current/args/containerd-template.toml (microk8s)" in etc_only.stdout
    walked = _doctor_cli("clean-node/home", cwd=tmp_path)  # no etc/ here: walked, recognised by path ending
    assert walked.returncode == 1 and "clean-node/home/alice/backup/etc/containerd/config.toml:4:" in walked.stdout
