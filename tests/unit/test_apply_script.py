"""regauth-apply, the script that runs on the node, exercised as the node runs it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from generator.tomlcompat import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import applyscript
from tests.support.nodepython import interpreter, on_every_node_python

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "containerd"
apply = applyscript.module()
V2 = ("plugins", "io.containerd.grpc.v1.cri", "registry", "configs")
V3 = ("plugins", "io.containerd.cri.v1.images", "registry", "configs")

CRED = {"host": "europe-docker.pkg.dev", "username": "_json_key", "password": '{"k": "a\\nb\n\'\'\' """ ${X} %{y} \\u0000"}'}


def dig(tree: dict, path: tuple) -> object:
    for key in path:
        tree = tree[key]
    return tree


def write_plan(tmp: Path, creds: list[dict], *, version: str = "1.7", path: str = "/etc/containerd/config.toml") -> Path:
    plan = {"format": 1, "profile": "t", "steps": [{"kind": "containerd", "path": path, "containerd_version": version, "unit": "containerd", "restart": "if-running", "registries": creds}]}
    p = tmp / "plan.json"
    p.write_text(json.dumps(plan))
    return p


def run_apply(root: Path, plan: Path) -> subprocess.CompletedProcess:
    script = root.parent / "regauth-apply"  # the file a node gets for this plan
    script.write_bytes(applyscript.script_for_plan(json.loads(plan.read_text())["steps"]))
    return subprocess.run([str(interpreter()), str(script), "--root", str(root), "--plan", str(plan), "--no-restart"], capture_output=True, text=True)


@on_every_node_python
@pytest.mark.parametrize("fixture", ["debian12-1.6.20-shipped.toml", "1.6.20-default.toml", None])
def test_merge_keeps_everything_and_is_idempotent(tmp_path: Path, fixture: str | None) -> None:
    root = tmp_path / "root"
    config = root / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    original = (FIXTURES / fixture).read_text() if fixture else None
    if original is not None:
        config.write_text(original)
    plan = write_plan(tmp_path, [CRED])
    first = run_apply(root, plan)
    assert first.returncode == 0, first.stderr
    assert "updated (europe-docker.pkg.dev)" in first.stderr
    result = config.read_bytes()
    parsed = tomllib.loads(result.decode())
    assert dig(parsed, V2 + ("europe-docker.pkg.dev", "auth")) == {"username": "_json_key", "password": CRED["password"]}
    if original is not None:
        before = tomllib.loads(original)
        del dig(parsed, V2 + ("europe-docker.pkg.dev",))["auth"]
        assert apply._prune(parsed) == apply._prune(before)
        assert (config.parent / "config.toml.regauth.orig").read_text() == original
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    second = run_apply(root, plan)
    assert second.returncode == 0 and "already up to date" in second.stderr
    assert config.read_bytes() == result
    assert CRED["password"] not in first.stderr + second.stderr + first.stdout


def test_table_follows_the_files_own_version(tmp_path: Path) -> None:
    for version, prefix, release in ((2, V2, "1.7"), (2, V2, "2.1"), (3, V3, "2.1")):  # a version-3 file on 1.x is refused
        text = apply.containerd_merge(f"version = {version}\n", {"containerd_version": release}, [CRED])
        assert dig(tomllib.loads(text), prefix + ("europe-docker.pkg.dev", "auth"))["username"] == "_json_key"
    legacy = apply.containerd_merge("[plugins.cri]\n  sandbox_image = \"x\"\n", {"containerd_version": "1.7"}, [CRED])
    assert dig(tomllib.loads(legacy), ("plugins", "cri", "registry", "configs", "europe-docker.pkg.dev", "auth"))
    fresh = apply.containerd_merge(None, {"containerd_version": "2.1"}, [CRED])
    assert fresh.startswith("version = 3\n")


def test_existing_auth_for_the_host_is_replaced_and_others_kept() -> None:
    existing = (
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.configs."europe-docker.pkg.dev".auth]\n'
        'username = "_json_key"\npassword = "broken"\n'
        '[plugins."io.containerd.grpc.v1.cri".registry.configs."europe-docker.pkg.dev".tls]\ninsecure_skip_verify = false\n'
        '[plugins."io.containerd.grpc.v1.cri".registry.configs."other.example".auth]\nusername = "u"\npassword = "p"\n'
    )
    text = apply.containerd_merge(existing, {"containerd_version": "1.7"}, [CRED])
    apply.containerd_verify(existing, text, [CRED])
    parsed = tomllib.loads(text)
    configs = dig(parsed, V2)
    assert configs["europe-docker.pkg.dev"]["auth"]["password"] == CRED["password"]
    assert configs["europe-docker.pkg.dev"]["tls"] == {"insecure_skip_verify": False}
    assert configs["other.example"]["auth"] == {"username": "u", "password": "p"}


def test_brackets_inside_strings_and_arrays_are_not_headers() -> None:
    tricky = 'version = 2\nx = """\n[not.a.header]\n"""\ny = [\n  [1, 2],\n]\nz = \'[nope]\'\n[real."a.b"]\nq = 1\n'
    headers = [p for _, p in apply.table_headers(tricky)]
    assert headers == [("real", "a.b")]


@on_every_node_python
def test_unmergeable_config_fails_and_is_left_untouched(tmp_path: Path) -> None:
    root = tmp_path / "root"
    config = root / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    # Someone added a setting inside regauth's block: rewriting the block would drop it.
    weird = ('version = 2\n' + apply.BEGIN + '\n[plugins."io.containerd.grpc.v1.cri".registry.configs."europe-docker.pkg.dev".auth]\n'
             'username = "x"\npassword = "y"\n[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "mine"\n' + apply.END + '\n')
    config.write_text(weird)
    result = run_apply(root, write_plan(tmp_path, [CRED]))
    assert result.returncode == 1
    assert "FAILED" in result.stderr and "left unchanged" in result.stderr
    assert "/etc/containerd/config.toml:6: this line is inside regauth's managed block" in result.stderr
    assert config.read_text() == weird
    assert not (config.parent / "config.toml.regauth.orig").exists()
    assert sorted(os.listdir(config.parent)) == ["config.toml"]


@on_every_node_python
def test_bad_plan_exits_2(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"format": 99, "steps": []}')
    assert run_apply(tmp_path, plan).returncode == 2


text_st = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=300, deadline=None)
@given(text_st)
def test_toml_string_round_trips(value: str) -> None:
    assert tomllib.loads("v = " + apply.toml_string(value))["v"] == value


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40), text_st, text_st)
def test_merge_round_trips_any_host_user_password(host: str, user: str, password: str) -> None:
    cred = {"host": host, "username": user, "password": password}
    existing = (FIXTURES / "1.6.20-default.toml").read_text()
    step = {"containerd_version": "1.7"}
    if apply.header_key(host, False) is None:
        # containerd 1.x keeps escapes in [table] header keys as written, and a literal key
        # cannot hold a ' or control character: no header 1.x reads as this host.
        with pytest.raises(apply.ApplyError, match=r"containerd 1\.x reads back"):
            apply.containerd_merge(existing, step, [cred])
        return
    text = apply.containerd_merge(existing, step, [cred])
    apply.containerd_verify(existing, text, [cred], step)
    assert apply.containerd_merge(text, step, [cred]) == text
