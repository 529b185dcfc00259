# ruff: noqa: F811  (pytest fixtures imported by name, then requested as arguments)
"""Issue 2's proof: real containerd (1.6, 1.7, 2.x) loads what the rendered apply step writes.

For each version: render a profile, run the rendered ``regauth-apply`` against
(a) no config, (b) that binary's own ``containerd config default`` and (c) Debian 12's
shipped config, then ``containerd config dump`` the result (containerd's own parser)
and check the password under the exact host key byte for byte, that every other
setting survived, and that a second apply is byte-identical.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import gar_profile, run_cli
from tests.support.containerd import Containerd, config_dump, containerd_binary, default_config, dumped_auth, without_registry  # noqa: F401
from tests.support.keys import key_file_bytes

pytestmark = pytest.mark.system
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "containerd"
HOST = "europe-docker.pkg.dev"


def render(folder: Path, version: str, username: str) -> Path:
    profile = gar_profile(folder, version=version, username=username)
    result = run_cli("render", str(profile), "-o", str(folder / "out"))
    assert result.code == 0, result.err
    return folder / "out" / "node" / "rootfs"


def apply(rootfs: Path, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(root), "--plan", str(rootfs / "etc/regauth/plan.json"), "--no-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("stock", ["none", "default", "debian12"])
@pytest.mark.parametrize("username", ["_json_key_base64", "_json_key"])
def test_apply_result_loads_in_real_containerd(containerd_binary: Containerd, stock: str, username: str, profile_dir: Path, sa_key: dict) -> None:
    rootfs = render(profile_dir, containerd_binary.minor_series, username)
    root = profile_dir / "node"
    config = root / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    before = None
    if stock != "none":
        config.write_text(default_config(containerd_binary) if stock == "default" else (FIXTURES / "debian12-1.6.20-shipped.toml").read_text())
        before = config_dump(containerd_binary, config)

    first = apply(rootfs, root)
    assert first.returncode == 0, first.stderr
    result = config.read_bytes()
    dump = config_dump(containerd_binary, config)

    import base64

    key = key_file_bytes(sa_key)
    want = base64.b64encode(key).decode() if username == "_json_key_base64" else key.decode()
    # Keyed by containerd's own plugin for this binary: for 2.x reading Debian's
    # version-2 file that proves the v2 table we wrote is migrated, not ignored.
    assert dumped_auth(containerd_binary, dump, HOST) == {"username": username, "password": want, **_empty_auth_fields(dumped_auth(containerd_binary, dump, HOST))}
    if before is not None:
        assert without_registry(containerd_binary, dump) == without_registry(containerd_binary, before)

    second = apply(rootfs, root)
    assert second.returncode == 0 and "already up to date" in second.stderr
    assert config.read_bytes() == result
    assert want not in first.stderr + second.stderr


def _empty_auth_fields(auth: dict | None) -> dict:
    """containerd's dump adds the unset auth fields (auth, identitytoken) as empty strings."""
    return {k: v for k, v in (auth or {}).items() if k not in ("username", "password") and v == ""}


def test_v2_table_in_version_3_file_is_ignored_by_2x(profile_dir: Path) -> None:
    """The trap regauth avoids: containerd 2.x silently drops a v2 table in a v3 file."""
    from tests.support.containerd import require_binary

    binary = require_binary("2")
    config = profile_dir / "config.toml"
    config.write_text(f'version = 3\n[plugins."io.containerd.grpc.v1.cri".registry.configs."{HOST}".auth]\nusername = "_json_key"\npassword = "x"\n')
    assert dumped_auth(binary, config_dump(binary, config), HOST) is None
