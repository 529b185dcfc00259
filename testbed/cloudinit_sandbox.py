"""Boot-like runs of real cloud-init in a throw-away copy of the cached rootfs.

Why a sandbox at all: cloud-init applied on the host would rewrite its /etc, its
hostname and its services. Here every run gets

* a copy-on-write **overlay** of the read-only rootfs (the upper dir is a fresh temp
  dir, so what cloud-init wrote is exactly the set of files in it);
* a **chroot** inside an :class:`~testbed.nsbox.NsBox` (private mount, UTS,
  PID, IPC and network namespaces): mounts never propagate out, ``hostname`` changes
  only the sandbox's own UTS name, every process dies with the namespace's PID 1, and
  the only network is a loopback that nobody outside can reach;
* its own ``/proc``, ``/sys`` (of its own netns), ``/run`` (tmpfs: a reboot empties
  it, as on a real machine) and a minimal ``/dev`` (no host disks: cloud-init's
  growpart must find nothing to grow).

A "reboot" stops the namespaces and starts new ones on the *same* upper dir, so the
second boot sees the files of the first, with fresh ``/run``, processes and network,
the way cloud-init on a real VM sees them.

Fake services: a :class:`SandboxService` is an ``http.server`` handler class served
*in this process* on a listening socket that was created inside the sandbox's network
namespace (``setns`` in a short-lived thread). So the handler can be any object the
test holds (fake metadata server, fake Secret Manager), requests can be asserted on
directly, and the port is reachable only from inside the sandbox. Its hostnames go
to the sandbox's ``/etc/hosts`` (127.0.0.1), and a test CA can be added to the
sandbox's trust store, so ``https://secretmanager.googleapis.com`` inside the
sandbox is our fake, with a valid chain, and nothing leaves the machine.

Files: :meth:`Sandbox.write_file`/:meth:`Sandbox.read_file` work from *inside* the
chroot, and :class:`OverlayView` resolves symlinks within the sandbox, because the
host following an absolute symlink of the sandbox (``/var/lib/cloud/instance``)
would land on the host's own files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import re
import socket
import ssl
import stat as statmod
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from testbed.nsbox import SANDBOX_PATH, NsBox, NsBoxError, listen_loopback, new_workdir
from testbed.rootfs import ensure_rootfs

SANDBOX_HOSTNAME = "regauth-sandbox"
DEFAULT_INSTANCE_ID = "iid-regauth-sandbox-1"
STAGE_TIMEOUT_S = 180.0
CLOUD_INIT_STAGES: tuple[tuple[str, ...], ...] = (
    ("init", "--local"),
    ("init",),
    ("modules", "--mode", "config"),
    ("modules", "--mode", "final"),
)
# What cloud-init rewrites on every boot by design (logs, its instance cache, boot
# markers, per-boot semaphores); ignored when asking what a reboot changed.
CLOUD_INIT_OWN_STATE: tuple[str, ...] = ("/var/log/", "/var/lib/cloud/", "/run/", "/var/tmp/cloud-init")

# cloud-init's log format: "2024-01-01 00:00:00,000 - util.py[WARNING]: ...". A record
# is such a line plus its continuation lines (tracebacks hang off a record).
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ - ")
PROBLEM_LEVEL = re.compile(r"^\S+ \S+ - [^\[]*\[(WARNING|ERROR|CRITICAL)\]")
TRACEBACK = "Traceback (most recent call last)"
# Records caused by the sandbox, not by the user-data, per datasource. GCE: the
# sandbox has no NIC, so the local-stage GCE datasource cannot do its ephemeral DHCP
# and cloud-init falls back to the network-stage GCE datasource (loopback works),
# exactly what it does on a VM whose local DHCP fails.
SANDBOX_NOISE: dict[str, tuple[str, ...]] = {
    "NoCloud": (),
    "GCE": (
        r"\[WARNING\]: Did not find a fallback interface on gce\.$",
        (r"\[(WARNING|DEBUG)\]: Getting data from <class 'cloudinit\.sources\.DataSourceGCE\."
         r"DataSourceGCELocal'> failed"),
    ),
}


def log_records(log: str) -> list[str]:
    """Split a cloud-init log into records (first line + continuation lines)."""
    records: list[str] = []
    for line in log.splitlines():
        if RECORD_START.match(line) or not records:
            records.append(line)
        else:
            records[-1] += "\n" + line
    return records


def problem_records(log: str, noise: Sequence[str] = ()) -> list[str]:
    """Records at WARNING or worse, or carrying a traceback, minus known sandbox noise."""
    out = []
    for rec in log_records(log):
        first = rec.split("\n", 1)[0]
        if not (PROBLEM_LEVEL.match(first) or TRACEBACK in rec):
            continue
        if any(re.search(pat, first) for pat in noise):
            continue
        out.append(rec)
    return out

_SandboxT = TypeVar("_SandboxT", bound="Sandbox")
_RunT = TypeVar("_RunT", bound="CloudInitRun")


SandboxError = NsBoxError  # the sandbox itself failed (not the software under test)


# ----------------------------------------------------------------------------- TLS


@dataclasses.dataclass(frozen=True)
class TestCA:
    """A throw-away CA and one server certificate for the given hostnames."""

    __test__ = False  # not a pytest test class

    ca_pem: bytes
    cert_file: Path  # server certificate (PEM), signed by the CA
    key_file: Path  # its private key (PEM)
    hostnames: tuple[str, ...]

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def make_test_ca(directory: Path, hostnames: Sequence[str]) -> TestCA:
    """Create a CA and a server cert for ``hostnames`` with the openssl CLI.

    Why openssl and not a Python library: it is on every Debian machine, and this
    helper must not add a test dependency.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt, ext = (directory / n for n in ("server.key", "server.csr", "server.crt", "server.ext"))
    sans = ",".join(f"DNS:{h}" for h in hostnames)
    ext.write_text(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n")

    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-subj", "/CN=regauth test CA", "-keyout", str(ca_key), "-out", str(ca_crt),
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-subj", f"/CN={hostnames[0]}", "-keyout", str(key), "-out", str(csr))
    ossl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
         "-days", "2", "-extfile", str(ext), "-out", str(crt))
    return TestCA(ca_crt.read_bytes(), crt, key, tuple(hostnames))


