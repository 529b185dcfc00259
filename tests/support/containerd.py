"""Real containerd for system tests.

Why: rendering the right TOML proves nothing until a real containerd reads it
and pulls.  This module finds the three containerd series we support (1.6 from
Debian 12, 1.7 and 2.x unpacked by ``scripts/deps/containerd.sh``), prepares a
test-local copy of a stock config *without touching its registry settings*,
dumps configs the way containerd itself parses them, and runs one containerd at
a time inside a :class:`Sandbox` (an :class:`~testbed.nsbox.NsBox`): a
private network namespace (only a loopback, so nothing can reach the internet,
and nothing listens on the host) plus a private mount namespace whose
``/etc/hosts`` maps a non-loopback name such as ``registry.test`` to 127.0.0.1
(so containerd uses https as in production).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pytest
from generator.tomlcompat import tomllib

from tests.support import cri
from tests.support.prereq import in_ci, missing  # noqa: F401 - also imported from here
from testbed.nsbox import NsBox, missing_tools

REPO = Path(__file__).resolve().parents[2]
SERIES = ("1.6", "1.7", "2")
T = TypeVar("T")


# --- skip or fail (in_ci and missing are tests/support/prereq.py's) ---------


def require_root() -> None:
    """Namespaces, bind mounts and image unpack all need root."""
    if os.geteuid() != 0:
        missing("system tests need root (namespaces, bind mounts, image unpack)")
    for tool in missing_tools():
        missing(f"{tool} not found (util-linux/mount/iproute2); run: bash scripts/deps/containerd.sh")


# --- binaries ---------------------------------------------------------------


def cache_dir() -> Path:
    """Where scripts/deps/containerd.sh unpacks binaries (git-ignored)."""
    return Path(os.environ.get("REGAUTH_CACHE") or REPO / ".cache")


@dataclass(frozen=True)
class Containerd:
    """One containerd binary and what its version implies for its config."""

    series: str  # "1.6", "1.7" or "2"
    path: Path
    version: str  # upstream version such as "1.7.24"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def minor_series(self) -> str:
        """"1.6", "1.7", "2.1": what a regauth profile's targets.containerd.version says."""
        return ".".join(self.version.split(".")[:2])

    @property
    def config_version(self) -> int:
        """The config ``version`` this binary's stock config uses (2 for 1.x, 3 for 2.0-2.2, 4 from 2.3)."""
        if self.major < 2:
            return 2
        return 4 if tuple(int(x) for x in self.version.split(".")[:2]) >= (2, 3) else 3

    @property
    def images_plugin(self) -> str:
        """The plugin whose ``registry.configs.HOST.auth`` holds credentials."""
        return "io.containerd.grpc.v1.cri" if self.major < 2 else "io.containerd.cri.v1.images"


@cache
def binary_version(path: Path) -> str:
    """Upstream version from ``containerd --version`` (1.6.20~ds1 -> 1.6.20)."""
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True, timeout=30)
    return re.split(r"[~+-]", out.stdout.split()[2])[0]


def _candidates(series: str) -> list[Path]:
    if series == "1.6":
        return [Path("/usr/bin/containerd")]
    found = sorted(
        (cache_dir() / "containerd").glob(f"{series}.*/usr/bin/containerd"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parents[2].name)],
    )
    return list(reversed(found))  # newest first


def find_binary(series: str) -> Containerd | None:
    """The newest binary of ``series`` available here, or None."""
    for path in _candidates(series):
        if path.is_file() and os.access(path, os.X_OK):
            version = binary_version(path)
            if version == series or version.startswith(series + "."):
                return Containerd(series, path, version)
    return None


def require_binary(series: str) -> Containerd:
    """The binary of ``series``; skips with a fix (fails in CI) when absent."""
    found = find_binary(series)
    if found is None:
        where = "/usr/bin/containerd (apt-get install containerd)" if series == "1.6" else (
            f"{cache_dir() / 'containerd'}/{series}.*/usr/bin/containerd"
        )
        missing(f"containerd {series if '.' in series else series + '.x'} not found at {where}; run: sudo bash scripts/deps/containerd.sh")
    return found  # type: ignore[return-value]


@pytest.fixture(params=SERIES, ids=lambda s: f"containerd{s}")
def containerd_binary(request: pytest.FixtureRequest) -> Containerd:
    """Parametrizes a test over every supported containerd series."""
    require_root()
    return require_binary(request.param)


# --- configs ----------------------------------------------------------------


