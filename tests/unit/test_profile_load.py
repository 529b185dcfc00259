"""Validation messages, asserted on the text users see."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from generator.errors import InvalidInput
from generator.profiles import check_profile, load_profile
from generator.profiles import profile_schema
from tests.conftest import ROOT, gar_profile, write_profile


def messages(path: Path) -> str:
    _, problems = check_profile(path)
    return "\n".join(p.render() for p in problems)


def test_demo_profile_loads() -> None:
    profile = load_profile(ROOT / "profiles" / "demo.yaml")
    assert profile.name == "demo"
    assert [r.host for r in profile.registries] == ["europe-docker.pkg.dev"]
    assert profile.targets["containerd"].config_version == 2


@pytest.mark.parametrize(
    ("host", "kind", "expected"),
    [
        ("'*.pkg.dev'", "wildcard", ["is a wildcard", "exact host", "europe-docker.pkg.dev"]),
        ("https://europe-docker.pkg.dev", "scheme", ["has a scheme", "write host: europe-docker.pkg.dev"]),
        ("europe-docker.pkg.dev/proj/repo", "path", ["has a path", "write host: europe-docker.pkg.dev"]),
        ("Europe-Docker.pkg.dev", "upper-case", ["upper-case", "write host: europe-docker.pkg.dev"]),
        ("docker.io", "docker-io", ["registry-1.docker.io"]),
        ("europe-docker.pkg.dev:443", "default-port", ["default port 443", "write host: europe-docker.pkg.dev (as in your image references)"]),
        ("reg.example.com:70000", "port-range", ["port 70000 is out of range"]),
        ("reg_example.com", "invalid", ["is not a valid host[:port]"]),
    ],
)
def test_host_mistakes_name_the_fix(profile_dir: Path, host: str, kind: str, expected: list[str]) -> None:
    text = messages(gar_profile(profile_dir, host=host))
    for fragment in expected:
        assert fragment in text
    assert f"node.yaml:8:11: error: [registry-host-{kind}] registries[0].host:" in text


def test_each_host_mistake_has_its_code() -> None:
    from generator.core.hosts import HOST_MISTAKES
    from generator.messages import inputs

    assert tuple(inputs.REGISTRY_HOST) == HOST_MISTAKES
    assert all(m.code == f"registry-host-{kind}" for kind, m in inputs.REGISTRY_HOST.items())


def test_all_errors_at_once_with_positions_and_did_you_mean(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        """
        version: 1
        targets:
          containerd:
            version: 1.7
            restrat: never
        secrets:
          gar-key: {source: file, path: ../../etc/passwd}
        registries:
          - host: "*.pkg.dev"
            auth: {type: gcp-servce-account, secret: gar-kye}
        """,
    )
    _, problems = check_profile(path)
    text = "\n".join(p.render() for p in problems)
    assert len(problems) == 6, text
    assert "node.yaml:4:14: error: [containerd-version-number] targets.containerd.version: version 1.7 was read as a number" in text
    assert 'quote it: version: "1.7"' in text
    assert "node.yaml:5:5: error: [unknown-key] targets.containerd.restrat: unknown key 'restrat'\n  fix: did you mean 'restart'?" in text
    assert "leaves the profile's folder" in text
    assert "did you mean 'gcp-service-account'?" in text
    assert "no secret named 'gar-kye'\n  fix: did you mean 'gar-key'?" in text
    # Sorted by position, so users read them top to bottom.
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "version: 1\nregistries: [\n  - host: x\n")
    text = messages(path)
    assert "node.yaml:3:" in text and "not valid YAML" in text


def test_duplicate_keys_and_registries(profile_dir: Path) -> None:
    path = write_profile(
        profile_dir,
        """
        version: 1
        targets: {containerd: {version: "1.7"}}
        secrets:
          k: {source: file, path: key.json}
          k: {source: env, var: X}
        registries:
          - {host: a.example.com, auth: {type: basic, username: u, secret: k}}
          - {host: a.example.com, auth: {type: basic, username: u, secret: k}}
        """,
    )
    text = messages(path)
    assert "duplicate key 'k' (first defined on line 4)" in text
    assert "registry 'a.example.com' is listed twice (first at registries[0])" in text


def test_oauth2accesstoken_rejected(profile_dir: Path) -> None:
    text = messages(gar_profile(profile_dir, username="oauth2accesstoken"))
    assert "about 1 hour" in text and "_json_key_base64" in text


def test_load_profile_raises_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        load_profile(tmp_path / "missing.yaml")
    assert "no such profile file" in info.value.render()


def test_gsm_secret_forms(tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        """
        version: 1
        targets: {containerd: {version: "2.1"}}
        secrets:
          a: {source: gcp-secret-manager, name: projects/my-proj/secrets/gar/versions/3}
          b: {source: gcp-secret-manager, project: my-proj, secret: gar, version: 4, fetch: boot}
          c: {source: gcp-secret-manager, name: projects/x/secrets/gar}
        registries:
          - {host: europe-docker.pkg.dev, auth: {type: gcp-service-account, secret: a}}
          - {host: us-docker.pkg.dev, auth: {type: gcp-service-account, secret: b}}
        """,
    )
    profile, problems = check_profile(path)
    text = "\n".join(p.render() for p in problems)
    assert "'projects/x/secrets/gar' is not a secret version resource name" in text


def test_schema_accepts_examples_and_matches_committed_copy() -> None:
    schema = profile_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    import yaml

    for path in sorted((ROOT / "profiles").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
        assert path.read_text().startswith("# yaml-language-server: $schema=../schema/profile-v1.json")
    committed = json.loads((ROOT / "schema" / "profile-v1.json").read_text())
    assert committed == schema, "run: regauth schema > schema/profile-v1.json"


def test_schema_rejects_what_the_loader_rejects() -> None:
    bad = {"version": 1, "targets": {"containerd": {"version": "1.7"}}, "registries": [{"host": "*.pkg.dev", "auth": {"type": "basic", "secret": "x"}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, profile_schema())


def test_each_secret_source_parses_its_own_block(tmp_path: Path) -> None:
    """Profile loading asks the source (generator.secrets.sources.SOURCES) for the keys of
    its secrets: block and to parse it: a source passed in is all it takes (issue 18)."""
    from generator.profile import load
    from generator.profile.model import SecretSpec
    from generator.secrets.sources import SOURCES
    from generator.targets import TARGETS

    assert set(SOURCES) == {"file", "env", "gcp-secret-manager"} and all("source" in s.keys for s in SOURCES.values())
    seen = []

    class Vault:
        keys = ("source", "mount")

        def parse(self, c, block, p, name, profile_path):  # type: ignore[no-untyped-def]
            seen.append((name, block["mount"], p))
            return SecretSpec(name=name, source="vault", at=c.at(p))

    path = write_profile(tmp_path, """
        version: 1
        targets: {containerd: {version: "1.7"}}
        secrets:
          k: {source: vault, mount: kv/regauth, path: nope}
        registries:
          - {host: reg.example.com, auth: {type: basic, secret: k, username: u}}
        """)
    _, problems = load.check_profile(path, TARGETS, {**SOURCES, "vault": Vault()})
    assert seen == [("k", "kv/regauth", ("secrets", "k"))]
    assert [p.code for p in problems] == ["unknown-key"] and "path" in problems[0].render()
    _, problems = load.check_profile(path, TARGETS, SOURCES)
    assert "vault" in problems[0].render() and "gcp-secret-manager" in problems[0].render()