# ------------------------------------------------------------------------- services


@dataclasses.dataclass
class SandboxService:
    """An HTTP(S) server reachable *inside* the sandbox as ``http(s)://HOSTNAME:PORT``.

    ``handler`` is any ``http.server.BaseHTTPRequestHandler`` subclass; it runs in the
    test process (threads), so it can close over fakes the test inspects. ``hostnames``
    resolve to 127.0.0.1 inside the sandbox only. ``tls`` (a server context, e.g.
    :meth:`TestCA.server_context`) makes it HTTPS; add the CA with ``Sandbox(ca_pems=...)``.
    The service is (re)started on every boot, since each boot has a new netns.
    """

    handler: type[http.server.BaseHTTPRequestHandler]
    hostnames: Sequence[str] = ()
    port: int = 80
    tls: ssl.SSLContext | None = None


class _NetnsHTTPServer(http.server.ThreadingHTTPServer):
    """A ThreadingHTTPServer on a socket made elsewhere (inside the sandbox netns).

    TLS handshakes happen in the worker thread, not in the accept loop, so a client
    that never completes one cannot stall the others.
    """

    daemon_threads = True

    def __init__(self, sock: socket.socket, handler: type[http.server.BaseHTTPRequestHandler],
                 tls: ssl.SSLContext | None) -> None:
        super().__init__(sock.getsockname()[:2], handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self._tls = tls

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = self.socket.accept()
        if self._tls is not None:
            conn = self._tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(30)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return  # client gave up or does not trust us: its problem, logged by it
        super().finish_request(request, client_address)


# --------------------------------------------------------------------------- files


@dataclasses.dataclass(frozen=True)
class FileStat:
    """Owner and mode of a file as the sandboxed machine sees it."""

    uid: int
    gid: int
    mode: int  # permission bits only, e.g. 0o600
    owner: str  # "user:group" resolved with the sandbox's own /etc/passwd and /etc/group
    is_file: bool
    size: int


class OverlayView:
    """Read the merged result of an overlay (upper over lower) without it being mounted.

    Why: after the namespaces are gone the merged mount is gone too, but a test still
    wants "what does the machine have at /etc/x", which is the upper dir's copy if
    cloud-init wrote it, else the rootfs's, unless the upper dir deleted it (overlayfs
    whiteout: a 0/0 character device) or hid a directory (opaque xattr).
    """

    def __init__(self, upper: Path, lower: Path) -> None:
        self.upper = upper
        self.lower = lower

    @staticmethod
    def _rel(path: str | PurePosixPath) -> PurePosixPath:
        p = PurePosixPath(path)
        if not p.is_absolute():
            raise ValueError(f"sandbox paths are absolute, got {path!r}")
        return p.relative_to("/")

    @staticmethod
    def _is_whiteout(p: Path) -> bool:
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return False
        return statmod.S_ISCHR(st.st_mode) and st.st_rdev == 0

    @staticmethod
    def _is_opaque(p: Path) -> bool:
        try:
            return os.getxattr(p, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
        except OSError:
            return False

    def _lookup(self, parts: Sequence[str]) -> Path | None:
        """Host path of the exact entry ``parts`` (no symlink following), or None."""
        up = self.upper.joinpath(*parts)
        if self._is_whiteout(up):
            return None
        if os.path.lexists(up):
            return up
        # Not in upper: visible from lower unless an upper ancestor hides it.
        cur = self.upper
        for part in parts[:-1]:
            cur = cur / part
            if self._is_whiteout(cur) or (cur.is_dir() and not cur.is_symlink() and self._is_opaque(cur)):
                return None
        low = self.lower.joinpath(*parts)
        return low if os.path.lexists(low) else None

    def resolve(self, path: str | PurePosixPath, *, follow: bool = True) -> Path | None:
        """The host path holding the sandbox's ``path``, or None if it does not exist.

        Symlinks are followed *inside* the sandbox (``/var/lib/cloud/instance`` is an
        absolute link that must not lead to the host's /var/lib/cloud); the last
        component only when ``follow``.
        """
        todo = list(self._rel(path).parts)
        done: list[str] = []
        hops = 0
        while todo:
            name = todo.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                if done:
                    done.pop()
                continue
            host = self._lookup([*done, name])
            if host is None:
                return None
            if host.is_symlink() and (todo or follow):
                hops += 1
                if hops > 40:
                    raise OSError(f"too many levels of symbolic links: {path}")
                target = PurePosixPath(os.readlink(host))
                if target.is_absolute():
                    done = []
                    target = target.relative_to("/")
                todo = [*target.parts, *todo]
                continue
            done.append(name)
        return self._lookup(done) if done else self.upper

    def in_upper(self, path: str) -> bool:
        """True if the run wrote (or changed attributes of) ``path``."""
        host = self.resolve(path)
        return host is not None and self.upper in host.parents

    def exists(self, path: str) -> bool:
        return self.resolve(path) is not None

    def read_bytes(self, path: str) -> bytes:
        host = self.resolve(path)
        if host is None:
            raise FileNotFoundError(f"{path} does not exist in the sandbox")
        return host.read_bytes()

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode()

    def _names(self, table: str) -> dict[int, str]:
        host = self.resolve(f"/etc/{table}")
        names: dict[int, str] = {}
        for line in (host.read_text().splitlines() if host else []):
            fields = line.split(":")
            if len(fields) >= 3 and fields[2].isdigit():
                names.setdefault(int(fields[2]), fields[0])
        return names

    def stat(self, path: str, *, follow: bool = True) -> FileStat:
        host = self.resolve(path, follow=follow)
        if host is None:
            raise FileNotFoundError(f"{path} does not exist in the sandbox")
        st = os.lstat(host)
        user = self._names("passwd").get(st.st_uid, str(st.st_uid))
        group = self._names("group").get(st.st_gid, str(st.st_gid))
        return FileStat(st.st_uid, st.st_gid, statmod.S_IMODE(st.st_mode), f"{user}:{group}",
                        statmod.S_ISREG(st.st_mode), st.st_size)

    def upper_files(self) -> list[str]:
        """Every non-directory the run created or changed, as sandbox paths, sorted."""
        out = []
        for dirpath, _dirs, files in os.walk(self.upper):
            for name in files:
                host = Path(dirpath) / name
                out.append("/" + str(host.relative_to(self.upper)))
        return sorted(out)


# ------------------------------------------------------------------------- sandbox

# Runs as the NsBox's PID 1 (loopback up and hostname set by the box), still seeing
# the host's filesystem; ends by chroot-ing into the overlay and sleeping, so
# /proc/PID/root is the merged view. Every mount here is in the private mount
# namespace: the host never sees them.
_SETUP = r"""
lower=$1 upper=$2 work=$3 merged=$4 stage=$5 dmi=$6
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
mount -t proc -o nosuid,nodev,noexec proc "$merged/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$merged/sys"
if [ -n "$dmi" ]; then
    # A /sys/class of our own: every real class bound in, plus a fake dmi/id (the
    # host may have none; cloud-init's GCE datasource reads the product name there).
    mount -t tmpfs -o mode=0755 tmpfs "$stage"
    for c in "$merged"/sys/class/*; do
        n=${c##*/}; mkdir "$stage/$n"; mount --bind "$c" "$stage/$n"
    done
    mkdir -p "$stage/dmi"; cp -a "$dmi" "$stage/dmi/id"
    mount -o remount,ro,bind "$stage"
    mount --move "$stage" "$merged/sys/class"
fi
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$merged/run"
mkdir -p "$merged/run/lock"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$merged/dev"
for d in null zero full random urandom tty; do
    : > "$merged/dev/$d"; mount --bind "/dev/$d" "$merged/dev/$d"
done
mkdir -m 0755 "$merged/dev/pts"; mkdir -m 1777 "$merged/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$merged/dev/pts"
ln -s pts/ptmx "$merged/dev/ptmx"; ln -s /proc/self/fd "$merged/dev/fd"
ln -s /proc/self/fd/0 "$merged/dev/stdin"; ln -s /proc/self/fd/1 "$merged/dev/stdout"
ln -s /proc/self/fd/2 "$merged/dev/stderr"
# READY is printed from inside the chroot, so once the parent reads it,
# /proc/PID/root of this process is the overlay, never the host's root.
exec chroot "$merged" /bin/sh -c 'echo READY && exec /bin/sleep infinity'
"""


WORKDIR_PREFIX = "regauth-sandbox-"


@dataclasses.dataclass
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class Sandbox:
    """A machine made of the rootfs plus a private upper dir; boot it, run commands, reboot it.

    ``with Sandbox(rootfs) as sb:`` starts the first boot; ``sb.reboot()`` restarts the
    namespaces on the same upper dir; leaving the block (or :meth:`close`) stops every
    process and deletes the upper dir unless ``keep_upper=True`` (then the caller owns
    ``sb.workdir`` and removes it with :meth:`cleanup`).
    """

    def __init__(
        self,
        rootfs: Path | None = None,
        *,
        hostname: str = SANDBOX_HOSTNAME,
        hosts: Mapping[str, str] | None = None,
        ca_pems: Sequence[bytes] = (),
        services: Sequence[SandboxService] = (),
        dmi: Mapping[str, str] | None = None,
        keep_upper: bool = False,
    ) -> None:
        self.rootfs = rootfs or ensure_rootfs()
        self.hostname = hostname
        self.hosts = dict(hosts or {})
        for svc in services:
            for name in svc.hostnames:
                self.hosts.setdefault(name, "127.0.0.1")
        self.ca_pems = list(ca_pems)
        self.services = list(services)
        self.dmi = dict(dmi) if dmi else None
        self.keep_upper = keep_upper
        self.workdir = new_workdir(WORKDIR_PREFIX)
        self.upper = self.workdir / "upper"
        for d in ("upper", "work", "merged", "stage", "dmi"):
            (self.workdir / d).mkdir(mode=0o755)
        self.view = OverlayView(self.upper, self.rootfs)
        self.boot_count = 0
        setup_args = [self.rootfs, self.upper, self.workdir / "work", self.workdir / "merged",
                      self.workdir / "stage", self._dmi_dir()]
        self._box = NsBox(_SETUP, setup_args, hostname=hostname, name="regauth-sandbox", workdir=self.workdir)
        self._servers: list[tuple[_NetnsHTTPServer, threading.Thread]] = []
        self._prepared = False
        self._host_root_dev = os.stat("/").st_dev

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self: _SandboxT) -> _SandboxT:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._box.pid1 is not None

    @property
    def _pid1(self) -> int | None:
        return self._box.pid1

    @property
    def merged(self) -> Path:
        """Host path of the live merged root (``/proc/PID/root``), valid only while running.

        Careful: through this path the *host* resolves absolute symlinks against the
        host's root (``/var/lib/cloud/instance`` would lead to the host's
        /var/lib/cloud). Use :meth:`read_file`/:meth:`write_file` (they run inside the
        sandbox) or :attr:`view` unless you know the path has no absolute symlink.
        """
        if self._pid1 is None:
            raise SandboxError("the sandbox is not running: use .view for the files it left")
        root = Path(f"/proc/{self._pid1}/root")
        if os.stat(root).st_dev == self._host_root_dev:
            # Never hand out a path that is the host's filesystem.
            raise SandboxError(f"{root} is not the sandbox overlay")
        return root

    def _dmi_dir(self) -> str:
        """The fake /sys/class/dmi/id the setup script mounts, or "" for none."""
        if self.dmi is None:
            return ""
        dmi_path = self.workdir / "dmi" / "id"
        dmi_path.mkdir(parents=True)
        for key, value in self.dmi.items():
            (dmi_path / key).write_text(value + "\n")
        return str(dmi_path)

    def start(self) -> None:
        """Boot: new namespaces, overlay mounted, loopback up, services listening."""
        if self.running:
            raise SandboxError("already running")
        self._box.start()
        self.boot_count += 1
        if not self._prepared:
            self._prepare_machine()
            self._prepared = True
        for svc in self.services:
            self.serve(svc)

    def stop(self) -> None:
        """Power off: stop services, kill every process of the sandbox, unmount (implicitly)."""
        for server, thread in self._servers:
            server.shutdown()
            server.server_close()
            thread.join(5)
        self._servers.clear()
        self._box.stop()

    def reboot(self) -> None:
        """Stop and start again on the same upper dir (fresh /run, processes, network)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, and delete the upper dir unless ``keep_upper``."""
        self.stop()
        if not self.keep_upper:
            self.cleanup()

    def cleanup(self) -> None:
        """Delete the work dir (upper included). Safe to call twice."""
        self.stop()
        self._box.discard()

    # ---------------------------------------------------------------- machine setup
    def _prepare_machine(self) -> None:
        """First boot only: /etc/hosts and trust store, as the image would have them."""
        lines = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{self.hostname}",
                 "::1\tlocalhost ip6-localhost ip6-loopback"]
        lines += [f"{addr}\t{name}" for name, addr in sorted(self.hosts.items())]
        self.write_file("/etc/hosts", ("\n".join(lines) + "\n").encode(), mode=0o644)
        if self.ca_pems:
            for i, pem in enumerate(self.ca_pems):
                self.write_file(f"/usr/local/share/ca-certificates/regauth-test-{i}.crt", pem, mode=0o644)
            res = self.run(["update-ca-certificates"], timeout=120)
            if res.returncode != 0:
                raise SandboxError(f"update-ca-certificates failed: {res.stderr}")

    # -------------------------------------------------------------------- actions
    def _nsenter(self, argv: Sequence[str]) -> list[str]:
        if self._pid1 is None:
            raise SandboxError("the sandbox is not running")
        self.merged  # noqa: B018 - raises unless PID 1 really sits in the overlay
        return self._box.nsenter(argv, root=True)

    def run(self, argv: Sequence[str], *, input: bytes | str | None = None, timeout: float = STAGE_TIMEOUT_S,
            env: Mapping[str, str] | None = None, check: bool = False) -> CommandResult:
        """Run ``argv`` as root inside the sandbox (all its namespaces, chrooted)."""
        if self._pid1 is None:
            raise SandboxError("the sandbox is not running")
        full_env = {"PATH": SANDBOX_PATH, "LANG": "C.UTF-8", "HOME": "/root", "TERM": "dumb", **(env or {})}
        cmd = self._nsenter(argv)
        data = input.encode() if isinstance(input, str) else input
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise SandboxError(f"timeout after {timeout} s: {list(argv)}\n{err.decode(errors='replace')}") from None
        result = CommandResult(list(argv), proc.returncode, out.decode(errors="replace"),
                               err.decode(errors="replace"), time.monotonic() - t0)
        if check and result.returncode != 0:
            raise SandboxError(f"{list(argv)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def write_file(self, path: str, data: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        """Create or replace ``path`` in the running sandbox, atomically.

        Why from inside (a chrooted ``sh``) rather than through ``merged``: symlinks in
        the sandbox then resolve inside the sandbox, so no path can reach the host.
        """
        if not path.startswith("/"):
            raise ValueError(f"sandbox paths are absolute, got {path!r}")
        script = ('set -e; d=$(dirname "$1"); mkdir -p "$d"; t="$d/.regauth-tmp.$$"; cat > "$t"; '
                  'chown "$2" "$t"; chmod "$3" "$t"; mv -f "$t" "$1"')
        self.run(["/bin/sh", "-c", script, "write_file", path, f"{uid}:{gid}", format(mode, "o")],
                 input=data, check=True, timeout=30)

    def read_file(self, path: str) -> bytes:
        """Read ``path`` in the running sandbox (from inside, like :meth:`write_file`)."""
        res = subprocess.run(self._nsenter(["cat", "--", path]), capture_output=True, timeout=30, check=False,
                             env={"PATH": SANDBOX_PATH, "LANG": "C.UTF-8"}, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise FileNotFoundError(f"{path} in the sandbox: {res.stderr.decode(errors='replace').strip()}")
        return res.stdout

    def serve(self, service: SandboxService) -> _NetnsHTTPServer:
        """Start ``service`` on 127.0.0.1:PORT inside this boot's netns (stopped by :meth:`stop`)."""
        if self._pid1 is None:
            raise SandboxError("the sandbox is not running")
        try:
            sock = self._box.call(listen_loopback, service.port)
        except OSError as exc:
            raise SandboxError(f"cannot listen on 127.0.0.1:{service.port} in the sandbox: {exc}") from exc
        server = _NetnsHTTPServer(sock, service.handler, service.tls)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"sandbox-svc-{service.port}", daemon=True)
        thread.start()
        self._servers.append((server, thread))
        return server