@cache
def default_config(binary: Containerd) -> str:
    """The stock ``containerd config default`` text of this binary (cached: it never changes)."""
    return subprocess.run(
        [str(binary.path), "config", "default"], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def config_dump(binary: Containerd | Path, config_path: Path) -> dict[str, Any]:
    """The config as containerd itself parses it (``config dump``), as a dict.

    containerd rejects syntax errors and wrong types here, but silently drops
    unknown keys, so assertions must be made on this dump, never on our text.
    """
    path = binary.path if isinstance(binary, Containerd) else binary
    proc = subprocess.run(
        [str(path), "--config", str(config_path), "config", "dump"], capture_output=True, text=True, timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        raise ConfigRejected(f"containerd rejected {config_path}:\n{proc.stderr.strip()}")
    return tomllib.loads(proc.stdout)


class ConfigRejected(Exception):
    """``containerd config dump`` refused the file (containerd would not start)."""


def dumped_auth(binary: Containerd, dump: dict[str, Any], host: str) -> dict[str, Any] | None:
    """The ``auth`` table containerd will use for exactly ``host``, or None."""
    registry = dump.get("plugins", {}).get(binary.images_plugin, {}).get("registry", {})
    return (registry.get("configs") or {}).get(host, {}).get("auth")


def without_registry(binary: Containerd, dump: dict[str, Any]) -> dict[str, Any]:
    """The dump minus the registry tree (and ``imports``, which names the file
    itself): what an auth-only edit must leave equal."""
    rest = copy.deepcopy(dump)
    rest.pop("imports", None)
    rest.get("plugins", {}).get(binary.images_plugin, {}).pop("registry", None)
    return rest


def workdir_layout(workdir: Path) -> dict[str, Path]:
    """Every path a test containerd uses, all under one short temp dir."""
    return {
        "root": workdir / "root",
        "state": workdir / "state",
        "address": workdir / "c.sock",
        "opt": workdir / "opt",
        "cni_bin": workdir / "cni" / "bin",
        "cni_conf": workdir / "cni" / "net.d",
        "nri_socket": workdir / "nri" / "nri.sock",
        "nri_plugins": workdir / "nri" / "plugins",
        "nri_conf": workdir / "nri" / "conf.d",
        "verifier_bin": workdir / "image-verifier",
        "log": workdir / "containerd.log",
    }


def _test_local_edits(workdir: Path) -> dict[tuple[str, str], str]:
    """(table, key) -> TOML value: only host paths and the snapshotter, never registry."""
    p = {k: _basic(str(v)) for k, v in workdir_layout(workdir).items()}
    cri1, imgs2, run2 = "plugins.io.containerd.grpc.v1.cri", "plugins.io.containerd.cri.v1.images", (
        "plugins.io.containerd.cri.v1.runtime"
    )
    nri = "plugins.io.containerd.nri.v1.nri"
    return {
        ("", "root"): p["root"],
        ("", "state"): p["state"],
        ("grpc", "address"): p["address"],
        (f"{cri1}.containerd", "snapshotter"): _basic("native"),
        (f"{cri1}.cni", "bin_dir"): p["cni_bin"],
        (f"{cri1}.cni", "conf_dir"): p["cni_conf"],
        (imgs2, "snapshotter"): _basic("native"),
        (f"{run2}.cni", "bin_dirs"): f"[{p['cni_bin']}]",  # not bin_dir: 2.x refuses both set
        (f"{run2}.cni", "conf_dir"): p["cni_conf"],
        ("plugins.io.containerd.internal.v1.opt", "path"): p["opt"],
        (nri, "socket_path"): p["nri_socket"],
        (nri, "plugin_path"): p["nri_plugins"],
        (nri, "plugin_config_path"): p["nri_conf"],
        ("plugins.io.containerd.transfer.v1.local.unpack_config", "snapshotter"): _basic("native"),
        ("plugins.io.containerd.image-verifier.v1.bindir", "bin_dir"): p["verifier_bin"],
    }


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_-]+)\s*=\s*(.*)$")


def _basic(text: str) -> str:
    """A TOML basic string for a plain path (ASCII, no control characters)."""
    return json.dumps(text)


