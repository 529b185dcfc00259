"""A key pasted where a name belongs is never printed back (issue 17, item 1).

Every field a user might paste a key into, every form the key comes in (the JSON
file, one-line JSON, the PEM block, the base64 of the file), every command that
reports on a profile: no 8-character chunk of the generated private key (or of the
pasted base64) appears in stdout or stderr, and each profile's problem says what to
do instead.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from generator.cli import main
from generator.core.keylike import KEY_HINT, looks_like_key, redact
from tests.conftest import run_cli
from tests.support.keys import key_file_bytes, service_account_key

ENV = {"REGAUTH_TEST_ROBOT_PW": "hunter2-robot"}


def base() -> dict:
    return {
        "version": 1,
        "targets": {"containerd": {"version": "1.7"}},
        "secrets": {"gar-key": {"source": "file", "path": "key.json"}, "robot": {"source": "env", "var": "REGAUTH_TEST_ROBOT_PW"}},
        "registries": [
            {"host": "europe-docker.pkg.dev", "auth": {"type": "gcp-service-account", "secret": "gar-key"}},
            {"host": "registry.example.com", "auth": {"type": "basic", "username": "robot", "secret": "robot"}},
        ],
    }


def _auth(doc: dict, i: int = 0) -> dict:
    return doc["registries"][i]["auth"]


# field name -> how to put the pasted value P into a valid profile
FIELDS = {
    "auth.secret": lambda d, p: _auth(d).update(secret=p),
    "secrets.path": lambda d, p: d["secrets"]["gar-key"].update(path=p),
    "host": lambda d, p: d["registries"][0].update(host=p),
    "username (service account)": lambda d, p: _auth(d).update(username=p),
    "username (basic)": lambda d, p: _auth(d, 1).update(username=p),
    "source": lambda d, p: d["secrets"]["gar-key"].update(source=p),
    "var": lambda d, p: d["secrets"]["robot"].update(var=p),
    "version (profile)": lambda d, p: d.update(version=p),
    "version (containerd)": lambda d, p: d["targets"]["containerd"].update(version=p),
    "version (secret manager)": lambda d, p: d["secrets"].update(
        {"gar-key": {"source": "gcp-secret-manager", "project": "my-project-123", "secret": "gar", "version": p, "fetch": "boot"}}
    ),
    "registries.path": lambda d, p: d["registries"][1].update(mirror_for="registry-1.docker.io", path=p),
}


@pytest.fixture(scope="module")
def pasted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], set[str]]:
    """One profile per (field, form), next to a real key.json; and the chunks that must not leak."""
    key = service_account_key("pasted@regauth-test.iam.gserviceaccount.com")
    key_bytes = key_file_bytes(key)
    forms = {
        "json": key_bytes.decode(),
        "one-line-json": json.dumps(key),
        "pem": key["private_key"],
        "base64": base64.b64encode(key_bytes).decode(),
    }
    folder = tmp_path_factory.mktemp("pasted")
    (folder / "key.json").write_bytes(key_bytes)
    (folder / "key.json").chmod(0o600)
    paths = []
    for f_i, (field, put) in enumerate(FIELDS.items()):
        for form, value in forms.items():
            doc = base()
            put(doc, value)
            path = folder / f"f{f_i:02d}-{form}.yaml"
            path.write_text(f"# {field}\n" + yaml.safe_dump(doc, sort_keys=False, width=10_000))
            paths.append(path)
    body = "".join(key["private_key"].splitlines()[1:-1])
    chunks = {body[i : i + 8] for i in range(len(body) - 7)}
    b64 = forms["base64"]
    chunks |= {b64[i : i + 12] for i in range(0, len(b64) - 11)}
    return folder, paths, chunks


def _leaked(text: str, chunks: set[str]) -> list[str]:
    return sorted(c for c in chunks if c in text)[:3]


def test_validate_json_names_every_field_without_the_key(pasted: tuple[Path, list[Path], set[str]]) -> None:
    folder, paths, chunks = pasted
    r = run_cli("validate", "--json", *map(str, paths), env=ENV)
    assert r.code == 2, r.err
    assert not _leaked(r.out + r.err, chunks)
    report = json.loads(r.out)
    for path in paths:
        mine = [p for p in report["problems"] if p["file"] == str(path)]
        field = path.read_text().splitlines()[0]
        assert any(KEY_HINT in p["message"] for p in mine), f"{path.name} ({field}): {mine}"
        assert all(p["line"] for p in mine), mine  # still located


@pytest.mark.parametrize("command", [["validate"], ["render", "--dry-run"], ["render"]])
def test_commands_never_print_the_key(pasted: tuple[Path, list[Path], set[str]], command: list[str]) -> None:
    folder, paths, chunks = pasted
    extra = ["-o", str(folder / "out")] if command[0] == "render" else []
    r = run_cli(*command, *map(str, paths), *extra, env=ENV)
    assert r.code == 2, r.err
    assert not _leaked(r.out + r.err, chunks)
    assert r.err.count(KEY_HINT) >= len(FIELDS), r.err[-2000:]
    assert not (folder / "out").exists()


def test_verify_never_prints_the_key(pasted: tuple[Path, list[Path], set[str]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, paths, chunks = pasted
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for path in paths:
        for args in (["verify", str(path)], ["verify", str(path), "--json"]):
            assert main(args) == 2
            captured = capsys.readouterr()
            assert not _leaked(captured.out + captured.err, chunks), (path.name, args)
            assert KEY_HINT in captured.out + captured.err, (path.name, captured.err)


def test_names_and_paths_are_not_mistaken_for_keys() -> None:
    for text in (
        "projects/regauth-test-493021/secrets/registry-password/versions/12",
        "us-central1-docker.pkg.dev/my-project/my-repo/my-image:1.2.3",
        "/etc/containerd/certs.d/europe-docker.pkg.dev/hosts.toml",
        "REGAUTH_EXAMPLE_PASSWORD_FOR_PRIVATE_CA_2",
        "write source.googlecompute.golden (a literal: Packer 1.6 accepts no variables in sources)",
        'the key\'s "type" is missing, not "service_account"',
        "private_key is not a PEM block (missing BEGIN or END line: truncated?)",
    ):
        assert redact(text) == (text, False), text
        assert not looks_like_key(text)


def test_fragments_of_a_key_are_recognised() -> None:
    key = service_account_key("pasted@regauth-test.iam.gserviceaccount.com")
    pem = key["private_key"]
    body_line = pem.splitlines()[5]
    for text in (pem, pem.lower(), pem.split("\n", 3)[3], json.dumps(key)[40:], body_line, base64.b64encode(json.dumps(key).encode()).decode()):
        shown, found = redact(f"'{text}' is not a host")
        assert found and body_line[:8] not in shown and shown.endswith("' is not a host"), shown[:200]
