"""Faults: full disks, denied writes, killed processes, sick metadata/Secret Manager servers.

- render: ENOSPC or EACCES injected at every write of the staging step, and at every
  swap of a fleet commit, leaves every previous ``out/NAME/`` exactly as it was;
- regauth-apply: killed (SIGKILL) after each file-system event in turn, and at
  seeded random times, leaves each runtime file either old or new (never broken);
  the next apply finishes the job byte-identically;
- boot-time fetch: a slow or garbage-speaking metadata server or Secret Manager gives
  a bounded failure with one clear log line and an untouched config
  (down / late / 403 / 404 / bad CRC / 503 are in test_boot_fetch.py).
"""

from __future__ import annotations

import errno
import http.server
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from generator.errors import RuntimeFailure
from generator.outputs import writer
from generator.render import render_all
from tests.conftest import gar_profile, run_cli, write_profile
from tests.support.fake_metadata import GARBAGE, SLOW, running_fake_metadata

# ---------------------------------------------------------------- render


def tree(folder: Path) -> dict[str, tuple[int, bytes | None]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (stat.S_IMODE(st.st_mode), p.read_bytes() if stat.S_ISREG(st.st_mode) else None)
    return out


@pytest.fixture
def fleet(profile_dir: Path) -> tuple[list[Path], Path]:
    """Two profiles rendered once (the 'previous' output), then changed so a new render differs."""
    a = gar_profile(profile_dir, name="alpha", version="1.7")
    b = gar_profile(profile_dir, name="beta", version="2.1")
    out = profile_dir / "out"
    render_all([a, b], out, jobs=1)
    gar_profile(profile_dir, name="alpha", version="1.6")
    gar_profile(profile_dir, name="beta", version="2.0")
    return [a, b], out


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EACCES, errno.EIO])
def test_a_failed_write_anywhere_leaves_the_previous_fleet(fleet: tuple[list[Path], Path], monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    paths, out = fleet
    before = tree(out)
    real_write, real_link = writer._write_file, writer._link
    n = 0
    while True:
        n += 1
        calls = {"n": 0, "failed": False}

        def fails_now() -> bool:
            calls["n"] += 1
            calls["failed"] = calls["failed"] or calls["n"] == n
            return calls["n"] == n

        def failing_write(dest: Path, data: bytes, mode: int) -> None:
            if fails_now():  # half the data reaches the disk, then it fails like a full or broken disk
                real_write(dest, data[: len(data) // 2], mode)
                raise OSError(err, os.strerror(err), "injected")
            real_write(dest, data, mode)

        def failing_link(existing: Path, dest: Path) -> bool:
            if fails_now():
                raise OSError(err, os.strerror(err), "injected")
            return real_link(existing, dest)

        monkeypatch.setattr(writer, "_write_file", failing_write)
        monkeypatch.setattr(writer, "_link", failing_link)
        try:
            render_all(paths, out, jobs=1)
        except RuntimeFailure as exc:
            assert calls["failed"] and os.strerror(err) in exc.cause and "previous output is unchanged" in exc.cause
            assert tree(out) == before, f"fault at write {n} changed the output"
            continue
        finally:
            monkeypatch.undo()
        assert not calls["failed"]
        break
    assert n > 10, "the faults covered every file of both profiles"
    assert tree(out) != before  # the same render without a fault does change the output


def test_a_failed_swap_in_a_fleet_commit_rolls_back_the_ones_already_swapped(fleet: tuple[list[Path], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    paths, out = fleet
    before = tree(out)
    real_exchange, real_rename = writer._exchange, os.rename
    for exchange_works in (True, False):
        swaps = {"n": 0}

        def exchange(a: Path, b: Path) -> bool:
            if not exchange_works:
                return False
            swaps["n"] += 1
            if swaps["n"] == 2:
                raise OSError(errno.EACCES, "Permission denied", str(b))
            return real_exchange(a, b)

        def rename(a, b):  # type: ignore[no-untyped-def]
            if not exchange_works and "beta" in str(b) and ".old-" not in str(b) and ".regauth-" in str(a):
                raise OSError(errno.ENOSPC, "No space left on device", str(b))
            return real_rename(a, b)

        monkeypatch.setattr(writer, "_exchange", exchange)
        monkeypatch.setattr(writer.os, "rename", rename)
        with pytest.raises(RuntimeFailure):
            render_all(paths, out, jobs=1)
        assert tree(out) == before, f"exchange={exchange_works}: alpha was left new while beta stayed old"
        monkeypatch.undo()


def test_output_folder_not_writable_is_exit_1_and_nothing_changes(profile_dir: Path) -> None:
    profile = gar_profile(profile_dir)
    out = profile_dir / "out"
    out.write_text("a file where the output folder should be\n")
    result = run_cli("render", str(profile), "-o", str(out))
    assert result.code == 1 and "error:" in result.err and "Traceback" not in result.err
    assert out.read_text() == "a file where the output folder should be\n"


# ---------------------------------------------------------------- regauth-apply killed
KILLER = r"""
import os, signal, sys
sys.argv = [sys.argv[1]] + sys.argv[3:]
limit, count = int(os.environ["KILL_AFTER"]), [0]
root = os.environ["NODE_ROOT"]

def point():
    count[0] += 1
    if count[0] >= limit:
        os.kill(os.getpid(), signal.SIGKILL)

def ours(path):
    return isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(root)

# Before each file operation (Python's audit events fire before the call) ...
WATCH = {"open", "os.rename", "os.replace", "os.remove", "os.unlink", "os.chmod", "os.mkdir", "os.truncate"}
def hook(event, args):
    if event in WATCH and args and ours(args[0]):
        point()
sys.addaudithook(hook)

# ... after it, and in the middle of every write (a torn write, as a power cut makes).
def after(fn, check=lambda a: True):
    def wrapped(*a, **kw):
        result = fn(*a, **kw)
        if check(a):
            point()
        return result
    return wrapped
os.open = after(os.open, lambda a: ours(a[0]))
os.replace = after(os.replace, lambda a: ours(a[1]))
os.rename = after(os.rename, lambda a: ours(a[1]))
os.chmod = after(os.chmod, lambda a: ours(a[0]))
os.fsync = after(os.fsync)
real_fdopen = os.fdopen
class TornWrites:
    def __init__(self, handle): self.handle = handle
    def write(self, data):
        half = len(data) // 2
        self.handle.write(data[:half]); self.handle.flush(); point()
        return self.handle.write(data[half:]) + half
    def __enter__(self): return self
    def __exit__(self, *exc): self.handle.close()
    def __getattr__(self, name): return getattr(self.handle, name)
os.fdopen = lambda fd, mode="r", *a, **kw: TornWrites(real_fdopen(fd, mode, *a, **kw)) if "w" in mode else real_fdopen(fd, mode, *a, **kw)

import runpy
runpy.run_path(sys.argv[0], run_name="__main__")
"""

OLD_CONFIG = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n'
ALL_TARGETS = """
version: 1
targets:
  containerd: {version: "1.7"}
  k3s: {}
  docker: {}
  kubelet: {}
secrets:
  gar-key: {source: file, path: key.json}
registries:
  - host: europe-docker.pkg.dev
    auth: {type: gcp-service-account, secret: gar-key}
"""


def _node(base: Path) -> Path:
    root = base
    (root / "etc/containerd").mkdir(parents=True)
    (root / "etc/containerd/config.toml").write_text(OLD_CONFIG)
    (root / "etc/rancher/k3s").mkdir(parents=True)
    (root / "etc/rancher/k3s/registries.yaml").write_text("mirrors: {}\n")
    return root


def _apply(rootfs: Path, root: Path, kill_after: int | None = None) -> subprocess.CompletedProcess:
    script = str(rootfs / "usr/local/sbin/regauth-apply")
    args = [script, "--root", str(root), "--plan", str(rootfs / "etc/regauth/plan.json"), "--no-restart"]
    if kill_after is None:
        argv = [sys.executable, *args]
        env = dict(os.environ)
    else:
        argv = [sys.executable, "-c", KILLER, script, "--", *args[1:]]
        env = {**os.environ, "KILL_AFTER": str(kill_after), "NODE_ROOT": str(root)}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def _runtime_files(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in ((str(p.relative_to(root)), p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file())
            if not k.endswith(".lock") and ".regauth-tmp" not in k}


@pytest.fixture(scope="module")
def rendered_all_targets(tmp_path_factory: pytest.TempPathFactory, sa_key: dict) -> Path:
    from tests.support.keys import key_file_bytes

    folder = tmp_path_factory.mktemp("kill")
    (folder / "key.json").write_bytes(key_file_bytes(sa_key))
    (folder / "key.json").chmod(0o600)
    result = run_cli("render", str(write_profile(folder, ALL_TARGETS, "node")), "-o", str(folder / "out"))
    assert result.code == 0, result.err
    return folder / "out/node/rootfs"


def _clean_result(rootfs: Path, base: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    root = _node(base / "clean")
    old = _runtime_files(root)
    done = _apply(rootfs, root)
    assert done.returncode == 0, done.stderr
    return old, _runtime_files(root)


def _check_old_or_new(root: Path, old: dict[str, bytes], new: dict[str, bytes], label: str) -> None:
    now = _runtime_files(root)
    for path, data in now.items():
        assert data in (old.get(path), new.get(path)), f"{label}: {path} is neither the old nor the new file"
    for path in old:
        assert path in now, f"{label}: {path} vanished"


def test_killed_after_every_file_event_leaves_old_or_new_and_reapply_finishes(rendered_all_targets: Path, tmp_path: Path) -> None:
    old, new = _clean_result(rendered_all_targets, tmp_path)
    n, completed = 0, False
    while not completed:
        n += 1
        assert n < 400, "the apply never completed"
        root = _node(tmp_path / f"k{n}")
        run = _apply(rendered_all_targets, root, kill_after=n)
        completed = run.returncode == 0
        if not completed:
            assert run.returncode == -signal.SIGKILL, run.stderr
        _check_old_or_new(root, old, new, f"killed at event {n}")
        again = _apply(rendered_all_targets, root)
        assert again.returncode == 0, again.stderr
        assert _runtime_files(root) == new, f"killed at event {n}: a second apply is not byte-identical to a clean one"
        assert not list(root.rglob("*.regauth-tmp")), "temp files left after a completed apply"
    assert n > 10  # the kill points really covered the writes


def test_killed_at_random_times(rendered_all_targets: Path, tmp_path: Path) -> None:
    old, new = _clean_result(rendered_all_targets, tmp_path)
    rng = random.Random(20260801)  # seeded: the same delays in every run
    script = str(rendered_all_targets / "usr/local/sbin/regauth-apply")
    for i in range(25):
        root = _node(tmp_path / f"r{i}")
        proc = subprocess.Popen([sys.executable, script, "--root", str(root), "--plan", str(rendered_all_targets / "etc/regauth/plan.json"), "--no-restart"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.12))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _check_old_or_new(root, old, new, f"random kill {i}")
        assert _apply(rendered_all_targets, root).returncode == 0
        assert _runtime_files(root) == new


# ---------------------------------------------------------------- sick servers at boot
class _Sick(http.server.BaseHTTPRequestHandler):
    mode = "garbage"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802
        if self.mode == "slow":
            time.sleep(3)
        body = {"garbage": b"<html>proxy error</html>", "no-payload": b'{"name": "x"}', "not-base64": b'{"payload": {"data": "%%%"}}',
                "slow": b"{}", "huge-json": b'{"payload": {"data": "' + b"A" * 4096 + b'"'}[self.mode]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # quiet
        pass


@contextmanager
def sick_secret_manager(mode: str) -> Iterator[str]:
    handler = type("Handler", (_Sick,), {"mode": mode})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


BOOT = """
version: 1
targets: {{containerd: {{version: "2.1"}}}}
secrets:
  gar-key: {{source: gcp-secret-manager, project: regauth-test, secret: gar-reader, version: 3, fetch: boot, endpoint: "{endpoint}"}}
registries:
  - {{host: europe-docker.pkg.dev, auth: {{type: gcp-service-account, secret: gar-key}}}}
"""


def _boot_apply(tmp_path: Path, endpoint: str, md_host: str, timeout: float) -> tuple[subprocess.CompletedProcess, bytes, Path]:
    result = run_cli("render", str(write_profile(tmp_path, BOOT.format(endpoint=endpoint), "boot")), "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err
    rootfs = tmp_path / "out/boot/rootfs"
    root = tmp_path / "node"
    (root / "etc/containerd").mkdir(parents=True)
    config = root / "etc/containerd/config.toml"
    config.write_text('version = 3\n[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "overlayfs"\n')
    before = config.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCE_")}
    env["GCE_METADATA_HOST"] = md_host
    proc = subprocess.run([sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(root), "--plan", str(rootfs / "etc/regauth/plan.json"),
                           "--no-restart", "--fetch-timeout", str(timeout)], capture_output=True, text=True, env=env, timeout=120)
    return proc, before, config


@pytest.mark.parametrize(("mode", "words"), [("garbage", "not JSON"), ("no-payload", "without a payload"), ("not-base64", "not base64"), ("huge-json", "not JSON")])
def test_secret_manager_garbage_fails_fast_and_leaves_config(tmp_path: Path, mode: str, words: str) -> None:
    with running_fake_metadata() as md, sick_secret_manager(mode) as endpoint:
        proc, before, config = _boot_apply(tmp_path, endpoint, md.host_port, timeout=30)
    assert proc.returncode == 1 and words in proc.stderr and "left unchanged" in proc.stderr, proc.stderr
    assert "retrying" not in proc.stderr, "garbage is permanent: no retries"
    assert config.read_bytes() == before and sorted(p.name for p in config.parent.iterdir()) == ["config.toml"]
    assert proc.stderr.count("FAILED") == 1


def test_secret_manager_slow_is_bounded_by_fetch_timeout(tmp_path: Path) -> None:
    with running_fake_metadata() as md, sick_secret_manager("slow") as endpoint:
        proc, before, config = _boot_apply(tmp_path, endpoint, md.host_port, timeout=2)
    assert proc.returncode == 1 and "deadline" in proc.stderr and "left unchanged" in proc.stderr, proc.stderr
    assert config.read_bytes() == before


@pytest.mark.parametrize(("fault", "words"), [(SLOW, "deadline"), (GARBAGE, "not JSON")])
def test_metadata_slow_or_garbage_is_bounded_and_clear(tmp_path: Path, fault: str, words: str) -> None:
    with running_fake_metadata() as md, sick_secret_manager("garbage") as endpoint:
        md.state.slow_seconds = 3.0
        md.state.set_fault(fault)
        proc, before, config = _boot_apply(tmp_path, endpoint, md.host_port, timeout=2)
        md_host = md.host_port
    assert proc.returncode == 1 and words in proc.stderr and "left unchanged" in proc.stderr, proc.stderr
    assert "metadata" in proc.stderr or md_host in proc.stderr, "the log line names the metadata server"
    assert proc.stderr.count("FAILED") == 1
    assert config.read_bytes() == before


# ---------------------------------------------------------------- transient vs permanent
# test_gcp_secret_manager.py covers UNAVAILABLE/429/deadline retries and PERMISSION_DENIED
# failing after one call at build time; test_boot_fetch.py covers 503 retried at boot.
# Missing until now: the other permanent kinds fail after exactly one call (build time),
# and at boot 403/404 are never retried while 429 is.


@pytest.mark.parametrize("kind", ["not_found", "unauthenticated"])
@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_build_time_permanent_errors_fail_after_one_call(kind: str, transport: str) -> None:
    from generator.errors import SecretUnavailable
    from generator.secrets.gcp_secret_manager import GsmOptions, GsmRef, fetch_secrets
    from tests.support.fake_gsm import running_fake_gsm

    with running_fake_gsm() as fake:
        fake.add_secret("regauth-test", "s", b"payload")
        fake.inject("regauth-test", "s", kind)
        endpoint = fake.grpc_target if transport == "grpc" else fake.rest_endpoint
        opts = GsmOptions(endpoint=endpoint, transport=transport, anonymous=True, attempts=5, backoff_initial=0.002, backoff_max=0.01, timeout_total=5.0)
        with pytest.raises(SecretUnavailable) as info:
            fetch_secrets([GsmRef("regauth-test", "s", "1")], opts)
        assert fake.fetch_count() == 1, "a permanent error is not retried"
    assert "gave up after" not in info.value.cause


@pytest.mark.parametrize(("kind", "retried"), [("permission_denied", False), ("not_found", False), ("resource_exhausted", True)])
def test_boot_time_retries_only_transient_errors(tmp_path: Path, sa_key: dict, kind: str, retried: bool) -> None:
    from tests.support.fake_gsm import running_fake_gsm
    from tests.support.keys import key_file_bytes

    with running_fake_metadata() as md, running_fake_gsm() as gsm:
        gsm.add_secret("regauth-test", "gar-reader", b"1", b"2", key_file_bytes(sa_key))
        gsm.inject("regauth-test", "gar-reader", kind, times=1 if retried else None)
        proc, before, config = _boot_apply(tmp_path, gsm.rest_endpoint, md.host_port, timeout=20)
        calls = gsm.fetch_count()
    if retried:
        assert proc.returncode == 0 and "attempt 1 failed (HTTP 429)" in proc.stderr, proc.stderr
        assert calls == 2
    else:
        assert proc.returncode == 1 and "retrying" not in proc.stderr and "left unchanged" in proc.stderr, proc.stderr
        assert calls == 1 and config.read_bytes() == before
