"""The one namespace sandbox the test harnesses build on (cloud-init, Packer, containerd).

A box is a shell script running as PID 1 of fresh **mount, UTS, IPC, network and
PID namespaces** (``unshare``). What each harness needs from it, and why it is here
once:

* **nothing leaks out**: mounts are private (they never propagate to the host), the
  hostname is the box's own, and the only network is a loopback nobody outside can
  reach;
* **nothing outlives it**: SIGKILL to the box's PID 1 makes the kernel kill every
  process in its PID namespace; ``unshare`` (our child) then reaps it and exits, and
  with the last process the mount namespace and its mounts are gone. If the test
  process itself dies, the kernel SIGKILLs ``unshare`` (``setpriv --pdeathsig``, kept
  across exec; not a ``preexec_fn``, which is unsafe with server threads) and
  ``--kill-child`` passes that on to PID 1;
* **a known PID 1**: ``unshare --fork``'s only child, found once the script said it is
  set up; :meth:`NsBox.nsenter` and :meth:`NsBox.call` join its namespaces;
* **no stale work dirs**: a SIGKILLed test run cannot run its finalizers, so work dirs
  carry their owner's PID and the next run removes those whose owner is gone.

No box changes user: every harness here runs as root on purpose (mounts, chroot,
sshd), so there is no privilege drop to share.
"""

from __future__ import annotations

import ctypes
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# setpriv execs its argument: the parent-death signal lands on the very program that runs.
DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "KILL", "--")
ALL_NAMESPACES = ("--mount", "--uts", "--ipc", "--net", "--pid")
REQUIRED_TOOLS = ("unshare", "nsenter", "setpriv", "ip", "mount")
READY = b"READY\n"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
OWNER_FILE = "owner.pid"

CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


class NsBoxError(RuntimeError):
    """The sandbox itself failed (not the software under test)."""


def missing_tools() -> list[str]:
    """The programs a box needs that are not on SANDBOX_PATH."""
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool, path=SANDBOX_PATH) is None]