def prepare_test_config(stock: str, workdir: Path) -> str:
    """Make a stock config safe to run in a test, leaving registry settings alone.

    Only root/state/socket, snapshotter (native: works on any filesystem),
    opt path, CNI dirs, NRI socket/plugin dirs and the image-verifier dir are
    pointed into ``workdir``; every other line is kept byte for byte, so a
    later registry edit (regauth-apply) sees a genuine stock file.  Keys are
    replaced in place, never added: the stock file is the whole contract.
    """
    edits = _test_local_edits(workdir)
    table = ""
    out: list[str] = []
    for line in stock.splitlines(keepends=True):
        header = _HEADER.match(line)
        if header:
            table = re.sub(r"[\"']", "", header.group(1))
        else:
            kv = _KEY.match(line)
            if kv and (table, kv.group(2)) in edits:
                value = kv.group(3)
                if value.lstrip().startswith("[") and "]" not in value:
                    raise ValueError(f"multi-line value for {table}.{kv.group(2)} not supported")
                eol = "\n" if line.endswith("\n") else ""
                line = f"{kv.group(1)}{kv.group(2)} = {edits[(table, kv.group(2))]}{eol}"
        out.append(line)
    return "".join(out)


def check_test_local(binary: Containerd, dump: dict[str, Any], workdir: Path) -> list[str]:
    """Settings in ``dump`` that would make containerd write outside ``workdir``.

    Run before every start: a config that lost the test-local settings (for
    example because an apply step rewrote the file) must not touch the host.
    """
    lay = workdir_layout(workdir)
    plugins = dump.get("plugins", {})
    problems = []

    def expect(where: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{where} = {got!r}, expected {want!r}")

    expect("opt path", plugins.get("io.containerd.internal.v1.opt", {}).get("path"), str(lay["opt"]))
    nri = plugins.get("io.containerd.nri.v1.nri")
    if nri is not None and not nri.get("disable", False):
        expect("nri socket_path", nri.get("socket_path"), str(lay["nri_socket"]))
    if binary.major < 2:
        cri = plugins.get("io.containerd.grpc.v1.cri", {})
        expect("cri snapshotter", cri.get("containerd", {}).get("snapshotter"), "native")
        expect("cni conf_dir", cri.get("cni", {}).get("conf_dir"), str(lay["cni_conf"]))
    else:
        expect("cri images snapshotter", plugins.get("io.containerd.cri.v1.images", {}).get("snapshotter"), "native")
        cni = plugins.get("io.containerd.cri.v1.runtime", {}).get("cni", {})
        expect("cni conf_dir", cni.get("conf_dir"), str(lay["cni_conf"]))
    return problems


# --- the sandbox: private net + mount namespaces ----------------------------

# Runs as the box's PID 1 (loopback up); the mounts stay in its private mount namespace.
_SETUP = r"""
mount --bind "$1" /etc/hosts
mount -t tmpfs -o mode=0755,size=16m regauth-run /run
echo READY
exec sleep infinity
"""


class Sandbox:
    """A private network namespace (loopback only) + mount namespace with our
    /etc/hosts and an empty tmpfs on /run (containerd 2.x creates /run/containerd
    even when given --state: it must not land on the host).

    The namespaces are an :class:`~testbed.nsbox.NsBox`'s; programs join
    the network and mount ones with ``nsenter`` (:meth:`command`), and Python
    code that must open sockets in them runs on a thread that has ``setns``-ed
    into the network namespace (:meth:`call`).  Sockets keep their namespace, so
    a listening socket made there can be served from any thread.  The box dies
    with the test process, so even a killed test run leaves no namespace behind
    once the programs started in it are stopped.
    """

    def __init__(self, workdir: Path, names: dict[str, str]):
        self.hosts_file = workdir / "hosts"
        lines = ["127.0.0.1 localhost", *(f"{ip} {name}" for name, ip in names.items())]
        self.hosts_file.write_text("\n".join(lines) + "\n")
        self._box = NsBox(_SETUP, [self.hosts_file], name="regauth-containerd-sandbox")
        self._box.start()

    @property
    def pid(self) -> int:
        """Host PID of the box's PID 1 (the namespaces' holder)."""
        return self._box.pid1 or 0

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the network and mount namespaces (nsenter and setpriv
        exec: same pid, no fork, so the caller's Popen is the program itself).

        The parent-death signal kills the program if the test process itself is
        killed (teardown cannot run then); normal teardown stops it first.
        """
        return self._box.nsenter(argv, spaces=("--net", "--mount"))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a thread inside the network namespace."""
        return self._box.call(fn, *args)

    def close(self) -> None:
        self._box.stop()


def clean_env(**extra: str) -> dict[str, str]:
    """Environment for programs under test: no proxies (containerd honours
    HTTPS_PROXY for pulls) and no REGISTRY_* overrides (distribution reads them)."""
    drop = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    env = {k: v for k, v in os.environ.items() if k.lower() not in drop and not k.startswith("REGISTRY_")}
    env.update(extra)
    return env


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL: never leave a process of ours running."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def short_tempdir(prefix: str = "rgx-") -> Iterator[Path]:
    """A short /tmp dir: unix socket paths must stay under ~107 bytes."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ctd_dir() -> Iterator[Path]:
    """A fresh short work dir for one containerd (config, root, state, socket)."""
    with short_tempdir("ctd-") as path:
        yield path


# --- running containerd -----------------------------------------------------


@dataclass
class RunningContainerd:
    """A containerd started by :func:`running_containerd`."""

    binary: Containerd
    config: Path
    workdir: Path
    proc: subprocess.Popen
    _log_cache: str = field(default="", repr=False)

    @property
    def socket(self) -> Path:
        return workdir_layout(self.workdir)["address"]

    def log_text(self) -> str:
        """containerd's whole log (debug level), also after it stopped."""
        path = workdir_layout(self.workdir)["log"]
        if path.exists():
            self._log_cache = path.read_text(errors="replace")
        return self._log_cache

    def pull(self, image: str, timeout: float = 60, auth: tuple[str, str] | None = None) -> str:
        """CRI PullImage, the path kubelet uses; returns the image ref or raises PullError.
        ``auth`` (username, password) travels in the request, as kubelet sends a
        credential provider's answer."""
        return cri.pull_image(self.socket, image, timeout=timeout, auth=auth)


@contextmanager
def running_containerd(
    binary: Containerd,
    config: Path,
    workdir: Path,
    sandbox: Sandbox,
    *,
    ca_file: Path | None = None,
    ready_timeout: float = 20,
) -> Iterator[RunningContainerd]:
    """Start ``binary`` on ``config`` inside ``sandbox``; always stop it.

    ``workdir`` must be the dir the config was prepared for
    (:func:`prepare_test_config`): the dumped config is checked first and
    containerd is refused if it would write outside it.  ``ca_file`` becomes
    SSL_CERT_FILE, so the test CA is the only trusted root (as a real node
    trusts its public CAs).  Root, state and socket are also passed as flags so
    that even a damaged config cannot use the host's /var/lib/containerd.
    """
    problems = check_test_local(binary, config_dump(binary, config), workdir)
    if problems:
        raise AssertionError(f"{config} is not test-local, refusing to start containerd: " + "; ".join(problems))
    lay = workdir_layout(workdir)
    for key in ("root", "state", "opt", "cni_bin", "cni_conf", "nri_plugins", "nri_conf"):
        lay[key].mkdir(parents=True, exist_ok=True)
    env = clean_env(SSL_CERT_FILE=str(ca_file)) if ca_file else clean_env()
    argv = [str(binary.path), "--config", str(config), "--root", str(lay["root"]), "--state", str(lay["state"]),
            "--address", str(lay["address"]), "--log-level", "debug"]  # fmt: skip
    with open(lay["log"], "wb") as log:
        proc = subprocess.Popen(sandbox.command(argv), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
    running = RunningContainerd(binary, config, workdir, proc)
    try:
        deadline = time.monotonic() + ready_timeout
        while not lay["address"].exists():
            if proc.poll() is not None:
                raise RuntimeError(f"containerd exited {proc.returncode} at start:\n{running.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"containerd socket not up after {ready_timeout}s:\n{running.log_text()[-3000:]}")
            time.sleep(0.02)
        cri.wait_ready(lay["address"], timeout=max(1.0, deadline - time.monotonic()))
        yield running
    finally:
        stop_process(proc)
        running.log_text()  # keep the text for assertions made after the stop


DROPIN = "etc/containerd/conf.d/50-regauth.toml"  # regauth-apply's drop-in for containerd 2.x, beside config.toml


def dropin_config(root: Path) -> dict[str, Any]:
    """What regauth-apply wrote for containerd 2.x under ``root``: its drop-in, parsed (the
    main config only gains ``imports = ["conf.d/50-regauth.toml"]``)."""
    main = tomllib.loads((root / "etc/containerd/config.toml").read_text())
    assert "conf.d/50-regauth.toml" in main.get("imports", []) or any("*" in item for item in main.get("imports", []))
    return tomllib.loads((root / DROPIN).read_text())
