"""Prove the cloud-init harness itself, with hand-written user-data.

Why: every later test trusts this harness to say "real cloud-init applied our
user-data cleanly". So first show, on inputs whose outcome we know, that it sees
files/owners/modes, catches warnings and silently ignored user-data, keeps
per-instance modules from rerunning on a reboot, tells valid from invalid schema on
both cloud-init releases, serves the GCE datasource and extra HTTPS hosts inside the
sandbox, and leaves the host alone.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import json
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import ClassVar

import pytest

from tests.support.cloudinit_schema import schema_check
from tests.support.rootfs import ensure_cloudinit_versions, ensure_rootfs
from tests.support.sandbox import (
    WORKDIR_PREFIX,
    Sandbox,
    SandboxService,
    make_test_ca,
    run_cloud_init,
)

pytestmark = pytest.mark.system

# Our sandboxes' work dirs: every process and mount of ours names one.
OUR_WORKDIRS = os.path.join(tempfile.gettempdir(), WORKDIR_PREFIX)

SECRET = b'{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n"}\n'
CONF = "/etc/regauth/registry-auth.json"
MARKER = "/var/lib/regauth/applied"


def user_data(secret: bytes = SECRET) -> bytes:
    """A hand-written cloud-config shaped like what the generator emits."""
    return (
        "#cloud-config\n"
        "write_files:\n"
        f"  - path: {CONF}\n"
        "    encoding: b64\n"
        f"    content: {base64.b64encode(secret).decode()}\n"
        "    owner: root:root\n"
        "    permissions: '0600'\n"
        "runcmd:\n"
        f"  - [sh, -c, 'mkdir -p /var/lib/regauth && echo applied >> {MARKER}']\n"
    ).encode()


# ----------------------------------------------------------------- host guard


def _host_state() -> dict[str, object]:
    mounts = Path("/proc/self/mountinfo").read_text()
    return {
        "hostname": socket.gethostname(),
        "etc_hostname": Path("/etc/hostname").read_bytes() if Path("/etc/hostname").exists() else None,
        "etc_hosts": hashlib.sha256(Path("/etc/hosts").read_bytes()).hexdigest(),
        "etc_entries": sorted(p.name for p in Path("/etc").iterdir()),
        "sandbox_mounts": [m for m in mounts.splitlines() if OUR_WORKDIRS in m],
        "run_cloud_init": Path("/run/cloud-init").exists(),
        "var_lib_cloud": Path("/var/lib/cloud").exists(),
        "etc_cloud": Path("/etc/cloud").exists(),
        "sandbox_procs": _sandbox_processes(),
    }


def _sandbox_processes() -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if OUR_WORKDIRS in cmd:
                out.append(f"{proc.name}: {cmd}")
    return out


@pytest.fixture(autouse=True)
def host_untouched() -> Iterator[None]:
    """Every test here must leave hostname, /etc, /run, mounts and processes as they were."""
    before = _host_state()
    yield
    assert _host_state() == before


@pytest.fixture(scope="module")
def rootfs() -> Path:
    return ensure_rootfs()


# -------------------------------------------------------------- NoCloud apply


def test_nocloud_applies_files_owner_mode_and_runcmd_once_over_two_boots(rootfs: Path) -> None:
    snapshots: dict[int, dict[str, object]] = {}

    def after_boot(sb: Sandbox, number: int) -> None:
        snapshots[number] = {"conf": sb.read_file(CONF), "marker": sb.read_file(MARKER),
                             "stat": sb.run(["stat", "-c", "%y %a %U:%G", CONF], check=True).stdout}

    with run_cloud_init(user_data(), boots=2, after_boot=after_boot, rootfs=rootfs) as run:
        assert run.problems() == []
        assert [len(b.stages) for b in run.boots] == [4, 4]
        assert run.read_bytes(CONF) == SECRET
        st = run.stat(CONF)
        assert (st.owner, st.uid, st.gid, st.mode) == ("root:root", 0, 0, 0o600)
        # Written by cloud-init into the overlay, not present in the image.
        assert run.view.in_upper(CONF)
        assert not (rootfs / CONF.lstrip("/")).exists()
        # runcmd is per-instance: the reboot with the same instance id must not rerun it,
        # and write_files must not rewrite the file.
        assert run.read_text(MARKER) == "applied\n"
        assert snapshots[1] == snapshots[2]
        assert run.changes_in_boot(2) == []  # outside cloud-init's own bookkeeping
        assert run.log.count("Running command ['/var/lib/cloud/instance/scripts/runcmd']") == 1
        assert all(b.status and not b.errors for b in run.boots)
        # The seed holds the secret: cloud-init must not have made it world-readable.
        assert run.stat("/var/lib/cloud/instance/user-data.txt").mode & 0o077 == 0


def test_harness_sees_what_a_reboot_changes(rootfs: Path) -> None:
    # bootcmd runs on every boot: the idempotency check must notice.
    ud = user_data() + b"bootcmd:\n  - [sh, -c, 'date >> /var/lib/regauth-boots']\n"
    with run_cloud_init(ud, boots=2, rootfs=rootfs) as run:
        assert run.problems() == []
        assert run.changes_in_boot(2) == ["/var/lib/regauth-boots"]
        assert len(run.read_text("/var/lib/regauth-boots").splitlines()) == 2


def test_harness_reports_a_warning(rootfs: Path) -> None:
    # A write_files owner that does not exist: cloud-init logs a WARNING and goes on.
    ud = user_data().replace(b"owner: root:root", b"owner: nosuchuser:root")
    with run_cloud_init(ud, rootfs=rootfs) as run:
        assert run.warnings, run.log[-3000:]
        assert not run.ok
        assert any("nosuchuser" in p or "WARNING" in p for p in run.problems())


def test_invalid_yaml_is_detected_although_cloud_init_says_done(rootfs: Path) -> None:
    broken = b"#cloud-config\nwrite_files:\n  - path: /etc/x\n   content: [\n"
    with run_cloud_init(broken, rootfs=rootfs) as run:
        # cloud-init 22.4 itself: every stage exits 0 and records no error ...
        assert all(s.returncode == 0 for s in run.boots[0].stages)
        assert not run.errors
        # ... and nothing is written; the harness must still flag it.
        assert not run.view.exists("/etc/x")
        assert run.user_data_ignored
        assert not run.ok


def test_keep_running_allows_checks_inside_the_booted_machine(rootfs: Path) -> None:
    """Units delivered by user-data can be checked by the VM's own systemd-analyze."""
    unit = ("[Unit]\nDescription=regauth probe\nAfter=network-online.target\n"
            "[Service]\nType=oneshot\nExecStart=/usr/bin/true\n")
    ud = (
        "#cloud-config\nwrite_files:\n"
        "  - path: /etc/systemd/system/regauth-probe.service\n"
        f"    encoding: b64\n    content: {base64.b64encode(unit.encode()).decode()}\n"
        "    owner: root:root\n    permissions: '0644'\n"
        "  - path: /etc/systemd/system/regauth-broken.service\n"
        "    content: \"[Service]\\nType=oneshott\\nExecStart=usr/bin/true\\n\"\n"
        "    permissions: '0644'\n"
    ).encode()
    with run_cloud_init(ud, keep_running=True, rootfs=rootfs) as run:
        assert run.problems() == []
        sb = run.sandbox
        assert sb.running
        good = sb.run(["systemd-analyze", "verify", "/etc/systemd/system/regauth-probe.service"])
        assert good.returncode == 0, good.stderr
        bad = sb.run(["systemd-analyze", "verify", "/etc/systemd/system/regauth-broken.service"])
        assert bad.returncode != 0 and "oneshott" in bad.stderr
    assert not sb.running and not sb.workdir.exists()


