"""Shared fixtures: profiles written into tmp dirs, keys generated at test time, CLI runs."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.keys import key_file_bytes, service_account_key
from tests.support.nodepython import node_python  # noqa: F401  (the fixture, for every test module)
import tests.hypothesis_profiles  # noqa: F401,E402  (registers and loads the dev/ci/long profiles)

ROOT = Path(__file__).resolve().parents[1]

# regauth caches compiled templates under $XDG_CACHE_HOME; tests keep that inside a
# temp dir of their own (removed at exit) instead of the user's home.
_CACHE_HOME = tempfile.mkdtemp(prefix="regauth-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE_HOME
atexit.register(shutil.rmtree, _CACHE_HOME, True)

# Belt and braces: no test may let google.auth probe the metadata server.
os.environ.setdefault("NO_GCE_CHECK", "true")
os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:9")
os.environ.setdefault("GCE_METADATA_IP", "127.0.0.1:9")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
    """Run ``python -m generator`` as a user would (separate process, real exit code)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "generator", *args], cwd=cwd or ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def sa_key() -> dict[str, str]:
    return service_account_key()


@pytest.fixture
def profile_dir(tmp_path: Path, sa_key: dict[str, str]) -> Path:
    """A folder holding key.json (0600) ready for profiles that reference it."""
    key = tmp_path / "key.json"
    key.write_bytes(key_file_bytes(sa_key))
    key.chmod(0o600)
    return tmp_path


def write_profile(folder: Path, body: str, name: str = "node") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(body).lstrip("\n"))
    return path


GAR_PROFILE = """
version: 1
targets:
  containerd:
    version: "{version}"
secrets:
  gar-key: {{source: file, path: key.json}}
registries:
  - host: {host}
    auth: {{type: gcp-service-account, secret: gar-key, username: {username}}}
"""


def gar_profile(folder: Path, *, version: str = "1.7", host: str = "europe-docker.pkg.dev", username: str = "_json_key_base64", name: str = "node") -> Path:
    return write_profile(folder, GAR_PROFILE.format(version=version, host=host, username=username), name)
