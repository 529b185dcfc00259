"""Prove the pull harness itself with hand-written containerd configs.

Why: before a test can say "regauth's output makes a node pull", the harness
must show that it reproduces both the working setups and the failures seen in
the wild (FIELD_NOTES sections 1-3), on every containerd series, with the exact
messages containerd prints.  Configs here are written by hand on purpose: they
do not depend on the generator.

Run alone:  python3 -m pytest -m system tests/system/test_containerd_harness.py
"""

# ruff: noqa: F811 - pytest fixtures are imported, then named as parameters
from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.containerd import (  # noqa: F401 - fixtures
    Containerd,
    check_test_local,
    config_dump,
    containerd_binary,
    ctd_dir,
    default_config,
    dumped_auth,
    prepare_test_config,
    running_containerd,
)
from tests.support.cri import PullError
from tests.support.registry import RegistryEnv, TokenRequest, registry_env, token_log  # noqa: F401 - fixtures

pytestmark = pytest.mark.system

OAUTH_401 = ("failed to fetch oauth token", "401")
ANONYMOUS_401 = ("failed to fetch anonymous token", "401")


def toml_basic(text: str) -> str:
    """A correctly escaped TOML basic string (JSON escapes are a subset of TOML's)."""
    return json.dumps(text)


def auth_table(plugin: str, host_key: str, username: str, password_toml: str) -> str:
    return f'\n[plugins."{plugin}".registry.configs."{host_key}".auth]\n  username = {toml_basic(username)}\n  password = {password_toml}\n'


@dataclass(frozen=True)
class Case:
    """One hand-written config and the outcome containerd must produce."""

    name: str
    block: Callable[[Containerd, RegistryEnv], str]  # text appended to the prepared stock config
    expect: str  # "ok", "oauth401" or "anonymous"
    with_port: bool = True  # image on registry.test:PORT (else registry.test, port 443)
    username: str = ""  # what the token server must have seen
    reason: str = ""  # why the token server refused (a substring of its record)


def _b64(env: RegistryEnv) -> str:
    return toml_basic(base64.b64encode(env.key_file).decode())


CASES = [
    Case("json_key_base64", lambda b, e: auth_table(b.images_plugin, e.host(), "_json_key_base64", _b64(e)),
         "ok", username="_json_key_base64"),
    Case("json_key", lambda b, e: auth_table(b.images_plugin, e.host(), "_json_key", toml_basic(e.key_file.decode())),
         "ok", username="_json_key"),
    Case("portless_host", lambda b, e: auth_table(b.images_plugin, e.host(False), "_json_key_base64", _b64(e)),
         "ok", with_port=False, username="_json_key_base64"),
    Case("wrong_key", lambda b, e: auth_table(b.images_plugin, e.host(), "_json_key_base64",
                                              toml_basic(base64.b64encode(e.wrong_key_file).decode())),
         "oauth401", username="_json_key_base64", reason="not the expected service-account key"),
    Case("no_auth_block", lambda b, e: "", "anonymous"),
    # In the wild: credentials keyed by a glob; containerd matches the exact host only.
    Case("wildcard_host", lambda b, e: auth_table(b.images_plugin, "*.test", "_json_key_base64", _b64(e)), "anonymous"),
    # A default port written on the host (what `host: X:443` would produce): the image
    # reference X/... names no port and containerd looks up X, so it never matches.
    Case("default_port_443", lambda b, e: auth_table(b.images_plugin, e.host(False) + ":443", "_json_key_base64", _b64(e)),
         "anonymous", with_port=False),
    # In the wild: the key file pasted into a TOML basic string; its \n escapes become
    # real newlines inside a JSON string, so the registry cannot parse the password.
    Case("key_pasted_in_basic_string",
         lambda b, e: auth_table(b.images_plugin, e.host(), "_json_key", '"""' + e.key_file.decode() + '"""'),
         "oauth401", username="_json_key", reason="not valid JSON"),
    # The other generation's table name (v2 in a 2.x file, v3 in a 1.x file) is silently dropped.
    Case("other_generation_table",
         lambda b, e: auth_table("io.containerd.cri.v1.images" if b.major < 2 else "io.containerd.grpc.v1.cri",
                                 e.host(), "_json_key_base64", _b64(e)),
         "anonymous"),
]  # fmt: skip


