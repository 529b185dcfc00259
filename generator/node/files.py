"""Files and the two-phase apply: read what is there, collect every edit, then write
atomically (keeping the original once) and restart what reads them."""

import contextlib
import os
import time
from typing import Dict, Iterator, List, Optional, Tuple

from .errors import ApplyError, log


def make_parents(directory: str) -> List[str]:
    """Create ``directory`` and its missing parents (0755); the ones created, outermost first
    (a rollback removes exactly those)."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for folder in reversed(missing):
        os.mkdir(folder, 0o755)
    return list(reversed(missing))


def write_atomic(path: str, data: bytes, mode: int, owner: Optional[Tuple[int, int]] = None) -> List[str]:
    """Write beside, fsync, rename over ``path``; ``owner`` (uid, gid) is kept on the new
    inode.  Returns the folders it had to create."""
    directory = os.path.dirname(path) or "."
    created = make_parents(directory)
    tmp = os.path.join(directory, ".%s.regauth-tmp" % os.path.basename(path))
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if owner is not None:
                os.fchown(handle.fileno(), owner[0], owner[1])
            os.fchmod(handle.fileno(), mode)  # after fchown, which clears set-id bits
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return created


def keep_original(path: str) -> bool:
    """Keep the file once as FILE.regauth.orig (0600: it may hold an old secret); True when made now."""
    backup = path + ".regauth.orig"
    if os.path.exists(path) and not os.path.exists(backup):
        with open(path, "rb") as handle:
            write_atomic(backup, handle.read(), 0o600)
        return True
    return False


def restart(unit: str, policy: str, enabled: bool) -> str:
    """Restart ``unit`` if it is running (kept for callers of the one-unit form)."""
    return restart_units({"policy": policy, "units": [unit]}, enabled)


# Every step is *prepared* (credentials fetched, new file contents computed and
# checked) before any step *commits* (writes, restarts), so a profile with several
# targets either changes all of them or none.


def read_bytes(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ApplyError("%s is a directory where a file was expected" % path, code="node-file-type")


def read_text(full: str, shown: str) -> Optional[str]:
    data = read_bytes(full)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApplyError("cannot read %s: it is not UTF-8 text" % shown, code="node-file-type")


def node_path(root: str, path: str) -> str:
    """``path`` with every symlink resolved the way the node sees it (an absolute link
    target is taken under ``root``), so a symlinked config is written through to its
    target and the link itself stays."""
    parts = [p for p in path.split("/") if p]
    done = ""
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == ".":
            continue
        if name == "..":
            done = os.path.dirname(done).rstrip("/")  # "" is the root
            continue
        candidate = done + "/" + name
        if os.path.islink(root + candidate):
            hops += 1
            if hops > 40:
                raise ApplyError("%s: too many levels of symbolic links; fix the links" % path, code="node-file-type")
            target = os.readlink(root + candidate)
            if target.startswith("/"):
                done = ""
            parts = [p for p in target.split("/") if p] + parts
            continue
        done = candidate
    return done or "/"


def kept_mode(before: Optional[int], wanted: int) -> Tuple[int, bool]:
    """The mode to write: a new file gets ``wanted``; an existing one keeps its own, tightened
    (group/other bits dropped) only when it now holds a secret (``wanted`` is owner-only)."""
    if before is None:
        return wanted, False
    if wanted & 0o077 == 0 and before & 0o077:
        return before & ~0o077, True
    return before, False


class Edit:
    """One file a step wants, compared with what is on disk now."""

    def __init__(self, root: str, path: str, data: bytes, mode: int, restart: bool = True, backup: bool = True):
        self.path, self.data = path, data
        self.target = node_path(root, path)  # differs from path when a symlink is written through
        self.full = root + self.target
        self.restart, self.backup = restart, backup  # restart: the runtime reads it only at start
        link = root + node_path(root, os.path.dirname(path)) + "/" + os.path.basename(path)
        if os.path.islink(link) and not os.path.exists(self.full):
            raise ApplyError("%s is a symlink to %s, which does not exist; fix or remove the link" % (path, self.target), code="node-file-type")
        self.before = read_bytes(self.full)
        st = os.stat(self.full) if self.before is not None else None
        self.before_mode = st.st_mode & 0o7777 if st is not None else None
        self.owner = (st.st_uid, st.st_gid) if st is not None else None
        self.mode, self.tightened = kept_mode(self.before_mode, mode)

    @property
    def changed(self) -> bool:
        return self.before != self.data or self.before_mode != self.mode


class Outcome:
    """What one plan step will do once every step has been prepared."""

    def __init__(self, label: str, restart: Optional[dict] = None):
        self.label = label
        self.restart = restart  # {"policy", "units", "command"?} or None: nothing to restart
        self.summary = ""
        self.edits: List[Edit] = []
        self.notes: List[str] = []
        self.skipped = ""

    def add(self, ctx: "Context", path: str, data: bytes, mode: int, restart: bool = True) -> None:
        edit = Edit(ctx.root, path, data, mode, restart)
        ctx.pending[edit.full] = edit
        self.edits.append(edit)


class Context:
    """One run: where the node's files are, how to fetch, and what earlier steps will
    write (two targets may merge into one file, e.g. CRI-O's auth file pointed at
    kubelet's config.json: the later merge starts from the earlier one's result)."""

    def __init__(self, root: str, fetcher: Optional[object], do_restart: bool = True):
        self.root, self.fetcher, self.do_restart = root, fetcher, do_restart
        self.pending: Dict[str, Edit] = {}

    def read(self, path: str) -> Optional[str]:
        full = self.root + node_path(self.root, path)
        edit = self.pending.get(full)
        if edit is not None:
            return edit.data.decode("utf-8")
        return read_text(full, path)


class Undo:
    """How to put one file back as it was before this run."""

    def __init__(self, edit: Edit):
        self.edit = edit
        self.created_dirs: List[str] = []
        self.backup_made = False


def _write(edit: Edit, undo: Undo) -> None:
    if edit.before is not None and edit.backup:
        undo.backup_made = keep_original(edit.full)
    if edit.before == edit.data:
        os.chmod(edit.full, edit.mode)  # content right, mode wrong (e.g. a 0644 secret file)
    else:
        undo.created_dirs = write_atomic(edit.full, edit.data, edit.mode, edit.owner)


def _restore(undo: Undo) -> None:
    edit = undo.edit
    if edit.before is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(edit.full)
    elif read_bytes(edit.full) != edit.before or os.stat(edit.full).st_mode & 0o7777 != edit.before_mode:
        write_atomic(edit.full, edit.before, edit.before_mode, edit.owner)  # type: ignore[arg-type]
    if undo.backup_made:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(edit.full + ".regauth.orig")
    for folder in reversed(undo.created_dirs):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def write_all(edits: List[Edit]) -> None:
    """Write every edit or none: files the runtime reads only at start (the main config)
    go last, so hosts.toml, CA files and drop-ins are in place before it; a failure at
    any file puts back every file already written (content, mode, owner) and removes
    the backups and folders this run made."""
    order = sorted(range(len(edits)), key=lambda i: (edits[i].restart, i))
    done: List[Undo] = []
    try:
        for index in order:
            undo = Undo(edits[index])
            done.append(undo)
            _write(edits[index], undo)
    except (OSError, ApplyError) as exc:
        cause = str(exc) if isinstance(exc, ApplyError) else "%s on %s" % (exc.strerror, exc.filename)
        broken = []
        for undo in reversed(done):
            try:
                _restore(undo)
            except OSError as again:
                broken.append("%s (%s)" % (undo.edit.path, again.strerror))
        if broken:
            raise ApplyError("%s while writing; restoring FAILED for %s: restore them from FILE.regauth.orig" % (cause, ", ".join(broken)), code="node-write-failed")
        raise ApplyError("%s while writing; every file written before it was restored, nothing was changed" % cause, code="node-write-failed")


def commit_all(outcomes: List["Outcome"], do_restart: bool, final: Optional[dict] = None) -> List[tuple]:
    """Write what changed in every outcome (all or nothing, :func:`write_all`), then
    restart; ``final`` (path -> Edit) drops edits a later step superseded by merging
    into the same file.  Returns (paths written, what was restarted) per outcome that
    changed, for the refresh's one-line summary."""
    changes = []
    done = []
    for outcome in outcomes:
        if outcome.skipped:
            changes.append((outcome, []))
            continue
        changes.append((outcome, [e for e in outcome.edits if e.changed and (final is None or final.get(e.full) is e)]))
    write_all([edit for _, changed in changes for edit in changed])
    for outcome, changed in changes:
        if outcome.skipped:
            log("%s: skipped: %s" % (outcome.label, outcome.skipped))
            continue
        for edit in changed:
            if edit.target != edit.path:
                log("%s: %s is a symlink; wrote through to %s (the link is kept)" % (outcome.label, edit.path, edit.target))
            if edit.tightened:
                log("%s: %s now holds a secret: mode %04o tightened to %04o" % (outcome.label, edit.path, edit.before_mode, edit.mode))
        if not changed:
            log("%s: %s already up to date (%s)" % (outcome.label, ", ".join(e.path for e in outcome.edits), outcome.summary))
        else:
            reread = any(e.restart and e.before != e.data for e in changed)
            what = restart_units(outcome.restart, do_restart) if outcome.restart and reread else "no restart needed"
            log("%s: %s updated (%s); %s" % (outcome.label, ", ".join(e.path for e in changed), outcome.summary, what))
            done.append(([e.path for e in changed], what))
        for note in outcome.notes:
            log("%s: %s" % (outcome.label, note))
    return done