# ---------------------------------------------------------------------- cloud-init


@dataclasses.dataclass
class BootResult:
    """What one boot's four cloud-init stages did."""

    number: int
    stages: list[CommandResult]
    status: dict[str, Any] | None  # /run/cloud-init/status.json
    result: dict[str, Any] | None  # /run/cloud-init/result.json
    seconds: float
    upper_manifest: dict[str, tuple[str, int, int, int]] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def errors(self) -> list[str]:
        """Stage exit codes, and errors cloud-init recorded in status/result.json."""
        out = [f"boot {self.number}: `cloud-init {' '.join(s.argv[1:])}` exited {s.returncode}: "
               f"{s.stderr.strip()[-2000:]}" for s in self.stages if s.returncode != 0]
        for stage, info in ((self.status or {}).get("v1") or {}).items():
            if isinstance(info, dict) and info.get("errors"):
                out += [f"boot {self.number}: stage {stage}: {e}" for e in info["errors"]]
        for e in ((self.result or {}).get("v1") or {}).get("errors", []) or []:
            out.append(f"boot {self.number}: result: {e}")
        return sorted(set(out), key=out.index)


@dataclasses.dataclass
class CloudInitRun:
    """Everything a test asserts on after real cloud-init applied user-data.

    Files: :attr:`view` (``read_text``, ``read_bytes``, ``stat``, ``exists``,
    ``in_upper``, ``upper_files``) reads the machine as left after the last boot;
    :attr:`upper` is the raw upper dir (exactly what the boots wrote). While
    ``keep_running=True`` was asked, :attr:`sandbox` is alive and ``sandbox.merged``
    is the live root. Call :meth:`close` (or use ``with``) to delete everything.
    """

    sandbox: Sandbox
    boots: list[BootResult]
    log: str  # /var/log/cloud-init.log (all boots)
    output_log: str  # /var/log/cloud-init-output.log
    user_data: bytes
    datasource: str = "NoCloud"
    gce_metadata: Any = None  # the MetadataState used for datasource="GCE"

    @property
    def upper(self) -> Path:
        return self.sandbox.upper

    @property
    def view(self) -> OverlayView:
        return self.sandbox.view

    @property
    def merged(self) -> Path:
        return self.sandbox.merged

    def stat(self, path: str) -> FileStat:
        return self.view.stat(path)

    def read_text(self, path: str) -> str:
        return self.view.read_text(path)

    def read_bytes(self, path: str) -> bytes:
        return self.view.read_bytes(path)

    @property
    def warnings(self) -> list[str]:
        """WARNING/ERROR/CRITICAL records and tracebacks in cloud-init's log, without
        the records :data:`SANDBOX_NOISE` attributes to the sandbox itself."""
        return problem_records(self.log, SANDBOX_NOISE.get(self.datasource, ()))

    @property
    def all_warnings(self) -> list[str]:
        """Like :attr:`warnings`, sandbox noise included."""
        return problem_records(self.log)

    @property
    def errors(self) -> list[str]:
        return [e for b in self.boots for e in b.errors]

    def changes_in_boot(self, number: int, *, ignore: Sequence[str] = CLOUD_INIT_OWN_STATE) -> list[str]:
        """Paths whose content, mode or owner boot ``number`` changed (created/deleted too).

        Why: "a second boot changes nothing" is the idempotency claim for user-data;
        cloud-init's own per-boot bookkeeping (``ignore`` prefixes) is left out.
        """
        if not 2 <= number <= len(self.boots):
            raise ValueError(f"boot {number} has no previous boot to compare with")
        before, after = self.boots[number - 2].upper_manifest, self.boots[number - 1].upper_manifest
        changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        return sorted(p for p in changed if not p.startswith(tuple(ignore)))

    @property
    def user_data_ignored(self) -> bool:
        """True if the user-data had a cloud-config part but cloud-init applied none of it.

        Why: 22.4 given invalid YAML logs a warning but still reports "done" with no
        errors; the tell-tale is an empty ``cloud-config.txt`` for non-empty input.
        """
        from testbed.cloudinit_schema import split_user_data

        try:
            wanted = any(p.is_cloud_config and p.payload.strip() != b"#cloud-config"
                         for p in split_user_data(self.user_data))
        except Exception:  # noqa: BLE001 - undecodable input is "ignored" if nothing applied
            wanted = True
        if not wanted:
            return False
        host = self.view.resolve("/var/lib/cloud/instance/cloud-config.txt")
        if host is None:
            return True
        import yaml  # PyYAML: already a project dependency

        try:
            applied = yaml.safe_load(host.read_text())
        except yaml.YAMLError:
            return True
        return not applied

    def problems(self) -> list[str]:
        """Every reason to distrust this run; empty means a clean apply."""
        out = list(self.errors) + [f"log: {w}" for w in self.warnings]
        if self.user_data_ignored:
            out.append("user-data has a #cloud-config part but cloud-init applied nothing from it")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems()

    def close(self) -> None:
        self.sandbox.cleanup()

    def __enter__(self: _RunT) -> _RunT:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SANDBOX_CLOUD_CFG = """\
# Written by testbed/cloudinit_sandbox.py: what a test VM image would configure.
datasource_list: [{datasource}, None]
# Never let cloud-init rename anything (the sandbox has its own UTS namespace anyway).
preserve_hostname: true
manage_etc_hosts: false
# The sandbox root is an overlay, not a disk: nothing to resize (a real VM has one).
resize_rootfs: false
"""