def write_config(binary: Containerd, workdir: Path, extra: str) -> Path:
    path = workdir / "config.toml"
    path.write_text(prepare_test_config(default_config(binary), workdir) + extra)
    return path


def assert_token_flow(log: list[TokenRequest], expect: str, username: str) -> None:
    """The requests containerd made match its documented flow for this outcome."""
    assert log, "containerd never asked the token server"
    if expect == "ok":
        assert all((r.method, r.grant_type, r.username, r.status) == ("POST", "password", username, 200) for r in log), log
    elif expect == "oauth401":
        # POST password grant refused with 401 -> containerd retries as GET with Basic.
        assert (log[0].method, log[0].grant_type, log[0].username, log[0].status) == ("POST", "password", username, 401)
        assert (log[1].method, log[1].username, log[1].status) == ("GET", username, 401), log
    else:
        assert all((r.method, r.username, r.status) == ("GET", "", 401) for r in log), log


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hand_written_config(
    case: Case,
    containerd_binary: Containerd,
    registry_env: RegistryEnv,
    token_log: list[TokenRequest],
    ctd_dir: Path,
) -> None:
    config = write_config(containerd_binary, ctd_dir, case.block(containerd_binary, registry_env))
    with running_containerd(containerd_binary, config, ctd_dir, registry_env.sandbox,
                            ca_file=registry_env.ca_file) as ctd:  # fmt: skip
        try:
            result: str | PullError = ctd.pull(registry_env.image_ref(case.with_port))
        except PullError as err:
            result = err
    if case.expect == "ok":
        assert result == registry_env.image.config_digest, result
    else:
        assert isinstance(result, PullError), f"pull unexpectedly succeeded: {result}"
        for text in OAUTH_401 if case.expect == "oauth401" else ANONYMOUS_401:
            assert text in result.details, result.details
    assert_token_flow(token_log, case.expect, case.username)
    assert all(case.reason in r.reason for r in token_log), [r.reason for r in token_log]
    log = ctd.log_text()
    assert "PullImage" in log, "debug log missing: the secret check below would prove nothing"
    leaked = [s[:20] + "..." for s in registry_env.secret_texts() if s in log]
    assert not leaked, f"secret material in containerd's log: {leaked}"


def test_prepared_config_is_test_local_and_keeps_registry(containerd_binary: Containerd, ctd_dir: Path) -> None:
    """prepare_test_config moves host paths into the work dir and nothing else."""
    stock_text = default_config(containerd_binary)
    stock, prepared = ctd_dir / "stock.toml", ctd_dir / "config.toml"
    stock.write_text(stock_text)
    prepared.write_text(prepare_test_config(stock_text, ctd_dir))
    before, after = config_dump(containerd_binary, stock), config_dump(containerd_binary, prepared)
    assert check_test_local(containerd_binary, before, ctd_dir), "stock config already looked test-local"
    assert check_test_local(containerd_binary, after, ctd_dir) == []
    plugin = containerd_binary.images_plugin
    assert after["plugins"][plugin]["registry"] == before["plugins"][plugin]["registry"]
    assert after["version"] == before["version"] == containerd_binary.config_version


def test_dump_shows_mangled_key_and_exact_host(containerd_binary: Containerd, registry_env: RegistryEnv,
                                               ctd_dir: Path) -> None:  # fmt: skip
    """config dump is the check that catches both origin mistakes before any pull."""
    plugin = containerd_binary.images_plugin
    pasted = auth_table(plugin, registry_env.host(), "_json_key", '"""' + registry_env.key_file.decode() + '"""')
    dump = config_dump(containerd_binary, write_config(containerd_binary, ctd_dir, pasted))
    password = dumped_auth(containerd_binary, dump, registry_env.host())["password"]
    assert password != registry_env.key_file.decode()
    with pytest.raises(ValueError):
        json.loads(password)
    wildcard = auth_table(plugin, "*.test", "_json_key_base64", _b64(registry_env))
    dump = config_dump(containerd_binary, write_config(containerd_binary, ctd_dir, wildcard))
    assert dumped_auth(containerd_binary, dump, registry_env.host()) is None
    assert dumped_auth(containerd_binary, dump, "*.test") is not None