# ------------------------------------------------------------------ schema


@pytest.fixture(scope="module")
def versions() -> list[str]:
    return ensure_cloudinit_versions()


@pytest.mark.parametrize("version", ["22.4", "25.1"])
def test_schema_accepts_valid_user_data(versions: list[str], version: str) -> None:
    ok, out = schema_check(user_data(), version)
    assert ok, out


@pytest.mark.parametrize("version", ["22.4", "25.1"])
def test_schema_rejects_unquoted_permissions(versions: list[str], version: str) -> None:
    # YAML 0600 unquoted is the integer 384; the schema wants a string.
    ok, out = schema_check(user_data().replace(b"permissions: '0600'", b"permissions: 0600"), version)
    assert not ok
    assert "permissions: 384 is not of type 'string'" in out


@pytest.mark.parametrize("version", ["22.4", "25.1"])
def test_schema_rejects_invalid_yaml(versions: list[str], version: str) -> None:
    ok, out = schema_check(b"#cloud-config\nwrite_files:\n  - path: /x\n   content: [\n", version)
    assert not ok
    assert "not valid yaml" in out.lower()


def test_schema_misspelled_top_level_key_only_flagged_by_25_1(versions: list[str]) -> None:
    ud = user_data().replace(b"write_files:", b"write_file:")
    assert schema_check(ud, "22.4")[0] is True  # the gap that makes us also run 25.1
    ok, out = schema_check(ud, "25.1")
    assert not ok
    assert "'write_file' was unexpected" in out


@pytest.mark.parametrize("version", ["22.4", "25.1"])
def test_schema_checks_each_part_of_gzipped_multipart(versions: list[str], version: str) -> None:
    def multipart(*parts: tuple[str, str]) -> bytes:
        msg = MIMEMultipart()
        for subtype, text in parts:
            msg.attach(MIMEText(text, subtype))
        return gzip.compress(msg.as_bytes())

    script = ("x-shellscript", "#!/bin/sh\necho theirs\n")
    good = multipart(script, ("cloud-config", user_data().decode()))
    ok, out = schema_check(good, version)
    assert ok, out
    assert "skipped: no schema for text/x-shellscript" in out
    bad = multipart(script, ("cloud-config", user_data().decode()),
                    ("cloud-config", "#cloud-config\nruncmd: 'not a list'\n"))
    ok, out = schema_check(bad, version)
    assert not ok
    assert "[part 3 (text/cloud-config)] INVALID" in out and "is not of type 'array'" in out


