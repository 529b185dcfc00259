"""Run the real Packer (Debian's 1.6.6) in tests: validate, fmt, and a real build.

Why a real build: `packer validate` only proves the HCL parses and the plugin
configs decode. Whether the provisioners really put the right bytes, modes and
unit symlinks on an image is only shown by running them. A cloud VM is out of reach
here, so `build_over_ssh` runs Packer's `null` builder over SSH against an sshd
inside a throw-away sandbox, an `NsBox` (testbed.nsbox):

    unshare --mount --net --pid --uts --ipc --fork --kill-child   (init script below)
      lo up, hostname set (the box)  -> 127.0.0.1 is the sandbox's, host untouched
      tmpfs on /run (private)        -> room for /run/sshd and the chroot mountpoint
      overlay(lower=rootfs, upper=tmpfs) on /run/regauth/root
      sshd -D -f <tmp>/sshd_config   -> host key, authorized key, config all made per
                                        test; root by key only; ChrootDirectory = the
                                        overlay, so every command and upload lands in
                                        the copy-on-write view, never on the host
    nsenter --net -- packer build    -> Packer shares only the network namespace

The lower layer is the debootstrapped Debian rootfs of `tests.support.rootfs`
(ensure_rootfs) when that module is present, else the host's own `/` (an overlay
over it: writes still go to the tmpfs upper dir only).

Stopping is the box's: SIGKILL to the namespace's init ends every process in it,
the mount namespace with its overlay and tmpfs goes with the last one, and the temp
dir is removed (a crashed run's is removed by the next run); nothing outlives a
crashed test process either. Packer is not in the PID namespace: it runs in its own
session and is killed as a group on timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testbed.nsbox import ALL_NAMESPACES, SANDBOX_PATH, NsBox, NsBoxError, missing_tools, new_workdir
from tests.support.prereq import require

REPO = Path(__file__).resolve().parents[2]

#: The build block of a template passed to `build_over_ssh` must list this source;
#: the harness writes its definition (host, port, key) next to the template.
SANDBOX_SOURCE = "source.null.sandbox"
SANDBOX_SOURCE_FILE = "zz-regauth-sandbox-source.pkr.hcl"

_CHROOT = "/run/regauth/root"  # path of the overlay inside the sandbox's mount ns
_UPPER = "/run/regauth/rw/upper"


# --------------------------------------------------------------------------- policy
def cache_dir() -> Path:
    """Same rule as scripts/deps/*.sh: $REGAUTH_CACHE or <repo>/.cache."""
    return Path(os.environ.get("REGAUTH_CACHE") or REPO / ".cache")


# --------------------------------------------------------------------------- binary
def _version_key(path: Path) -> tuple[int, ...]:
    parts = path.parents[2].name.split(".")
    return tuple(int(p) if p.isdigit() else 0 for p in parts)


def packer_binary() -> Path:
    """The Packer unpacked by scripts/deps/packer.sh (never a system-wide one).

    $REGAUTH_PACKER overrides, e.g. to try a newer Packer by hand.
    """
    override = os.environ.get("REGAUTH_PACKER")
    if override:
        path = Path(override)
        require(path.is_file() and os.access(path, os.X_OK), f"REGAUTH_PACKER={override} is not executable")
        return path
    found = sorted(cache_dir().glob("packer/*/usr/bin/packer"), key=_version_key)
    require(bool(found), f"no packer in {cache_dir()}/packer: run `sh scripts/deps/packer.sh` as root")
    return found[-1]


def packer_env(home: Path) -> dict[str, str]:
    """A clean environment: no checkpoint call, no plugin discovery outside `home`.

    Starting from an empty environment (not os.environ) also keeps the host's cloud
    credentials, proxies and PACKER_* settings out of the run.
    """
    for sub in ("home", "plugins", "tmp", "cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return {
        "PATH": SANDBOX_PATH,
        "LANG": "C.UTF-8",
        "HOME": str(home / "home"),
        "TMPDIR": str(home / "tmp"),
        "CHECKPOINT_DISABLE": "1",
        "PACKER_PLUGIN_PATH": str(home / "plugins"),
        "PACKER_CACHE_DIR": str(home / "cache"),
        "PACKER_NO_COLOR": "1",
    }


