"""Issue 3: a real containerd pulls from a GAR-like token registry with ONLY regauth's output.

Why: rendering the right text is not the goal; a node that pulls is.  Each test
writes a profile, runs ``regauth render``, runs the rendered ``regauth-apply``
on a stock ``containerd config default`` file (made test-local by
prepare_test_config, registry settings untouched), then starts the real
containerd of every supported series on that file and pulls through CRI.
The hand-written equivalents, and the failures seen in the wild, are proven
in test_containerd_harness.py.

Run alone:  python3 -m pytest -m system tests/system/test_pull.py
"""

# ruff: noqa: F811 - pytest fixtures are imported, then named as parameters
from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.containerd import (  # noqa: F401 - fixtures
    REPO,
    Containerd,
    Sandbox,
    clean_env,
    config_dump,
    containerd_binary,
    ctd_dir,
    default_config,
    dumped_auth,
    missing,
    prepare_test_config,
    running_containerd,
    without_registry,
)
from tests.support.cri import PullError
from tests.support.registry import RegistryEnv, TokenRequest, registry_env, token_log  # noqa: F401 - fixtures

pytestmark = pytest.mark.system

PROFILE_NAME = "node"


def require_generator() -> None:
    """test_pull is written against the generator contract; say so if it is absent."""
    if not (REPO / "generator" / "cli.py").is_file():
        missing("generator/cli.py not there yet: regauth render/validate are pending")


def regauth_env() -> dict[str, str]:
    # The generator is run from the repo; metadata lookups (if any) go nowhere.
    return clean_env(PYTHONPATH=str(REPO), NO_GCE_CHECK="true", GCE_METADATA_HOST="127.0.0.1:9",
                     GCE_METADATA_IP="127.0.0.1:9")  # fmt: skip


def run(sandbox: Sandbox, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a regauth command inside the sandbox (loopback only: nothing can reach Google)."""
    proc = subprocess.run(sandbox.command(argv), capture_output=True, text=True, env=regauth_env(), timeout=120,
                          stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_profile(folder: Path, target_version: str, host: str, key_file: bytes, username: str | None) -> Path:
    """A regauth profile (contract in the issue); JSON strings are valid YAML scalars."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "key.json"
    key.write_bytes(key_file)
    key.chmod(0o600)
    auth = {"type": "gcp-service-account", "secret": "gar-key"}
    if username is not None:
        auth["username"] = username
    profile = folder / f"{PROFILE_NAME}.yaml"
    profile.write_text(
        "version: 1\n"
        f"targets:\n  containerd:\n    version: {json.dumps(target_version)}\n"
        "secrets:\n  gar-key: {source: file, path: key.json}\n"
        f"registries:\n  - host: {json.dumps(host)}\n    auth: {json.dumps(auth)}\n"
    )
    return profile


def render_and_apply(env: RegistryEnv, binary: Containerd, workdir: Path, host: str, key_file: bytes,
                     username: str | None) -> tuple[Path, str]:  # fmt: skip
    """Stock config -> regauth render -> regauth-apply; returns (config path, regauth output)."""
    require_generator()
    profile = write_profile(workdir / "profile", binary.minor_series, host, key_file, username)
    out = workdir / "out"
    python = sys.executable
    rendered = run(env.sandbox, [python, "-m", "generator", "render", str(profile), "-o", str(out)])
    rootfs = out / PROFILE_NAME / "rootfs"
    apply, plan = rootfs / "usr/local/sbin/regauth-apply", rootfs / "etc/regauth/plan.json"
    assert apply.is_file() and plan.is_file(), f"render did not write {apply} and {plan}"
    config = workdir / "root/etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(prepare_test_config(default_config(binary), workdir))
    applied = run(env.sandbox, [python, str(apply), "--root", str(workdir / "root"), "--plan", str(plan),
                                "--no-restart"])  # fmt: skip
    return config, rendered.stdout + rendered.stderr + applied.stdout + applied.stderr


@dataclass(frozen=True)
class Case:
    name: str
    username: str | None  # None: leave it to the profile default (_json_key_base64)
    with_port: bool = True
    wrong_key: bool = False
    expect: str = "ok"  # "ok" or "oauth401"


CASES = [
    Case("json_key_base64_default", None),
    Case("json_key", "_json_key"),
    Case("portless_host", None, with_port=False),
    Case("wrong_key", None, wrong_key=True, expect="oauth401"),
]


def expected_password(username: str, key_file: bytes) -> str:
    return base64.b64encode(key_file).decode() if username == "_json_key_base64" else key_file.decode()


def assert_no_secret(env: RegistryEnv, text: str, where: str) -> None:
    leaked = [s[:20] + "..." for s in env.secret_texts() if s in text]
    assert not leaked, f"secret material in {where}: {leaked}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_pull_with_rendered_config(
    case: Case,
    containerd_binary: Containerd,
    registry_env: RegistryEnv,
    token_log: list[TokenRequest],
    ctd_dir: Path,
) -> None:
    env, binary = registry_env, containerd_binary
    host = env.host(case.with_port)
    key_file = env.wrong_key_file if case.wrong_key else env.key_file
    config, regauth_output = render_and_apply(env, binary, ctd_dir, host, key_file, case.username)
    assert_no_secret(env, regauth_output, "regauth render/apply output")

    # What containerd will really use: the exact host key, the password byte for byte,
    # and every non-registry setting of the stock file unchanged.
    username = case.username or "_json_key_base64"
    stock = ctd_dir / "stock.toml"
    stock.write_text(prepare_test_config(default_config(binary), ctd_dir))
    dump = config_dump(binary, config)
    auth = dumped_auth(binary, dump, host)
    assert auth is not None, f"no auth under the exact host {host!r} in containerd's view of the config"
    assert auth.get("username") == username, auth.get("username")
    # Compared without printing: a failure message must not carry the (test) secret.
    assert auth.get("password") == expected_password(username, key_file), "password differs from the key, byte for byte"
    assert without_registry(binary, dump) == without_registry(binary, config_dump(binary, stock))

    token_log.clear()
    with running_containerd(binary, config, ctd_dir, env.sandbox, ca_file=env.ca_file) as ctd:
        try:
            result: str | PullError = ctd.pull(env.image_ref(case.with_port))
        except PullError as err:
            result = err
    if case.expect == "ok":
        assert result == env.image.config_digest, result
        assert token_log and all(
            (r.method, r.grant_type, r.username, r.status) == ("POST", "password", username, 200) for r in token_log
        ), token_log
    else:
        assert isinstance(result, PullError), f"pull with the wrong key succeeded: {result}"
        assert "failed to fetch oauth token" in result.details and "401" in result.details, result.details
        assert [(r.method, r.username, r.status) for r in token_log[:2]] == [
            ("POST", username, 401), ("GET", username, 401)], token_log  # fmt: skip
    assert_no_secret(env, ctd.log_text(), "containerd's log")


