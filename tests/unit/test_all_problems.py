"""All problems at once (issue 17, item 3): a key error is reported in the same run
as the profile's other errors, and validate lists the problems of every bad profile."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, write_profile
from tests.support.keys import key_file_bytes, service_account_key

MANGLED = "literal backslash-n"


def _mangled_key(folder: Path, name: str = "key.json") -> None:
    key = service_account_key()
    bad = {**key, "private_key": key["private_key"].replace("\n", "\\n")}
    (folder / name).write_bytes(key_file_bytes(bad))
    (folder / name).chmod(0o600)


def _profile(folder: Path, name: str, host: str = "europe-docker.pkg.dev", extra: str = "") -> Path:
    return write_profile(
        folder,
        f"""
        version: 1
        targets:
          containerd: {{version: "1.7"}}
        secrets:
          gar-key: {{source: file, path: key.json}}
        registries:
          - host: "{host}"
            auth: {{type: gcp-service-account, secret: gar-key}}
        {extra}
        """,
        name,
    )


def test_wildcard_host_and_mangled_key_in_one_run(tmp_path: Path) -> None:
    _mangled_key(tmp_path)
    path = _profile(tmp_path, "wild", host="*.pkg.dev")
    for args in (["validate", str(path)], ["render", str(path), "-o", str(tmp_path / "out")]):
        r = run_cli(*args)
        assert r.code == 2, r.err
        assert "is a wildcard" in r.err and MANGLED in r.err, (args, r.err)
        assert f"{path}:8:" in r.err  # the key problem points at the registry's auth
    assert not (tmp_path / "out").exists()


def test_validate_json_lists_every_problem_of_every_profile(tmp_path: Path) -> None:
    _mangled_key(tmp_path)
    paths = [
        _profile(tmp_path, "wildcard", host="*.pkg.dev"),
        _profile(tmp_path, "scheme", host="https://europe-docker.pkg.dev"),
        _profile(tmp_path, "unknown-key", extra="colour: blue"),
        _profile(tmp_path, "fine-but-for-the-key"),
    ]
    r = run_cli("validate", "--json", *map(str, paths))
    assert r.code == 2, r.err
    problems = json.loads(r.out)["problems"]
    for path in paths:
        mine = [p["message"] for p in problems if p["file"] == str(path)]
        assert any(MANGLED in m for m in mine), (path.name, mine)
        assert len(mine) == (1 if path.stem == "fine-but-for-the-key" else 2), (path.name, mine)


def test_render_of_a_fleet_reports_the_keys_of_the_good_profiles_too(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    _mangled_key(tmp_path / "good")
    bad = _profile(tmp_path, "bad", host="*.pkg.dev")
    good = _profile(tmp_path / "good", "good")
    key = tmp_path / "key.json"
    key.write_bytes(key_file_bytes(service_account_key()))
    key.chmod(0o600)
    r = run_cli("render", str(bad), str(good), "-o", str(tmp_path / "out"))
    assert r.code == 2
    assert "is a wildcard" in r.err and f"{good}:8:" in r.err and MANGLED in r.err, r.err


def test_misspelled_auth_type_and_mangled_key_in_one_run(tmp_path: Path) -> None:
    _mangled_key(tmp_path)
    path = _profile(tmp_path, "typo")
    path.write_text(path.read_text().replace("type: gcp-service-account", "type: gcp-servce-account"))
    r = run_cli("validate", str(path))
    assert r.code == 2
    assert "did you mean 'gcp-service-account'?" in r.err and MANGLED in r.err, r.err
