"""What a new user writes by habit, and the one precise message each gets (issue 17,
items 4 and 9): default ports on hosts, containerd versions as `containerd --version`
prints them or as YAML numbers, key files already base64-encoded, gcloud user
credentials, misspelled keys."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from generator.profiles import check_profile
from generator.core.sakey import check_service_account_key
from tests.conftest import gar_profile, run_cli, write_profile
from tests.support.keys import key_file_bytes


def problems(path: Path) -> list:
    return [p for p in check_profile(path)[1] if p.severity == "error"]


@pytest.mark.parametrize("host", ["us-central1-docker.pkg.dev:443", "registry.example.com:80"])
def test_default_port_on_a_host_is_an_error_with_the_bare_host(profile_dir: Path, host: str) -> None:
    found = problems(gar_profile(profile_dir, host=host))
    bare = host.rsplit(":", 1)[0]
    assert len(found) == 1, found
    p = found[0]
    assert (p.path, p.line, p.col) == ("registries[0].host", 8, 11)
    assert "default port" in p.message and "never matches" in p.message
    assert p.fix == f"write host: {bare} (as in your image references)"
    # Editors say it too: the JSON Schema refuses the default port.
    import jsonschema
    import yaml

    from generator.profiles import profile_schema

    doc = yaml.safe_load((profile_dir / "node.yaml").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, profile_schema())
    doc["registries"][0]["host"] = bare
    jsonschema.validate(doc, profile_schema())


def test_other_ports_stay_valid(profile_dir: Path) -> None:
    assert problems(gar_profile(profile_dir, host="registry.example.com:5000")) == []
    assert problems(gar_profile(profile_dir, host="registry.example.com:8443")) == []


@pytest.mark.parametrize(
    ("written", "meant"),
    [("v1.7", "1.7"), ("v1.7.24", "1.7"), ("v2.1.4", "2.1"), ("containerd github.com/containerd/containerd v1.7.24 88bf19b2105c8b17560993bee28a01ddc2f97182", "1.7")],
)
def test_containerd_version_as_printed_gets_the_release_to_write(profile_dir: Path, written: str, meant: str) -> None:
    found = problems(gar_profile(profile_dir, version=written))
    assert len(found) == 1, found
    assert found[0].path == "targets.containerd.version"
    assert found[0].fix == f'write the release as major.minor: version: "{meant}"'


def test_unquoted_version_is_quoted_as_written(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "version: 1\ntargets:\n  containerd: {version: 1.10}\nregistries: []\n")
    found = [p for p in problems(path) if p.path == "targets.containerd.version"]
    assert len(found) == 1, found
    assert found[0].fix == 'quote it: version: "1.10"'
    assert "1.10" in found[0].message and (found[0].line, found[0].col) == (3, 25)


def test_base64_encoded_key_file_is_recognised_and_checked(sa_key: dict) -> None:
    good = base64.b64encode(key_file_bytes(sa_key))
    wrapped = base64.encodebytes(key_file_bytes(sa_key))  # 76-column lines, like `base64 KEY.json`
    for raw in (good, good + b"\n", wrapped):
        (finding,) = check_service_account_key(raw)
        assert "base64-encoded" in finding.message and "regauth encodes the key itself" in finding.message
        assert "decoded, it is a usable key" in finding.message
        assert finding.fix.startswith("decode it into the file regauth reads: base64 -d")
    mangled = {**sa_key, "private_key": sa_key["private_key"].replace("\n", "\\n")}
    (finding,) = check_service_account_key(base64.b64encode(key_file_bytes(mangled)))
    assert "decoded, it still has a problem: private_key contains literal backslash-n" in finding.message


def test_gcloud_user_credentials_get_one_error() -> None:
    adc = {"client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com", "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty", "refresh_token": "1//0gFAKE", "type": "authorized_user"}
    findings = check_service_account_key(json.dumps(adc).encode())
    assert len(findings) == 1, findings
    assert "application-default credentials of a user" in findings[0].message
    assert "gcloud iam service-accounts keys create" in findings[0].fix
    oauth_client = {"installed": {"client_id": "x.apps.googleusercontent.com", "client_secret": "y"}}
    (finding,) = check_service_account_key(json.dumps(oauth_client).encode())
    assert 'the key\'s "type" is missing' in finding.message


GOOD_SECRET = "{source: file, path: key.json}"
GOOD_REGISTRY = "  - {host: europe-docker.pkg.dev, auth: {type: gcp-service-account, secret: gar-key}}"


@pytest.mark.parametrize(
    ("secret", "registry", "wrong", "right"),
    [
        (GOOD_SECRET, "  - hots: europe-docker.pkg.dev\n    auth: {type: gcp-service-account, secret: gar-key}", "hots", "host"),
        (GOOD_SECRET, "  - host: europe-docker.pkg.dev\n    auth: {type: gcp-service-account, secert: gar-key}", "secert", "secret"),
        ("{sorce: file, path: key.json}", GOOD_REGISTRY, "sorce", "source"),
        ("{source: file, pth: key.json}", GOOD_REGISTRY, "pth", "path"),
    ],
)
def test_misspelled_key_is_one_problem(profile_dir: Path, secret: str, registry: str, wrong: str, right: str) -> None:
    path = write_profile(profile_dir, f'version: 1\ntargets:\n  containerd: {{version: "1.7"}}\nsecrets:\n  gar-key: {secret}\nregistries:\n{registry}\n')
    found = problems(path)
    assert [(p.message, p.fix) for p in found] == [(f"unknown key '{wrong}'", f"did you mean '{right}'?")], found


def test_misspelled_top_level_key_is_one_problem(tmp_path: Path) -> None:
    top = write_profile(tmp_path, "verison: 1\ntargets:\n  containerd: {version: '1.7'}\nregistries: []\n")
    assert [p.message for p in problems(top) if "version" in p.message or "verison" in p.message] == ["unknown key 'verison'"]


def test_validate_cli_says_it_for_a_base64_key_file(profile_dir: Path, sa_key: dict) -> None:
    (profile_dir / "key.json").write_bytes(base64.b64encode(key_file_bytes(sa_key)) + b"\n")
    r = run_cli("validate", str(gar_profile(profile_dir)))
    assert r.code == 2
    assert "base64-encoded" in r.err and "Expecting value" not in r.err, r.err