def _offline_prefix() -> list[str]:
    """An empty network namespace when we may make one: any network use fails fast."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        return ["unshare", "--net", "--"]
    return []


def _run_offline(args: Sequence[str], cwd: Path, env_extra: Mapping[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="regauth-packer-") as tmp:
        env = packer_env(Path(tmp))
        env.update(env_extra or {})
        return subprocess.run(
            [*_offline_prefix(), str(packer_binary()), *args],
            cwd=cwd, env=env, capture_output=True, timeout=timeout, check=False,
            encoding="utf-8", errors="replace",
        )


# --------------------------------------------------------------------------- var files
def hcl_string(value: str) -> str:
    """Quote `value` as an HCL string literal whose evaluated value is `value` exactly.

    JSON's escapes are a subset of HCL's; HCL additionally interpolates `${` and `%{`,
    so those are doubled. ensure_ascii=False because HCL has no surrogate pairs.
    """
    body = json.dumps(value, ensure_ascii=False)[1:-1]
    return '"' + body.replace("${", "$${").replace("%{", "%%{") + '"'


def write_var_file(path: Path, variables: Mapping[str, str]) -> Path:
    """A 0600 .pkrvars.hcl: values travel in a file, never in Packer's argv."""
    text = "".join(f"{name} = {hcl_string(value)}\n" for name, value in sorted(variables.items()))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


# --------------------------------------------------------------------------- validate / fmt
def copy_template(src: Path, dest: Path, exclude: Sequence[str] = ()) -> Path:
    """Copy a template dir, leaving out top-level files named in `exclude`.

    Why: Packer loads every *.pkr.hcl in a directory, and 1.6.6 rejects the
    `required_plugins` file that modern Packer needs, so tests drop it for 1.6.6.
    """
    src = Path(src).resolve()

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if n in exclude] if Path(directory) == src else []

    shutil.copytree(src, dest, symlinks=True, ignore=ignore)
    return dest


def validate(template_dir: Path, variables: Mapping[str, str] | None = None, *,
             exclude: Sequence[str] = (), syntax_only: bool = False) -> subprocess.CompletedProcess[str]:
    """`packer validate` offline. 1.6.6 prints nothing and exits 0 when valid.

    Runs on a copy (minus `exclude`); variables go in a 0600 var-file, not argv.
    """
    with tempfile.TemporaryDirectory(prefix="regauth-packer-validate-") as tmp:
        work = copy_template(Path(template_dir), Path(tmp) / "template", exclude)
        args = ["validate"]
        if syntax_only:
            args.append("-syntax-only")
        if variables:
            args.append(f"-var-file={write_var_file(Path(tmp) / 'vars.pkrvars.hcl', variables)}")
        return _run_offline([*args, "."], cwd=work)


def fmt_check(template_dir: Path) -> subprocess.CompletedProcess[str]:
    """`packer fmt -check -diff DIR`: exit 3 and a diff when it would reformat."""
    template_dir = Path(template_dir).resolve()
    return _run_offline(["fmt", "-check", "-diff", str(template_dir)], cwd=template_dir)


# --------------------------------------------------------------------------- sandbox
# Runs as the box's PID 1 (loopback up, hostname set), seeing the host's filesystem.
_INIT_SCRIPT = r"""
T="$1"; LOWER="$2"
mount -t tmpfs -o mode=0755,size=64m tmpfs /run
mkdir -p /run/sshd /run/regauth/root /run/regauth/rw
mount -t tmpfs -o mode=0755,size=512m tmpfs /run/regauth/rw
mkdir /run/regauth/rw/upper /run/regauth/rw/work
mount -t overlay regauth -o "lowerdir=$LOWER,upperdir=/run/regauth/rw/upper,workdir=/run/regauth/rw/work" /run/regauth/root
R=/run/regauth/root
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755,size=16m tmpfs "$R/run"
mount -t tmpfs -o mode=0755,size=4m tmpfs "$R/dev"
for d in null zero full random urandom tty; do
    touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"
done
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t tmpfs -o mode=1777,size=16m tmpfs "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
/usr/sbin/sshd -D -e -f "$T/sshd_config" 2>>"$T/sshd.log" &
echo READY
wait
"""