GCE_DMI = {
    "product_name": "Google Compute Engine",
    "product_serial": "GoogleCloud-REGAUTHSANDBOX",
    "sys_vendor": "Google",
    "bios_vendor": "Google",
    "chassis_vendor": "Google",
    "product_uuid": "7f2f5c8e-0000-4000-8000-000000000001",
}


def _gce_state(user_data: bytes, gce_metadata: Any) -> Any:
    """A fake_metadata.MetadataState carrying ``user_data`` as the user-data attribute."""
    from testbed import fake_metadata as fm

    state = gce_metadata if isinstance(gce_metadata, fm.MetadataState) else fm.MetadataState(
        dict(gce_metadata) if gce_metadata is not None else None)
    try:
        state.set("instance/attributes/user-data", user_data.decode("utf-8"))
    except UnicodeDecodeError:  # gzip: GCE metadata values are text, so base64 it
        import base64

        state.set("instance/attributes/user-data", base64.b64encode(user_data).decode())
        state.set("instance/attributes/user-data-encoding", "base64")
    return state


def _gce_service(state: Any) -> SandboxService:
    from testbed import fake_metadata as fm

    base = fm.make_metadata_handler(state)

    class Handler(base):  # type: ignore[misc, valid-type]
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            ok = self.path.startswith("/computeMetadata/v1/instance/guest-attributes/")
            self.send_response(200 if ok else 404)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return SandboxService(Handler, hostnames=("metadata.google.internal",), port=80)


