"""regauth-apply SIGKILLed at its Nth system call on each runtime file (strace fault
injection), for every N until it completes: each file is always the old or the new
one, never a torn write, and the next apply finishes byte-identically.

tests/unit/test_faults.py does the same at Python's audit events and at random times;
this one kills between the syscalls themselves (after the write, before the fsync,
before the rename, ...), as a power cut or the OOM killer would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_profile
from tests.support.containerd import missing, require_root
from tests.support.keys import key_file_bytes

pytestmark = pytest.mark.system

PROFILE = """
version: 1
targets:
  containerd: {version: "1.7"}
  k3s: {}
secrets:
  gar-key: {source: file, path: key.json}
registries:
  - host: europe-docker.pkg.dev
    auth: {type: gcp-service-account, secret: gar-key}
"""
FILES = ("etc/containerd/config.toml", "etc/rancher/k3s/registries.yaml")


def node(base: Path) -> Path:
    (base / "etc/containerd").mkdir(parents=True)
    (base / FILES[0]).write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n')
    (base / "etc/rancher/k3s").mkdir(parents=True)
    (base / FILES[1]).write_text("mirrors: {}\n")
    return base


def watched(root: Path) -> list[str]:
    """Every path regauth-apply touches for our files: the file, its temp file, its backup."""
    out = []
    for rel in FILES:
        path = root / rel
        for name in (path.name, f".{path.name}.regauth-tmp", f"{path.name}.regauth.orig", f".{path.name}.regauth.orig.regauth-tmp"):
            out.append(str(path.parent / name))
    return out


def snapshot(root: Path) -> dict[str, bytes]:
    return {rel: (root / rel).read_bytes() for rel in FILES}


def test_killed_at_every_nth_syscall(tmp_path: Path, sa_key: dict) -> None:
    require_root()
    if shutil.which("strace") is None:
        missing("strace not found; run: sudo bash scripts/deps/strace.sh")
    (tmp_path / "key.json").write_bytes(key_file_bytes(sa_key))
    (tmp_path / "key.json").chmod(0o600)
    result = run_cli("render", str(write_profile(tmp_path, PROFILE, "node")), "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err
    rootfs = tmp_path / "out/node/rootfs"

    def apply(root: Path, kill_at: int | None = None) -> subprocess.CompletedProcess:
        argv = [sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(root), "--plan", str(rootfs / "etc/regauth/plan.json"), "--no-restart"]
        if kill_at is not None:
            paths = [a for p in watched(root) for a in ("-P", p)]
            argv = ["strace", "-f", "-qq", "-o", "/dev/null", *paths, "-e", f"inject=all:signal=KILL:when={kill_at}", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    clean = node(tmp_path / "clean")
    old = snapshot(clean)
    assert apply(clean).returncode == 0
    new = snapshot(clean)
    assert new != old
    n, killed = 0, 0
    while True:
        n += 1
        assert n < 200, "regauth-apply never got past the injected kills"
        root = node(tmp_path / f"n{n}")
        run = apply(root, kill_at=n)
        for rel in FILES:
            assert (root / rel).read_bytes() in (old[rel], new[rel]), f"killed at syscall {n}: {rel} is torn"
        if run.returncode == 0:
            break
        killed += 1
        again = apply(root)
        assert again.returncode == 0, again.stderr
        assert snapshot(root) == new, f"killed at syscall {n}: the next apply is not byte-identical"
    assert killed >= 5, "the kills landed inside the writes"
