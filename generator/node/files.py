"""Files and the two-phase apply: read what is there, collect every edit, then write
atomically (keeping the original once) and restart what reads them."""

import contextlib
import os
from typing import Dict, Iterator, List, Optional

from .errors import ApplyError, log


def write_atomic(path: str, data: bytes, mode: int) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    tmp = os.path.join(directory, ".%s.regauth-tmp" % os.path.basename(path))
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
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


def keep_original(path: str) -> None:
    backup = path + ".regauth.orig"
    if os.path.exists(path) and not os.path.exists(backup):
        with open(path, "rb") as handle:
            write_atomic(backup, handle.read(), 0o600)


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
        raise ApplyError("%s is a directory where a file was expected" % path)


def read_text(full: str, shown: str) -> Optional[str]:
    data = read_bytes(full)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApplyError("cannot read %s: it is not UTF-8 text" % shown)


class Edit:
    """One file a step wants, compared with what is on disk now."""

    def __init__(self, root: str, path: str, data: bytes, mode: int, restart: bool = True, backup: bool = True):
        self.path, self.full, self.data, self.mode = path, root + path, data, mode
        self.restart, self.backup = restart, backup  # restart: the runtime reads it only at start
        self.before = read_bytes(self.full)
        self.before_mode = os.stat(self.full).st_mode & 0o7777 if self.before is not None else None

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
        edit = self.pending.get(self.root + path)
        if edit is not None:
            return edit.data.decode("utf-8")
        return read_text(self.root + path, path)


def commit(outcome: Outcome, do_restart: bool, final: Optional[dict] = None) -> None:
    """Write what changed, then restart; ``final`` (path -> Edit) drops edits a later
    step superseded by merging into the same file."""
    if outcome.skipped:
        log("%s: skipped: %s" % (outcome.label, outcome.skipped))
        return
    changed = [e for e in outcome.edits if e.changed and (final is None or final.get(e.full) is e)]
    if not changed:
        log("%s: %s already up to date (%s)" % (outcome.label, ", ".join(e.path for e in outcome.edits), outcome.summary))
    else:
        for edit in changed:
            if edit.before is not None and edit.backup:
                keep_original(edit.full)
            if edit.before == edit.data:
                os.chmod(edit.full, edit.mode)  # content right, mode wrong (e.g. a 0644 secret file)
            else:
                write_atomic(edit.full, edit.data, edit.mode)
        reread = any(e.restart and e.before != e.data for e in changed)
        what = restart_units(outcome.restart, do_restart) if outcome.restart and reread else "no restart needed"
        log("%s: %s updated (%s); %s" % (outcome.label, ", ".join(e.path for e in changed), outcome.summary, what))
    for note in outcome.notes:
        log("%s: %s" % (outcome.label, note))


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
            raise ApplyError("config written but %s is not there to restart %s" % (argv[0], unit))
        if result.returncode != 0:
            raise ApplyError("config written but `%s` failed: %s" % (" ".join(argv), result.stderr.strip()[:300]))
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
        "or set if_missing: skip (or write) for this target in the profile" % (runtime, missing)
    )


def cred_summary(creds: List[dict]) -> str:
    return ", ".join(sorted(c["host"] for c in creds)) or "no registries"


@contextlib.contextmanager
def lock(root: str, plan_path: str) -> Iterator[None]:
    """Hold the run's lock: cloud-init and the boot unit may start regauth-apply together."""
    import fcntl

    lock_dir = root + "/run/lock" if os.path.isdir(root + "/run/lock") else os.path.dirname(os.path.abspath(plan_path))
    with open(os.path.join(lock_dir, "regauth-apply.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
