"""Issue 16, rotation: the refresh units as a VM gets them, checked by its own systemd.

Real cloud-init applies regauth's user-data for a ``refresh: 2h`` profile in the
sandbox; the VM's ``systemd-analyze verify`` then accepts regauth-refresh.service and
.timer (it refuses a unit whose ExecStart is missing, so the delivered regauth-apply
is checked too), and the runcmd left the timer enabled.

Run alone:  python3 -m pytest -m system tests/system/test_refresh_units.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli, write_profile
from tests.support.rootfs import ensure_rootfs
from tests.support.sandbox import run_cloud_init

pytestmark = pytest.mark.system


def test_refresh_units_pass_systemd_analyze_verify_on_the_vm(profile_dir: Path) -> None:
    rootfs = ensure_rootfs()
    path = write_profile(profile_dir, """
        version: 1
        refresh: 2h
        targets: {containerd: {version: "1.7"}}
        secrets: {k: {source: file, path: key.json}}
        registries: [{host: europe-docker.pkg.dev, auth: {type: gcp-service-account, secret: k}}]
        """)
    result = run_cli("render", str(path), "-o", str(profile_dir / "out"))
    assert result.code == 0, result.err
    user_data = (profile_dir / "out" / "node" / "user-data").read_bytes()
    with run_cloud_init(user_data, keep_running=True, rootfs=rootfs) as run:
        assert run.problems() == []
        sb = run.sandbox
        units = ["/etc/systemd/system/regauth-refresh.service", "/etc/systemd/system/regauth-refresh.timer"]
        verify = sb.run(["systemd-analyze", "verify", *units])
        assert verify.returncode == 0, verify.stderr
        enabled = sb.run(["systemctl", "is-enabled", "regauth-refresh.timer"])
        assert enabled.stdout.strip() == "enabled", (enabled.stdout, enabled.stderr)
        broken = sb.run(["sh", "-c", "sed 's/^OnUnitActiveSec=2h/OnUnitActiveSec=often/' /etc/systemd/system/regauth-refresh.timer > /tmp/x.timer && systemd-analyze verify /tmp/x.timer"])
        assert "often" in broken.stderr  # the check can fail: a bad span is reported