_SSHD_CONFIG = """\
# Test-only sshd: loopback of a private network namespace, key login, chrooted.
ListenAddress 127.0.0.1:22
HostKey {tmp}/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile {tmp}/authorized_keys
# The key files live under /tmp (mode 1777), which StrictModes rejects.
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers root
ChrootDirectory {chroot}
Subsystem sftp internal-sftp
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
UseDNS no
# INFO, not VERBOSE: VERBOSE makes sshd print "Changed root directory" into the session.
LogLevel INFO
"""

def default_rootfs() -> tuple[Path, str]:
    """The lower layer: the shared Debian rootfs when available, else the host's /."""
    try:
        from tests.support.rootfs import ensure_rootfs  # type: ignore[import-not-found]
    except ImportError:
        return Path("/"), "host-overlay"
    return Path(ensure_rootfs()), "debian-rootfs"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "regauth-test", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


def _listening_on_22(pid: int) -> bool:
    """True once sshd listens on 127.0.0.1:22 in `pid`'s network namespace."""
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(f.split()[1] == "0100007F:0016" and f.split()[3] == "0A" for f in lines)


class Sandbox:
    """Namespaces + overlay + sshd; see the module docstring for why each part."""

    def __init__(self, lower: Path, lower_kind: str) -> None:
        self.lower = lower
        self.lower_kind = lower_kind
        self.tmp = new_workdir("regauth-packer-sandbox-")
        self.client_key = self.tmp / "client_key"
        self._box = NsBox(_INIT_SCRIPT, [self.tmp, lower], hostname="regauth-sandbox",
                          name="regauth-packer-sandbox", workdir=self.tmp)

    # -- lifecycle
    def start(self, timeout: float = 20) -> Sandbox:
        _keygen(self.tmp / "ssh_host_ed25519_key")
        _keygen(self.client_key)
        shutil.copyfile(self.client_key.with_suffix(".pub"), self.tmp / "authorized_keys")
        (self.tmp / "sshd_config").write_text(_SSHD_CONFIG.format(tmp=self.tmp, chroot=_CHROOT))
        deadline = time.monotonic() + timeout
        try:
            self._box.start(timeout)
            while self.alive and time.monotonic() < deadline:
                if _listening_on_22(self.ns_pid):
                    return self
                time.sleep(0.02)
        except NsBoxError:
            pass  # the box's stderr is in diagnostics()
        detail = self.diagnostics()
        self.stop()
        raise RuntimeError(f"sandbox sshd did not come up:\n{detail}")

    @property
    def ns_pid(self) -> int:
        """Host PID of the namespace's init (0 when stopped)."""
        return self._box.pid1 or 0

    def stop(self) -> None:
        """Kill everything in the namespaces and remove the temp dir. Idempotent."""
        self._box.discard()

    @property
    def alive(self) -> bool:
        return self._box.running

    # -- looking inside
    def host_path(self, path: str) -> Path:
        """Host path of `path` in the chroot (via /proc/PID/root; sandbox must be alive).

        Do not resolve symlinks through it: an absolute link target would be looked
        up on the host. Use os.lstat / os.readlink.
        """
        if not self.alive:
            raise RuntimeError("sandbox is stopped")
        return Path(f"/proc/{self.ns_pid}/root{_CHROOT}") / path.lstrip("/")

    @property
    def upper(self) -> Path:
        """The overlay's upper dir: exactly what the build added or changed."""
        if not self.alive:
            raise RuntimeError("sandbox is stopped")
        return Path(f"/proc/{self.ns_pid}/root{_UPPER}")

    def nsenter(self, argv: Sequence[str], *, net_only: bool = False) -> list[str]:
        return self._box.nsenter(argv, spaces=("--net",) if net_only else ALL_NAMESPACES)

    def run(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `sh -c command` as root chrooted in the sandbox (all its namespaces)."""
        argv = self.nsenter(["chroot", _CHROOT, "/bin/sh", "-c", command])
        return subprocess.run(argv, capture_output=True, timeout=timeout, check=False,
                              encoding="utf-8", errors="replace",
                              env={"PATH": SANDBOX_PATH, "LANG": "C.UTF-8", "HOME": "/root"})

    def has(self, path: str) -> bool:
        return os.path.lexists(self.host_path(path))

    def diagnostics(self) -> str:
        parts = [f"--- init\n{self._box.log_text()[-4000:]}"]
        sshd_log = self.tmp / "sshd.log"
        if sshd_log.exists():
            parts.append(f"--- sshd.log\n{sshd_log.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)


# --------------------------------------------------------------------------- build
@dataclass
class FileInfo:
    """What a test asserts about a file on the image."""

    path: str
    mode: int  # permission bits only, e.g. 0o600
    uid: int
    gid: int
    kind: str  # "file", "dir", "symlink", "other"
    data: bytes | None  # contents for files, None otherwise
    target: str | None  # link target for symlinks


@dataclass
class BuildResult:
    """Outcome of `packer build`, with the sandbox still alive for inspection.

    Use as a context manager (or call close()): the sandbox's processes and mounts
    live until then so the test can look at files and run commands in it.
    """

    returncode: int
    output: str  # packer's stdout+stderr (the UI a user sees), -color=false
    log: str  # PACKER_LOG=1 debug log (remote commands, uploads)
    seconds: float
    rootfs_kind: str  # "debian-rootfs" or "host-overlay"
    file_transfer: str  # "scp" or "sftp"
    sandbox: Sandbox = field(repr=False)

    def __enter__(self) -> BuildResult:  # noqa: PYI034 (typing.Self needs 3.11)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sandbox.stop()

    def check(self) -> BuildResult:
        """Raise with packer's output (and sshd's log) if the build failed."""
        if self.returncode != 0:
            raise AssertionError(
                f"packer build exited {self.returncode}\n{self.output[-6000:]}\n{self.sandbox.diagnostics()}"
            )
        return self

    def file(self, path: str) -> FileInfo:
        """lstat + contents of `path` inside the image (raises FileNotFoundError)."""
        host = self.sandbox.host_path(path)
        st = os.lstat(host)
        if stat.S_ISLNK(st.st_mode):
            return FileInfo(path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, "symlink", None, os.readlink(host))
        if stat.S_ISREG(st.st_mode):
            return FileInfo(path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, "file", host.read_bytes(), None)
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "other"
        return FileInfo(path, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, kind, None, None)

    def exists(self, path: str) -> bool:
        return self.sandbox.has(path)

    def changed_files(self) -> list[str]:
        """Image paths the build created or modified (from the overlay's upper dir)."""
        upper = self.sandbox.upper
        found = []
        for dirpath, dirnames, filenames in os.walk(upper):
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                if not full.is_dir() or full.is_symlink():
                    found.append("/" + str(full.relative_to(upper)))
        return sorted(found)

    def grep_image(self, needle: bytes) -> list[str]:
        """Changed files whose bytes contain `needle` (e.g. a secret canary)."""
        hits = []
        for path in self.changed_files():
            host = self.sandbox.upper / path.lstrip("/")
            if host.is_file() and not host.is_symlink() and needle in host.read_bytes():
                hits.append(path)
        return hits

    def run(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a shell command as root inside the image (chroot, sandbox namespaces)."""
        return self.sandbox.run(command, timeout=timeout)


def _sandbox_source(sandbox: Sandbox, file_transfer: str) -> str:
    return (
        'source "null" "sandbox" {\n'
        '  communicator             = "ssh"\n'
        '  ssh_host                 = "127.0.0.1"\n'
        "  ssh_port                 = 22\n"
        '  ssh_username             = "root"\n'
        f"  ssh_private_key_file     = {hcl_string(str(sandbox.client_key))}\n"
        f'  ssh_file_transfer_method = "{file_transfer}"\n'
        '  ssh_timeout              = "30s"\n'
        "}\n"
    )


def _prepare_build_dir(template_dir: Path, dest: Path, sandbox: Sandbox, file_transfer: str,
                       exclude: Sequence[str]) -> Path:
    """Copy the template (so `path.root` is the copy) and add the sandbox's source."""
    copy_template(template_dir, dest, exclude)
    source_file = dest / SANDBOX_SOURCE_FILE
    if source_file.exists():
        raise ValueError(f"{template_dir} already has {SANDBOX_SOURCE_FILE}")
    source_file.write_text(_sandbox_source(sandbox, file_transfer))
    return dest


def _run_packer_build(build_dir: Path, var_file: Path | None, sandbox: Sandbox,
                      timeout: float) -> tuple[int, str, str]:
    work = sandbox.tmp / "packer"
    env = packer_env(work)
    env.update({"PACKER_LOG": "1", "PACKER_LOG_PATH": str(work / "packer.log")})
    args = [str(packer_binary()), "build", "-color=false", "-only=null.sandbox"]
    if var_file is not None:
        args.append(f"-var-file={var_file}")
    args.append(".")
    # Own session so a timeout can kill Packer and its plugin processes together.
    proc = subprocess.Popen(sandbox.nsenter(args, net_only=True), cwd=build_dir, env=env,
                            encoding="utf-8", errors="replace", stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        output += f"\n[harness] packer build killed after {timeout} s"
    log_path = work / "packer.log"
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    return proc.returncode, output, log


def _require_sandbox_tools() -> None:
    require(os.geteuid() == 0, "the Packer SSH sandbox needs root (namespaces, mounts)")
    absent = missing_tools() + [t for t in ("ssh-keygen", "chroot") if shutil.which(t, path=SANDBOX_PATH) is None]
    require(not absent, f"{', '.join(absent)} not found")
    require(os.access("/usr/sbin/sshd", os.X_OK), "/usr/sbin/sshd missing: run `sh scripts/deps/packer.sh`")


def build_over_ssh(template_dir: Path, variables: Mapping[str, str] | None = None, *,
                   exclude: Sequence[str] = (), rootfs: Path | None = None,
                   timeout: float = 300) -> BuildResult:
    """Run a real `packer build` of `template_dir` against a fresh sandbox.

    The template's build block must list `source.null.sandbox` (SANDBOX_SOURCE);
    the harness defines that source. Other sources in the directory (e.g. the
    googlecompute one) may stay: only null.sandbox is built (-only). `variables`
    go through a 0600 var-file; top-level files in `exclude` are left out (e.g.
    the required_plugins file 1.6.6 rejects). `rootfs` overrides the lower layer.
    Returns with the sandbox alive: use `with build_over_ssh(...) as result:`.
    """
    _require_sandbox_tools()
    packer_binary()  # resolved early so a missing Packer skips before any sandbox work
    lower, kind = (Path(rootfs), "given-rootfs") if rootfs is not None else default_rootfs()
    sandbox = Sandbox(lower, kind)
    try:
        sandbox.start()
        transfer = "scp" if sandbox.has("/usr/bin/scp") else "sftp"
        build_dir = _prepare_build_dir(Path(template_dir), sandbox.tmp / "template", sandbox, transfer, exclude)
        var_file = write_var_file(sandbox.tmp / "vars.pkrvars.hcl", variables) if variables else None
        started = time.monotonic()
        code, output, log = _run_packer_build(build_dir, var_file, sandbox, timeout)
        seconds = time.monotonic() - started
    except BaseException:
        sandbox.stop()
        raise
    return BuildResult(code, output, log, seconds, kind, transfer, sandbox)
