"""The one place that writes output: a whole ``DIR/NAME/`` appears at once or not at all.

Everything is staged in a sibling temp directory, then swapped in with
``renameat2(RENAME_EXCHANGE)`` where Linux offers it (readers never see a missing or
half-filled folder), falling back to two renames.  On any failure the staging
directory is removed and the previous output is untouched.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from generator.errors import RuntimeFailure
from generator.messages import runtime as R
from generator.outputs.manifest import OutputFile

_AT_FDCWD = -100
_LINK_MIN = 4096  # below this a second copy costs less than remembering the first
_RENAME_EXCHANGE = 2


@lru_cache(maxsize=1)
def _renameat2():  # type: ignore[no-untyped-def]
    # CDLL(None) is the running program, which links libc: no find_library, which
    # would run ldconfig in a subprocess (~10 ms of a cold start).
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False when the platform can't."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def stage_tree(target: Path, files: list[OutputFile]) -> Path:
    """Write ``files`` into a new hidden sibling of ``target``; nothing visible changes yet."""
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.regauth-", dir=parent))
    except OSError as exc:
        raise RuntimeFailure(f"cannot create output folder {parent}: {exc.strerror}", "choose a writable folder with -o DIR", code=R.OUTPUT_FOLDER.code) from None
    try:
        os.chmod(stage, 0o755)
        # Each folder once, parents first: a fleet creates ~17 per profile, and each
        # system call here is a full path walk on the machine's filesystem.
        folders = {parent for f in files for parent in Path(f.relpath).parents if parent != Path(".")}
        for folder in sorted(folders, key=lambda d: len(d.parts)):
            os.mkdir(stage / folder)
        written: dict[tuple[int, bytes], Path] = {}
        for f in files:
            dest = stage / f.relpath
            # The same bytes with the same mode twice in one tree (the apply script in
            # rootfs/ and in packer/files/, ~35 KB) are one file with two names: a
            # fleet writes a third less.  Both names read the same bytes, which is all
            # Packer's file provisioner, cloud-init tooling, tar and rsync ever see.
            twin = written.get((f.mode, f.data)) if len(f.data) >= _LINK_MIN else None
            if twin is None or not _link(twin, dest):
                _write_file(dest, f.data, f.mode)
            if twin is None and len(f.data) >= _LINK_MIN:
                written[(f.mode, f.data)] = dest
    except OSError as exc:
        discard(stage)
        raise _write_failed(target, exc) from None
    except BaseException:
        discard(stage)
        raise
    return stage


def _write_file(dest: Path, data: bytes, mode: int) -> None:
    # Created with its final mode so a secret is never briefly world-readable; fchmod
    # then undoes the umask (the mode is the output's contract).
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _link(existing: Path, dest: Path) -> bool:
    """Hard-link ``dest`` to ``existing``; False where the filesystem has no hard links."""
    try:
        os.link(existing, dest)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            return False
        raise
    return True


def commit(stage: Path, target: Path) -> None:
    """Put a staged tree in place of ``target`` (atomically where Linux allows)."""
    commit_all([(stage, target)])


def commit_all(pairs: list[tuple[Path, Path]]) -> None:
    """Put every staged tree in place of its target: all of them, or (on failure) none.

    Why two phases: a fleet render swaps many folders; if the third swap fails
    (disk full, permissions), the first two must go back, or the fleet would be
    half old, half new.  Previous trees are kept until every swap has succeeded.
    """
    done: list[tuple[Path, Path, Path | None]] = []  # (stage, target, where the previous tree went)
    failed_at = pairs[0][1] if pairs else Path(".")
    try:
        for stage, target in pairs:
            failed_at = target
            done.append((stage, target, _swap_in(stage, target)))
    except OSError as exc:
        for stage, target, previous in reversed(done):
            _swap_back(stage, target, previous)
        for stage, _ in pairs:
            discard(stage)
        raise _write_failed(failed_at, exc) from None
    for stage, _, previous in done:
        if previous is not None:
            shutil.rmtree(previous.parent if previous.name == "x" else previous, ignore_errors=True)
        discard(stage)


def _swap_in(stage: Path, target: Path) -> Path | None:
    """Move ``stage`` to ``target``; return where the previous ``target`` now is (None: there was none)."""
    if target.exists() and not target.is_symlink() and _exchange(stage, target):
        return stage  # the exchange left the previous tree at the staging path
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent)) / "x"
        os.rename(target, old)
        try:
            os.rename(stage, target)
        except OSError:
            os.rename(old, target)
            shutil.rmtree(old.parent, ignore_errors=True)
            raise
        return old
    os.rename(stage, target)
    return None


def _swap_back(stage: Path, target: Path, previous: Path | None) -> None:
    """Undo :func:`_swap_in` (best effort: renames inside one folder)."""
    try:
        if previous == stage:
            if not _exchange(stage, target):
                raise OSError("cannot exchange back")
        elif previous is not None:
            os.rename(target, stage)
            os.rename(previous, target)
            shutil.rmtree(previous.parent, ignore_errors=True)
        else:
            os.rename(target, stage)
    except OSError:
        pass  # the error raised to the user says the write failed; nothing more we can do


def discard(stage: Path) -> None:
    shutil.rmtree(stage, ignore_errors=True)


def _write_failed(target: Path, exc: OSError) -> RuntimeFailure:
    return RuntimeFailure(
        f"writing {target} failed: {exc.strerror} ({exc.filename or target}); the previous output is unchanged",
        "free disk space or fix permissions on the output folder, then render again",
        code=R.WRITE_FAILED.code,
    )


def write_tree(target: Path, files: list[OutputFile]) -> None:
    """Write ``files`` (paths relative to ``target``) so that ``target`` is replaced atomically."""
    commit(stage_tree(target, files), target)