def restart_units(spec: dict, enabled: bool) -> str:
    """Restart each unit of ``spec`` that is running (``command`` may replace systemctl)."""
    import subprocess

    units = spec.get("units") or []
    if not enabled or spec.get("policy", "if-running") == "never" or not units:
        return "restart skipped (disabled)"
    try:
        active = [u for u in units if subprocess.run(["systemctl", "is-active", "--quiet", u], check=False).returncode == 0]
    except FileNotFoundError:
        return "restart skipped (no systemctl)"
    if not active:
        return "%s not running; it reads the new config when it starts" % " / ".join(units)
    for unit in active:
        argv = [a.replace("{unit}", unit) for a in spec["command"]] if spec.get("command") else ["systemctl", "restart", unit]
        try:
            result = subprocess.run(argv, check=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        except FileNotFoundError:
            raise ApplyError("config written but %s is not there to restart %s" % (argv[0], unit), code="node-restart-failed")
        if result.returncode != 0:
            raise ApplyError("config written but `%s` failed: %s" % (" ".join(argv), result.stderr.strip()[:300]), code="node-restart-failed")
    return "%s restarted" % ", ".join(active)


BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/snap/bin")


def runtime_missing(step: dict, root: str) -> str:
    """'' when the runtime is installed (any binary or marker path exists), else what was looked for."""
    detect = step.get("detect") or {}
    looked = []
    for name in detect.get("binaries", []):
        if any(os.path.exists(root + d + "/" + name) for d in BIN_DIRS):
            return ""
        looked.append(name)
    for path in detect.get("paths", []):
        if os.path.exists(root + path):
            return ""
        looked.append(path)
    return ", ".join(looked)


def proceed(step: dict, ctx: Context, outcome: Outcome) -> bool:
    """Apply ``if_missing`` on a node without the runtime: write anyway, skip, or fail."""
    missing = runtime_missing(step, ctx.root)
    if not missing:
        return True
    policy = step.get("if_missing", "write")
    runtime = step.get("runtime", step.get("kind"))
    if policy == "write":
        outcome.notes.append("%s is not installed yet (no %s); its files are written for when it is" % (runtime, missing))
        return True
    if policy == "skip":
        outcome.skipped = "%s is not installed (no %s; if_missing: skip)" % (runtime, missing)
        return False
    raise ApplyError(
        "%s is not installed on this node (looked for %s); install it before regauth-apply runs, "
        "or set if_missing: skip (or write) for this target in the profile" % (runtime, missing), code="node-runtime-missing"
    )


def cred_summary(creds: List[dict]) -> str:
    return ", ".join(sorted(c["host"] for c in creds)) or "no registries"


LOCK_DIR = "/run/regauth"


@contextlib.contextmanager
def lock(root: str, wait: float) -> Iterator[None]:
    """Hold the run's lock: cloud-init and the boot unit may start regauth-apply together.

    The lock is the directory ROOT/run/regauth itself (flock on it: no lock file to
    leave behind), root-only (0700, owned by us) so no other user can hold it or plant
    a symlink there, opened with O_NOFOLLOW, and waited for at most ``wait`` seconds."""
    import fcntl

    path = root + LOCK_DIR
    make_parents(os.path.dirname(path))
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ApplyError("cannot open the lock directory %s (%s): it must be a directory, not a symlink; remove it and run again" % (path, exc.strerror), code="node-lock")
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise ApplyError(
                "the lock directory %s is not private (owner uid %d, mode %04o); it must belong to uid %d with mode 0700: "
                "remove it and run again" % (path, st.st_uid, st.st_mode & 0o7777, os.geteuid()), code="node-lock"
            )
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ApplyError(
                        "another regauth-apply has held %s for %gs; let it finish (ps -C regauth-apply) or raise --lock-timeout" % (path, wait), code="node-lock"
                    )
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)
