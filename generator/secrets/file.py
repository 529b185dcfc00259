"""``source: file``: a secret read from a file next to the profile.

Refuses symlinks (a profile folder should not be a door to elsewhere) and files
that group or others can read (the key would already be exposed on this machine).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import Problem, RuntimeFailure
from generator.messages import inputs as M
from generator.messages import runtime as R
from generator.profile.model import SecretSpec
from generator.secrets.value import SecretValue

if TYPE_CHECKING:
    from generator.profile.checker import Checker

MAX_SECRET_BYTES = 64 * 1024


def read_file_secret(spec: SecretSpec) -> SecretValue | Problem:
    assert spec.path is not None
    path = spec.path
    where = dict(file=spec.at.file, line=spec.at.line, col=spec.at.col, path=spec.at.path + ".path")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return M.SECRET_FILE_MISSING.problem(**where, given=path)
    except PermissionError:
        raise RuntimeFailure(f"permission denied reading secret file {path}", "run regauth as a user that can read it (chmod 600, owned by you)", code=R.SECRET_FILE_PERMISSION.code)
    if stat.S_ISLNK(st.st_mode):
        return M.SECRET_FILE_SYMLINK.problem(**where, given=path)
    if not stat.S_ISREG(st.st_mode):
        return M.SECRET_FILE_NOT_REGULAR.problem(**where, given=path)
    if st.st_mode & 0o077:
        return M.SECRET_FILE_MODE.problem(**where, given=path, mode=stat.S_IMODE(st.st_mode))
    if st.st_size > MAX_SECRET_BYTES:
        return M.SECRET_FILE_TOO_LARGE.problem(**where, given=path, kib=MAX_SECRET_BYTES // 1024)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_SECRET_BYTES + 1)
    except PermissionError:
        raise RuntimeFailure(f"permission denied reading secret file {path}", "run regauth as a user that can read it (chmod 600, owned by you)", code=R.SECRET_FILE_PERMISSION.code)
    except OSError as exc:
        raise RuntimeFailure(f"cannot read secret file {path}: {exc.strerror}", "check the file and the disk", code=R.SECRET_FILE_UNREADABLE.code)
    return SecretValue(data, origin=f"file {path}")


def parse_file_block(c: Checker, s: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None:
    """The ``secrets:`` block of a ``source: file`` secret (its keys checked already), or
    None after reporting to ``c`` why it cannot be used."""
    if "path" not in s:
        c.report(M.FILE_SECRET_NO_PATH, p)
        return None
    raw = c.string(s, "path", p)
    if raw is None:
        return None
    base = profile_path.parent
    candidate = Path(raw)
    if not candidate.is_absolute():
        resolved = Path(os.path.normpath(base / candidate))
        base_norm = Path(os.path.normpath(base.absolute()))
        if not os.path.normpath(resolved.absolute()).startswith(str(base_norm) + os.sep):
            c.report(M.SECRET_OUTSIDE, p + ("path",), given=raw)
            return None
        candidate = resolved
    return SecretSpec(name=name, source="file", at=c.at(p), path=candidate)