def test_stock_config_without_regauth_pulls_anonymously(
    containerd_binary: Containerd, registry_env: RegistryEnv, token_log: list[TokenRequest], ctd_dir: Path
) -> None:
    """The baseline regauth fixes: without our block the pull goes anonymous and fails."""
    config = ctd_dir / "config.toml"
    config.write_text(prepare_test_config(default_config(containerd_binary), ctd_dir))
    with (
        running_containerd(containerd_binary, config, ctd_dir, registry_env.sandbox, ca_file=registry_env.ca_file) as ctd,
        pytest.raises(PullError) as err,
    ):
        ctd.pull(registry_env.image_ref())
    assert "failed to fetch anonymous token" in err.value.details and "401" in err.value.details, err.value.details
    assert token_log and all((r.method, r.username, r.status) == ("GET", "", 401) for r in token_log), token_log


def _validate(env: RegistryEnv, folder: Path, host: str, key_file: bytes) -> subprocess.CompletedProcess[str]:
    require_generator()
    profile = write_profile(folder, "1.7", host, key_file, None)
    return run(env.sandbox, [sys.executable, "-m", "generator", "validate", str(profile)],
               check=False)  # fmt: skip


def test_validate_rejects_wildcard_host(registry_env: RegistryEnv, tmp_path: Path) -> None:
    """Origin mistake 1 as a profile: exit 2, naming the host and the exact-host fix."""
    proc = _validate(registry_env, tmp_path, "*.test", registry_env.key_file)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "*.test" in out and "exact host" in out and "fix:" in out, out


def test_validate_rejects_scheme_and_names_exact_host(registry_env: RegistryEnv, tmp_path: Path) -> None:
    """A scheme in the host never matches either; the fix names the exact host:port to write."""
    proc = _validate(registry_env, tmp_path, f"https://{registry_env.host()}", registry_env.key_file)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert f"host: {registry_env.host()}" in out, out


def test_validate_rejects_key_with_mangled_newlines(registry_env: RegistryEnv, tmp_path: Path) -> None:
    """Origin mistake 2 as a profile: a key whose \\n escapes became real newlines."""
    mangled = registry_env.key_file.decode().replace("\\n", "\n").encode()
    proc = _validate(registry_env, tmp_path, registry_env.host(), mangled)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "not valid JSON" in out and "newline" in out, out
    assert_no_secret(registry_env, out, "regauth validate output")