def _upper_manifest(upper: Path) -> dict[str, tuple[str, int, int, int]]:
    """sandbox path -> (sha256 or link target or "dir", mode, uid, gid) of the upper dir."""
    out: dict[str, tuple[str, int, int, int]] = {}
    for dirpath, dirs, files in os.walk(upper):
        for name in dirs + files:
            host = Path(dirpath) / name
            st = os.lstat(host)
            if statmod.S_ISREG(st.st_mode):
                digest = hashlib.sha256(host.read_bytes()).hexdigest()
            elif statmod.S_ISLNK(st.st_mode):
                digest = "-> " + os.readlink(host)
            else:
                digest = "dir" if statmod.S_ISDIR(st.st_mode) else f"special {st.st_rdev}"
            out["/" + str(host.relative_to(upper))] = (digest, statmod.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def _read_json(sb: Sandbox, path: str) -> dict[str, Any] | None:
    try:
        return json.loads(sb.read_file(path))
    except (OSError, ValueError):
        return None


def run_cloud_init(
    user_data: bytes,
    *,
    meta_data: str | None = None,
    datasource: str = "NoCloud",
    boots: int = 1,
    gce_metadata: Any = None,
    services: Sequence[SandboxService] = (),
    hosts: Mapping[str, str] | None = None,
    ca_pems: Sequence[bytes] = (),
    files: Mapping[str, bytes] | None = None,
    before_boot: Callable[[Sandbox, int], None] | None = None,
    after_boot: Callable[[Sandbox, int], None] | None = None,
    keep_running: bool = False,
    rootfs: Path | None = None,
) -> CloudInitRun:
    """Apply ``user_data`` with real cloud-init, ``boots`` times, in a fresh sandbox.

    ``datasource``: ``"NoCloud"`` (seed files) or ``"GCE"`` (fake metadata server at
    ``metadata.google.internal`` inside the sandbox; ``gce_metadata`` is a
    ``fake_metadata.MetadataState`` or a tree dict, default a plausible instance).
    ``meta_data``: NoCloud meta-data text (default: a fixed instance-id and
    local-hostname). Boot 2+ is a reboot with the same instance id: per-instance
    modules must not rerun (check with :meth:`CloudInitRun.changes_in_boot`).
    ``keep_running=True`` leaves the last boot alive (``run.sandbox.run(...)``).

    Hooks for the boot-time fetch tests: ``services`` (extra fake servers, e.g. the
    Secret Manager fake on ``secretmanager.googleapis.com:443``), ``hosts`` (more
    /etc/hosts entries), ``ca_pems`` (CAs the sandbox trusts), ``files`` (pre-existing
    image files, e.g. ``/etc/containerd/config.toml``), ``before_boot``/``after_boot``
    callbacks getting the live sandbox and boot number (1-based).
    The caller must ``close()`` the result (or use ``with``).
    """
    if datasource not in ("NoCloud", "GCE"):
        raise ValueError(f"datasource must be NoCloud or GCE, not {datasource!r}")
    if boots < 1:
        raise ValueError("boots must be >= 1")
    all_services = list(services)
    state = None
    if datasource == "GCE":
        state = _gce_state(user_data, gce_metadata)
        all_services.insert(0, _gce_service(state))
    sb = Sandbox(rootfs, hosts=hosts, ca_pems=ca_pems, services=all_services,
                 dmi=GCE_DMI if datasource == "GCE" else None)
    try:
        results = _boot_loop(sb, user_data, meta_data, datasource, boots, files, before_boot, after_boot,
                             keep_running)
        run = CloudInitRun(sb, results, "", "", user_data, datasource, state)
        run.log = run.view.read_text("/var/log/cloud-init.log") if run.view.exists("/var/log/cloud-init.log") else ""
        if run.view.exists("/var/log/cloud-init-output.log"):
            run.output_log = run.view.read_text("/var/log/cloud-init-output.log")
        return run
    except BaseException:
        sb.cleanup()
        raise


def _boot_loop(sb: Sandbox, user_data: bytes, meta_data: str | None, datasource: str, boots: int,
               files: Mapping[str, bytes] | None, before_boot: Callable[[Sandbox, int], None] | None,
               after_boot: Callable[[Sandbox, int], None] | None, keep_running: bool) -> list[BootResult]:
    results: list[BootResult] = []
    for number in range(1, boots + 1):
        t0 = time.monotonic()
        if number == 1:
            sb.start()
            sb.write_file("/etc/cloud/cloud.cfg.d/99-regauth-sandbox.cfg",
                          SANDBOX_CLOUD_CFG.format(datasource=datasource).encode())
            if datasource == "NoCloud":
                md = meta_data if meta_data is not None else (
                    f"instance-id: {DEFAULT_INSTANCE_ID}\nlocal-hostname: {SANDBOX_HOSTNAME}\n")
                sb.write_file("/var/lib/cloud/seed/nocloud/user-data", user_data, mode=0o600)
                sb.write_file("/var/lib/cloud/seed/nocloud/meta-data", md.encode(), mode=0o600)
            for path, data in (files or {}).items():
                sb.write_file(path, data)
        else:
            sb.reboot()
        if before_boot is not None:
            before_boot(sb, number)
        stages = [sb.run(["cloud-init", *stage]) for stage in CLOUD_INIT_STAGES]
        if after_boot is not None:
            after_boot(sb, number)
        results.append(BootResult(number, stages, _read_json(sb, "/run/cloud-init/status.json"),
                                  _read_json(sb, "/run/cloud-init/result.json"), time.monotonic() - t0,
                                  _upper_manifest(sb.upper)))
    if not keep_running:
        sb.stop()
    return results
