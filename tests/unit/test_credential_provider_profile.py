"""Issue 16: the profile contract of regauth's own kubelet credential provider.

``targets.kubelet.credential_provider: {type: regauth}`` and the keyless auth type
``gcp-vm-identity``: what validates, what is refused (with file, line, field and fix),
and what the plan carries to the node.  The node side is in test_credential_provider.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from generator.profiles import check_profile
from generator.profiles import profile_schema
from tests.conftest import run_cli, write_profile

KEYLESS = "europe-docker.pkg.dev"
ROBOT = "registry.example.com:5000"


def body(targets: str, registries: str) -> str:
    return ("version: 1\ntargets:\n" + targets
            + "secrets:\n  gar-key: {source: file, path: key.json}\n  boot: {source: gcp-secret-manager, project: my-project-1, secret: pw, version: 2, fetch: boot}\n"
            + "registries:\n" + registries)  # fmt: skip


PROVIDER = "  kubelet:\n    credential_provider: {type: regauth}\n"
ALL_THREE = (
    f"  - {{host: {KEYLESS}, auth: {{type: gcp-vm-identity}}}}\n"
    f"  - {{host: us-docker.pkg.dev, auth: {{type: gcp-service-account, secret: gar-key, username: _json_key}}}}\n"
    f"  - {{host: '{ROBOT}', auth: {{type: basic, username: robot, secret: boot}}}}\n"
)


def problems(folder: Path, text: str) -> list:
    _, found = check_profile(write_profile(folder, text))
    return found


def test_provider_profile_validates_against_loader_and_schema(profile_dir: Path) -> None:
    text = body(PROVIDER, ALL_THREE)
    assert [p for p in problems(profile_dir, text) if p.severity == "error"] == []
    jsonschema.validate(yaml.safe_load(text), profile_schema())


def test_plan_carries_store_entries_and_match_images(profile_dir: Path) -> None:
    path = write_profile(profile_dir, body(PROVIDER, ALL_THREE))
    out = profile_dir / "out"
    result = run_cli("render", str(path), "--out", str(out))
    assert result.code == 0, result.err
    plan = json.loads((out / "node" / "rootfs" / "etc/regauth/plan.json").read_text())
    (step,) = plan["steps"]
    provider = step["provider"]
    assert step["config_json"] is None and step["registries"] == []  # nothing static outside the store
    assert provider["entry"]["name"] == "regauth-credential-provider"
    assert provider["entry"]["matchImages"] == sorted([KEYLESS, "us-docker.pkg.dev", ROBOT])  # port kept
    by_host = {e["host"]: e for e in provider["registries"]}
    assert by_host[KEYLESS] == {"host": KEYLESS, "username": "oauth2accesstoken", "identity": "gcp-vm"}
    assert by_host[ROBOT]["password_from"]["gcp_secret_manager"] == "projects/my-project-1/secrets/pw/versions/2"
    assert by_host["us-docker.pkg.dev"]["username"] == "_json_key" and by_host["us-docker.pkg.dev"]["password"].startswith("{")
    assert provider["cache_seconds"] == 300 and provider["kubelet_flags"] == "auto"
    # The plan holds a key, so it is 0600; the user-data likewise.
    assert (out / "node" / "rootfs" / "etc/regauth/plan.json").stat().st_mode & 0o777 == 0o600


def test_vm_identity_needs_the_provider_and_says_why(profile_dir: Path) -> None:
    text = body('  containerd: {version: "1.7"}\n' + PROVIDER, f"  - {{host: {KEYLESS}, auth: {{type: gcp-vm-identity}}}}\n")
    (err,) = [p for p in problems(profile_dir, text) if p.severity == "error"]
    assert err.path == "registries[0].auth.type" and err.line == 10
    assert "targets.containerd" in err.message and "expire" in err.message and "credential_provider" in err.fix
    # kubelet with a static config.json is refused the same way.
    text = body("  kubelet:\n    config_json: /var/lib/kubelet/config.json\n    credential_provider: {type: regauth}\n", f"  - {{host: {KEYLESS}, auth: {{type: gcp-vm-identity}}}}\n")
    (err,) = [p for p in problems(profile_dir, text) if p.severity == "error"]
    assert "targets.kubelet" in err.message


def test_vm_identity_refuses_secret_and_other_usernames(profile_dir: Path) -> None:
    text = body(PROVIDER, f"  - {{host: {KEYLESS}, auth: {{type: gcp-vm-identity, secret: gar-key, username: _json_key}}}}\n")
    found = {p.path: p for p in problems(profile_dir, text) if p.severity == "error"}
    assert set(found) == {"registries[0].auth.secret", "registries[0].auth.username"}
    assert "metadata server" in found["registries[0].auth.secret"].message
    assert "oauth2accesstoken" in found["registries[0].auth.username"].fix
    schema_errors = list(jsonschema.Draft202012Validator(profile_schema()).iter_errors(yaml.safe_load(text)))
    assert schema_errors, "the schema must refuse a secret on gcp-vm-identity too"


def test_vm_identity_on_a_registry_that_is_not_google_is_a_warning(profile_dir: Path) -> None:
    found = problems(profile_dir, body(PROVIDER, f"  - {{host: '{ROBOT}', auth: {{type: gcp-vm-identity}}}}\n"))
    (warning,) = found
    assert warning.severity == "warning" and warning.path == "registries[0].host" and "refuse" in warning.message
    result = run_cli("validate", str(profile_dir / "node.yaml"))
    assert result.code == 0 and "warning" in result.err.lower()


def test_provider_options_are_checked(profile_dir: Path) -> None:
    targets = "  kubelet:\n    credential_provider: {type: regauth, kubelet_flags: kubeadmin, cache_duration: 1m30s}\n"
    found = {p.path: p for p in problems(profile_dir, body(targets, ALL_THREE)) if p.severity == "error"}
    assert "did you mean 'kubeadm'" in found["targets.kubelet.credential_provider.kubelet_flags"].fix
    assert "5m" in found["targets.kubelet.credential_provider.cache_duration"].fix
    gcp = "  kubelet:\n    credential_provider: {type: gcp, kubelet_flags: kubeadm}\n"
    found = {p.path for p in problems(profile_dir, body(gcp, ALL_THREE.splitlines(True)[1])) if p.severity == "error"}
    assert found == {"targets.kubelet.credential_provider.kubelet_flags"}