# ------------------------------------------------------------------ isolation


def test_sandbox_is_isolated_from_host_network_and_names(rootfs: Path) -> None:
    # A listener on the host's loopback must be unreachable from inside.
    host_listener = socket.socket()
    host_listener.bind(("127.0.0.1", 0))
    host_listener.listen(1)
    port = host_listener.getsockname()[1]
    try:
        with Sandbox(rootfs) as sb:
            assert sb.run(["hostname"]).stdout.strip() == "regauth-sandbox"
            links = sb.run(["ip", "-o", "link"]).stdout
            assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
            assert "state UNKNOWN" in links or "LOOPBACK,UP" in links
            assert sb.run(["cat", "/proc/1/comm"]).stdout.strip() == "sleep"
            res = sb.run(["curl", "-sS", "--max-time", "3", f"http://127.0.0.1:{port}/"])
            assert res.returncode == 7, res  # connection refused: a different loopback
            # Writes land in the upper dir only.
            sb.run(["sh", "-c", "echo x > /etc/regauth-probe"], check=True)
            assert (sb.upper / "etc/regauth-probe").read_text() == "x\n"
            assert not (rootfs / "etc/regauth-probe").exists()
            workdir = sb.workdir
        assert not workdir.exists()
    finally:
        host_listener.close()


# ------------------------------------------------------------------------ GCE


def test_gce_datasource_with_fake_metadata_server(rootfs: Path) -> None:
    from tests.support import fake_metadata as fm

    state = fm.MetadataState()
    fetch = (
        "curl -sS --fail -H 'Metadata-Flavor: Google' -o /var/lib/regauth/token.json "
        "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
    )
    ud = user_data() + f"  - [sh, -c, \"{fetch}\"]\n".encode()
    with run_cloud_init(ud, datasource="GCE", gce_metadata=state, boots=2, rootfs=rootfs) as run:
        assert run.problems() == []
        assert "DataSourceGCE" in json.dumps(run.boots[0].status)
        assert run.read_text("/var/lib/cloud/data/instance-id").strip() == state.tree["instance"]["id"]
        assert run.read_bytes(CONF) == SECRET
        assert run.stat(CONF).mode == 0o600
        assert run.read_text(MARKER) == "applied\n"
        assert run.changes_in_boot(2) == []
        token = json.loads(run.read_text("/var/lib/regauth/token.json"))
        assert token["access_token"] in state.tokens_issued and len(state.tokens_issued) == 1
        # cloud-init itself asked for the instance with the required header.
        asked = state.requests_to("instance/id")
        assert asked and all(r.headers.get("metadata-flavor") == "Google" for r in asked)


def test_gce_gzip_user_data_travels_base64(rootfs: Path) -> None:
    with run_cloud_init(gzip.compress(user_data()), datasource="GCE", rootfs=rootfs) as run:
        assert run.problems() == []
        assert run.gce_metadata.tree["instance"]["attributes"]["user-data-encoding"] == "base64"
        assert run.read_bytes(CONF) == SECRET


# ------------------------------------------------------ extra hosts + test CA


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Stands in for the Secret Manager fake: records what the VM sent."""

    seen: ClassVar[list[dict[str, str]]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            self.seen.append({"path": self.path, "auth": self.headers.get("Authorization", "")})
        body = json.dumps({"payload": {"data": base64.b64encode(SECRET).decode()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_extra_https_host_with_test_ca_inside_sandbox(rootfs: Path, tmp_path: Path) -> None:
    host = "secretmanager.googleapis.com"
    ca = make_test_ca(tmp_path / "ca", [host])
    _RecordingHandler.seen = []
    svc = SandboxService(_RecordingHandler, hostnames=[host], port=443, tls=ca.server_context())
    url = f"https://{host}/v1/projects/p/secrets/s/versions/latest:access"
    fetch = f"printf 'Authorization: Bearer tok\\n' | curl -sS --fail -H @- -o /var/lib/regauth/secret.json {url}"
    ud = user_data() + f"  - [sh, -c, \"{fetch}\"]\n".encode()
    with run_cloud_init(ud, services=[svc], ca_pems=[ca.ca_pem], rootfs=rootfs) as run:
        assert run.problems() == []
        got = json.loads(run.read_text("/var/lib/regauth/secret.json"))
        assert base64.b64decode(got["payload"]["data"]) == SECRET
        assert _RecordingHandler.seen == [{"path": "/v1/projects/p/secrets/s/versions/latest:access",
                                           "auth": "Bearer tok"}]
        # The name resolves to the sandbox's loopback only.
        assert f"127.0.0.1\t{host}" in run.read_text("/etc/hosts")
    assert Path("/etc/hosts").read_text().count(host) == 0
