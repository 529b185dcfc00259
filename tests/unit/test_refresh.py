"""Issue 16, rotation: ``refresh: 1h`` -> a systemd timer (with jitter) that re-runs
regauth-apply, which re-fetches boot-time Secret Manager secrets.

Proven here with the rendered program against the fakes: the secret changes in the
fake Secret Manager, one refresh rewrites the config and restarts the running
runtime once (fake systemctl on PATH), the next refresh is a no-op, and a failed
fetch leaves the old credentials in place.  The units are checked by the VM's own
``systemd-analyze verify`` in tests/system/test_refresh_units.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from generator.tomlcompat import tomllib
from pathlib import Path

import yaml

from tests.conftest import run_cli, write_profile
from tests.support.containerd import dropin_config
from tests.support.fake_gsm import UNAVAILABLE, running_fake_gsm
from tests.support.fake_metadata import running_fake_metadata

HOST = "registry.example.com:5000"
V3 = ("plugins", "io.containerd.cri.v1.images", "registry", "configs")


def render(folder: Path, endpoint: str, refresh: str = "1h") -> Path:
    path = write_profile(folder, f"""
        version: 1
        refresh: {refresh}
        targets: {{containerd: {{version: "2.1"}}}}
        secrets:
          pw: {{source: gcp-secret-manager, project: regauth-test, secret: robot-pw, version: latest, fetch: boot, endpoint: '{endpoint}'}}
        registries:
          - {{host: '{HOST}', auth: {{type: basic, username: robot, secret: pw}}}}
        """)
    result = run_cli("render", str(path), "-o", str(folder / "out"))
    assert result.code == 0, result.err
    return folder / "out" / "node"


def fake_systemctl(folder: Path) -> tuple[dict[str, str], Path]:
    """A systemctl that records its argv and says containerd is running (touches nothing)."""
    bin_dir, calls = folder / "fakebin", folder / "calls.log"
    bin_dir.mkdir()
    tool = bin_dir / "systemctl"
    tool.write_text(f'#!/bin/sh\necho "systemctl $*" >> "{calls}"\nexit 0\n')
    tool.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, calls


def refresh(out: Path, root: Path, md_host: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """What regauth-refresh.service runs (ExecStart), pointed at a test root."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("GCE_")}
    full.update(env, GCE_METADATA_HOST=md_host)
    rootfs = out / "rootfs"
    return subprocess.run([sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--refresh", "--root", str(root), "--plan",
                           str(rootfs / "etc/regauth/plan.json"), "--fetch-timeout", "3"], capture_output=True, text=True, env=full, timeout=60)  # fmt: skip


def one_line(run: subprocess.CompletedProcess) -> str:
    """A refresh logs exactly one line per run (stdout stays empty)."""
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and run.stdout == "", run.stderr
    assert lines[0].startswith("regauth-refresh: "), lines
    return lines[0][len("regauth-refresh: "):]


def password(root: Path) -> str:
    doc = dropin_config(root)
    for key in V3:
        doc = doc[key]
    return doc[HOST]["auth"]["password"]


def restarts(calls: Path) -> list[str]:
    return [line for line in (calls.read_text().splitlines() if calls.exists() else []) if "restart" in line]


