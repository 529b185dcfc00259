"""Issue 14 items 6 and 7: how the node program writes files, run as a node runs it.

All or nothing across files (a failure at any file puts back every file already
written), the lock (a root-only directory, O_NOFOLLOW, bounded wait), symlinked
configs written through to their target, an existing file's owner and mode kept
(tightened only for a secret, and logged).  Every test runs the rendered
``regauth-apply`` under every node Python (3.6 ... 3.13 and Debian's python3).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from generator.tomlcompat import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, write_profile
from tests.support.nodepython import interpreter, on_every_node_python
from tests.support.registry import make_pki

pytestmark = on_every_node_python

HOST = "europe-docker.pkg.dev"
ROBOT = "registry.example.com:5000"
PASSWORD = "s3cr'et\"pw"
STOCK = (ROOT / "tests/fixtures/containerd/1.6.20-default.toml").read_bytes()
CONFIG = "etc/containerd/config.toml"
DOCKER = "root/.docker/config.json"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """containerd (a TLS host: hosts.toml + ca.crt; a mirror: docker.io's hosts.toml) and Docker."""
    folder = tmp_path_factory.mktemp("profile")
    (folder / "pw").write_text(PASSWORD + "\n")
    (folder / "pw").chmod(0o600)
    make_pki(folder, ["registry.test"])
    path = write_profile(folder, (
        'version: 1\ntargets:\n  containerd: {version: "1.7"}\n  docker: {}\nsecrets:\n  pw: {source: file, path: pw}\n'
        f"registries:\n  - {{host: {HOST}, auth: {{type: basic, username: u, secret: pw}}, tls: {{ca_file: ca.pem}}}}\n"
        f"  - {{host: '{ROBOT}', auth: {{type: basic, username: robot, secret: pw}}, mirror_for: docker.io}}\n"
    ), "files")  # fmt: skip
    result = run_cli("render", str(path), "-o", str(folder / "out"))
    assert result.code == 0, result.err
    return folder / "out" / "files" / "rootfs"


def apply(out: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [str(interpreter()), str(out / "usr/local/sbin/regauth-apply"), "--root", str(root),
            "--plan", str(out / "etc/regauth/plan.json"), "--no-restart", *extra]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def node(root: Path) -> Path:
    """A node with a stock containerd config and an unrelated Docker config (0644)."""
    for rel, data in ((CONFIG, STOCK), (DOCKER, b'{"auths": {"other.example": {"auth": "dTpw"}}}')):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        (root / rel).chmod(0o644)
    return root


def tree(root: Path) -> dict[str, tuple]:
    """Every entry (kind, mode, owner, content) except the run's lock directory."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if rel == "run" or rel.startswith("run/"):
            continue
        st = path.lstat()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir", st.st_mode, st.st_uid, st.st_gid)
        else:
            found[rel] = ("file", st.st_mode, st.st_uid, st.st_gid, path.read_bytes())
    return found


def one_failure_line(result: subprocess.CompletedProcess) -> str:
    """Exit 1 and one FAILED line, the last.  (Not "the only line": below 3.11 the node
    program still logs that it has no tomllib; the corpus test holds it to one line.)"""
    lines = result.stderr.splitlines()
    failed = [line for line in lines if line.startswith("regauth-apply: FAILED [node-")]
    assert result.returncode == 1 and failed == lines[-1:], result.stderr
    return lines[-1]


# ------------------------------------------------------------------ all or nothing (item 6)


def test_a_failure_at_any_file_puts_back_every_file_written(out: Path, tmp_path: Path) -> None:
    clean = node(tmp_path / "clean")
    before = tree(clean)
    first = apply(out, clean)
    assert first.returncode == 0, first.stderr
    written = sorted(rel for rel, entry in tree(clean).items() if entry[0] == "file" and before.get(rel) != entry
                     and not rel.endswith(".regauth.orig"))  # fmt: skip
    # hosts.toml for both hosts, the CA, Docker's config.json and the main config at least
    assert {CONFIG, DOCKER, f"etc/containerd/certs.d/{HOST}/hosts.toml", f"etc/containerd/certs.d/{HOST}/ca.crt",
            "etc/containerd/certs.d/docker.io/hosts.toml"} <= set(written), written  # fmt: skip
    for rel in written:
        root = node(tmp_path / rel.replace("/", "_"))
        # A non-empty directory where the file's temporary copy goes: writing this file fails.
        obstacle = (root / rel).parent / f".{Path(rel).name}.regauth-tmp"
        (obstacle / "x").mkdir(parents=True)
        start = tree(root)
        line = one_failure_line(apply(out, root))
        assert "nothing was changed" in line and PASSWORD not in line and "FAILED [node-write-failed]" in line, line
        assert tree(root) == start, f"a failure at {rel} left changes behind"


def test_the_main_config_is_written_last(out: Path, tmp_path: Path) -> None:
    root = node(tmp_path / "root")
    obstacle = root / "etc/containerd/certs.d/docker.io/.hosts.toml.regauth-tmp/x"
    obstacle.mkdir(parents=True)
    one_failure_line(apply(out, root))
    assert (root / CONFIG).read_bytes() == STOCK  # failed before containerd's config was touched


# ------------------------------------------------------------------ the lock (item 7)


def test_lock_is_a_root_only_directory(out: Path, tmp_path: Path) -> None:
    root = node(tmp_path / "root")
    assert apply(out, root).returncode == 0
    lock_dir = root / "run/regauth"
    assert lock_dir.is_dir() and not lock_dir.is_symlink() and lock_dir.stat().st_mode & 0o777 == 0o700
    assert list(lock_dir.iterdir()) == []  # the directory itself is the lock: nothing left behind


def test_a_held_lock_is_waited_for_then_refused_clearly(out: Path, tmp_path: Path) -> None:
    root = node(tmp_path / "root")
    (root / "run/regauth").mkdir(parents=True, mode=0o700)
    start = tree(root)
    fd = os.open(root / "run/regauth", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        line = one_failure_line(apply(out, root, "--lock-timeout", "0.3"))
    finally:
        os.close(fd)
    assert "another regauth-apply" in line and "--lock-timeout" in line and "nothing was changed" in line and "[node-lock]" in line
    assert tree(root) == start
    assert apply(out, root).returncode == 0  # released: the next run proceeds


@pytest.mark.parametrize("kind", ["symlink", "shared"])
def test_an_unsafe_lock_directory_is_refused(kind: str, out: Path, tmp_path: Path) -> None:
    root = node(tmp_path / "root")
    (root / "run").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if kind == "symlink":
        (root / "run/regauth").symlink_to(elsewhere)
    else:
        (root / "run/regauth").mkdir()
        (root / "run/regauth").chmod(0o755)
    start = tree(root)
    line = one_failure_line(apply(out, root))
    assert ("not a symlink" if kind == "symlink" else "not private") in line and "[node-lock]" in line
    assert tree(root) == start and list(elsewhere.iterdir()) == []


# ------------------------------------------------------------------ symlinks (item 7)


@pytest.mark.parametrize("link", ["/srv/containerd/config.toml", "../../srv/containerd/config.toml"])
def test_a_symlinked_config_is_written_through_and_the_link_kept(link: str, out: Path, tmp_path: Path) -> None:
    root = node(tmp_path / "root")
    target = root / "srv/containerd/config.toml"
    target.parent.mkdir(parents=True)
    target.write_bytes(STOCK)
    (root / CONFIG).unlink()
    (root / CONFIG).symlink_to(link)  # absolute targets are the node's paths: under --root
    result = apply(out, root)
    assert result.returncode == 0, result.stderr
    assert "wrote through to /srv/containerd/config.toml" in result.stderr
    assert (root / CONFIG).is_symlink() and os.readlink(root / CONFIG) == link
    auth = tomllib.loads(target.read_text())["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"][HOST]["auth"]
    assert auth == {"username": "u", "password": PASSWORD}
    merged = tree(root)
    assert apply(out, root).returncode == 0 and tree(root) == merged


def test_a_dangling_symlinked_config_is_refused(out: Path, tmp_path: Path) -> None:
    root = node(tmp_path / "root")
    (root / CONFIG).unlink()
    (root / CONFIG).symlink_to("/srv/missing/config.toml")
    start = tree(root)
    line = one_failure_line(apply(out, root))
    assert "is a symlink to /srv/missing/config.toml, which does not exist" in line and "[node-file-type]" in line
    assert tree(root) == start


# ------------------------------------------------------------------ owner and mode (item 7)


def test_owner_and_mode_are_kept_and_only_secrets_tightened(out: Path, tmp_path: Path) -> None:
    root = node(tmp_path / "root")
    hosts = root / f"etc/containerd/certs.d/{HOST}/hosts.toml"
    hosts.parent.mkdir(parents=True)
    hosts.write_text(f'server = "https://{HOST}"\n')
    for path, owner, mode in ((root / CONFIG, (1234, 2345), 0o640), (root / DOCKER, (3456, 3456), 0o604),
                              (hosts, (4567, 5678), 0o664)):  # fmt: skip
        os.chown(path, *owner)
        path.chmod(mode)
    result = apply(out, root)
    assert result.returncode == 0, result.stderr

    def owner_mode(path: Path) -> tuple[int, int, int]:
        st = path.stat()
        return st.st_uid, st.st_gid, st.st_mode & 0o7777

    assert owner_mode(root / CONFIG) == (1234, 2345, 0o600)  # now holds a secret: group bits dropped
    assert owner_mode(root / DOCKER) == (3456, 3456, 0o600)
    assert owner_mode(hosts) == (4567, 5678, 0o664)  # no secret: exactly as it was
    assert f"{'/' + CONFIG} now holds a secret: mode 0640 tightened to 0600" in result.stderr
    assert f"/{DOCKER} now holds a secret: mode 0604 tightened to 0600" in result.stderr
    assert "hosts.toml now holds" not in result.stderr
    assert json.loads((root / DOCKER).read_text())["auths"]["other.example"] == {"auth": "dTpw"}