def enter_net_namespace(pid: int) -> None:
    """Move the *calling thread* into the network namespace of ``pid`` (setns)."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if _LIBC.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns(net of pid {pid}): {os.strerror(err)}")
    finally:
        os.close(fd)


def listen_loopback(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0: any free port) in the calling
    thread's network namespace: through :meth:`NsBox.call`, the box's."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


# ------------------------------------------------------------------------ work dirs


def new_workdir(prefix: str) -> Path:
    """A fresh temp dir named ``prefix*`` that records its owner, after removing the
    dirs of owners that are gone (their boxes died with them: nothing is mounted there)."""
    for old in Path(tempfile.gettempdir()).glob(prefix + "*"):
        try:
            owner = int((old / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not Path(f"/proc/{owner}").exists():
            shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / OWNER_FILE).write_text(f"{os.getpid()}\n")
    return path


# ---------------------------------------------------------------------------- the box

# Runs first in every box, as PID 1: loopback up (the only interface), own hostname.
_PRELUDE = "set -eu\nip link set lo up\n{hostname}"


class NsBox:
    """PID 1 of private namespaces running ``setup`` (a ``sh`` script; ``args`` are its $1...).

    The script sees the host's filesystem in its private mount namespace. It must print
    ``READY`` on stdout once set up and then keep running (``exec sleep infinity``, or
    ``wait`` for daemons it started): :meth:`start` returns then. Its stderr is kept in
    an anonymous file (:meth:`log_text`): a pipe nobody reads could fill and block it.
    A box can be started again after :meth:`stop` (a "reboot"). If ``workdir`` is given
    the box owns it: :meth:`discard` (or the finalizer) removes it after stopping.
    """

    def __init__(self, setup: str, args: Sequence[object] = (), *, hostname: str | None = None,
                 name: str = "regauth-nsbox", workdir: Path | None = None) -> None:
        set_hostname = f"hostname {shlex.quote(hostname)}\n" if hostname else ""
        self._script = _PRELUDE.format(hostname=set_hostname) + setup
        self._args = [str(a) for a in args]
        self._name = name
        self.workdir = workdir
        self.pid1: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] = tempfile.TemporaryFile()
        # What the finalizer stops: a list, so the finalizer holds no reference to self.
        self._live: list[subprocess.Popen[bytes]] = []
        self._finalizer = weakref.finalize(self, NsBox._kill_all, self._live, workdir)

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT_S) -> int:
        """Create the namespaces and run the setup script; the host PID of PID 1."""
        if self._proc is not None:
            raise NsBoxError("the box is already running")
        argv = [*DIE_WITH_PARENT, "unshare", *ALL_NAMESPACES, "--propagation", "private", "--fork",
                "--kill-child=SIGKILL", "--", "/bin/sh", "-c", self._script, self._name, *self._args]
        self._log.seek(0)
        self._log.truncate()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log,
                                env={"PATH": SANDBOX_PATH, "LANG": "C.UTF-8"})
        self._proc = proc
        self._live.append(proc)
        if not self._wait_ready(proc, timeout):
            self.stop()
            raise NsBoxError(f"sandbox setup failed (exit {proc.returncode}): {self.log_text().strip()[-3000:]}")
        self.pid1 = self._child_of(self._proc.pid)
        return self.pid1

    def stop(self) -> None:
        """Kill every process of the box and reap it (idempotent); the mounts go with them."""
        proc, pid1 = self._proc, self.pid1
        self._proc, self.pid1 = None, None
        if proc is not None:
            self._kill(proc, pid1)
            self._live.remove(proc)

    def discard(self) -> None:
        """Stop, and remove the owned work dir (idempotent)."""
        self.stop()
        self._finalizer()

    def log_text(self) -> str:
        """What the box's PID 1 wrote to stderr during the last start."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    @staticmethod
    def _wait_ready(proc: subprocess.Popen[bytes], timeout: float) -> bool:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    return False
                buf += chunk
                if READY in buf:
                    return True
            elif proc.poll() is not None:
                return False
        return False

    @staticmethod
    def _child_of(pid: int) -> int:
        """Host PID of ``unshare --fork``'s only child: PID 1 inside the box.

        Called after READY, which that child printed, so it exists by now.
        """
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if not kids:
            raise NsBoxError(f"unshare (pid {pid}) has no child")
        return int(kids[0])

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes], pid1: int | None) -> None:
        # PID 1 first: the kernel kills its whole PID namespace and unshare reaps it (no
        # zombie left to the host's init). Killing unshare is the fallback (and the way
        # when PID 1 is not known yet): --kill-child then SIGKILLs PID 1.
        if proc.poll() is None and pid1 is None:
            proc.kill()
        elif proc.poll() is None:
            try:
                os.kill(pid1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()

    @staticmethod
    def _kill_all(live: list[subprocess.Popen[bytes]], workdir: Path | None) -> None:
        # Last resort (garbage collection, interpreter exit, discard()).
        for proc in list(live):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            live.remove(proc)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    # ------------------------------------------------------------------- inside
    def _require_pid1(self) -> int:
        if self.pid1 is None:
            raise NsBoxError("the sandbox is not running")
        return self.pid1

    def nsenter(self, argv: Sequence[str], *, spaces: Sequence[str] = ALL_NAMESPACES,
                root: bool = False) -> list[str]:
        """``argv`` run in the box's namespaces ``spaces`` (``root``: also its root and cwd).

        Dies with the test process. With ``--pid`` nsenter forks, so the command gets
        its own parent-death signal too: killing nsenter (a timeout) ends it.
        """
        pid1 = self._require_pid1()
        inner = DIE_WITH_PARENT if "--pid" in spaces else ()
        where = ["--root", "--wd"] if root else []
        return [*DIE_WITH_PARENT, "nsenter", f"--target={pid1}", *spaces, *where, "--", *inner, *argv]

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a short-lived thread inside the box's network namespace.

        setns switches only the calling thread; sockets made there keep belonging to the
        box's namespace, so a listener made here can be served from any thread.
        """
        pid1 = self._require_pid1()
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                enter_net_namespace(pid1)
                result["value"] = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                result["error"] = exc

        thread = threading.Thread(target=work, name=f"nsbox-{pid1}")
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["value"]