def test_rotated_secret_reaches_the_node_once_and_failures_keep_the_old(tmp_path: Path) -> None:
    with running_fake_metadata() as md, running_fake_gsm(require_bearer=lambda t: md.state.token_is_valid(t)) as gsm:
        gsm.add_secret("regauth-test", "robot-pw", b"first-password\n")
        out = render(tmp_path, gsm.rest_endpoint)
        root = tmp_path / "root"
        (root / "etc/containerd").mkdir(parents=True)
        (root / "etc/containerd/config.toml").write_text('version = 3\n[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "overlayfs"\n')
        env, calls = fake_systemctl(tmp_path)
        first = refresh(out, root, md.host_port, env)
        assert first.returncode == 0 and password(root) == "first-password" and restarts(calls) == ["systemctl restart containerd"]
        assert one_line(first) == "updated 2 files (/etc/containerd/conf.d/50-regauth.toml, /etc/containerd/config.toml); containerd restarted"

        gsm.add_version("regauth-test", "robot-pw", b"rotated-password\n")  # the key is rotated
        changed = refresh(out, root, md.host_port, env)
        assert changed.returncode == 0 and password(root) == "rotated-password"
        assert one_line(changed) == "updated 1 file (/etc/containerd/conf.d/50-regauth.toml); containerd restarted"
        assert restarts(calls) == ["systemctl restart containerd"] * 2
        same = refresh(out, root, md.host_port, env)
        assert same.returncode == 0 and one_line(same) == "unchanged"
        assert restarts(calls) == ["systemctl restart containerd"] * 2  # no change, no restart

        before = (root / "etc/containerd/config.toml").read_bytes()
        gsm.add_version("regauth-test", "robot-pw", b"never-seen\n")
        gsm.inject("regauth-test", "robot-pw", UNAVAILABLE)  # every fetch fails until the deadline
        failed = refresh(out, root, md.host_port, env)
        line = one_line(failed)
        assert failed.returncode == 1 and line.startswith("FAILED") and line.endswith("; nothing was changed, the old credentials are kept")
        assert "robot-pw" in line  # the details (which secret) come only with a failure
        assert (root / "etc/containerd/config.toml").read_bytes() == before and len(restarts(calls)) == 2
        for text in (changed.stderr, same.stderr, failed.stderr):
            assert "password" not in text.replace("password_from", "")


def test_units_and_their_enabling_in_user_data_and_packer(tmp_path: Path) -> None:
    out = render(tmp_path, "http://127.0.0.1:9", refresh="90m")
    timer = (out / "rootfs/etc/systemd/system/regauth-refresh.timer").read_text()
    assert "OnUnitActiveSec=90min" in timer and "RandomizedDelaySec=9min" in timer and "WantedBy=timers.target" in timer
    service = (out / "rootfs/etc/systemd/system/regauth-refresh.service").read_text()
    assert "ExecStart=/usr/local/sbin/regauth-apply --refresh\n" in service and "Type=oneshot" in service
    cloud = yaml.safe_load((out / "user-data").read_text())
    # the apply last: its exit status is the runcmd script's, so a failed apply is cloud-init's error
    assert cloud["runcmd"] == ["systemctl enable regauth-refresh.timer && if [ -d /run/systemd/system ]; then systemctl start regauth-refresh.timer; fi", ["/usr/local/sbin/regauth-apply"]]
    assert {f["path"]: f["permissions"] for f in cloud["write_files"]}["/etc/systemd/system/regauth-refresh.timer"] == "0644"
    install = (out / "packer/files/install.sh").read_text()
    assert "systemctl enable regauth-apply.service regauth-refresh.timer\n" in install


def test_refresh_is_validated(tmp_path: Path) -> None:
    for value, words in (("1m", "5m or longer"), ("hourly", "30m, 1h or 1d"), ("0h", "30m, 1h or 1d")):
        path = write_profile(tmp_path, f"version: 1\nrefresh: {value}\ntargets: {{containerd: {{version: \"1.7\"}}}}\nsecrets: {{k: {{source: file, path: key.json}}}}\n"
                                       "registries: [{host: europe-docker.pkg.dev, auth: {type: gcp-service-account, secret: k}}]\n")  # fmt: skip
        result = run_cli("validate", str(path))
        assert result.code == 2 and words in result.err and ":2:" in result.err, result.err
    path = write_profile(tmp_path, "version: 1\nrefresh: 1h\ntargets: {containerd: {version: \"1.7\"}}\nsecrets: {k: {source: file, path: key.json}}\n"
                                   "registries: [{host: europe-docker.pkg.dev, auth: {type: gcp-service-account, secret: k}}]\n")  # fmt: skip
    (tmp_path / "key.json").write_text(json.dumps({"type": "service_account"}))
    result = run_cli("validate", str(path))
    assert "no registry uses a fetch: boot secret" in result.err
