"""The last proof before replacing anything: the node's own containerd reads the result.

`containerd --config COPY config dump` on a private copy of the would-be main config
whose `imports` list, in containerd's order, the would-be drop-in copy and every other
imported file (so nothing on the node changes first). It catches what only containerd
knows (its types, the versions it reads); its output holds the secrets and is dropped,
and its error line is shown with them masked. Under --root only ROOT's binaries count."""

import os
import shutil
import subprocess
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

from .containerd_imports import load_order, read, set_imports
from .errors import ApplyError, log
from .files import LOCK_DIR
from .tomltext import toml_string

BINARIES = ("/usr/bin/containerd", "/usr/local/bin/containerd")
TIMEOUT = 30


def find_containerd(root: str, paths: Optional[Tuple[str, ...]] = None) -> Optional[str]:
    """The first executable of ``paths`` under ``root``; by default containerd's usual
    places, then (on the node itself) PATH."""
    for path in paths or BINARIES:
        if os.access(root + path, os.X_OK):
            return root + path
    return None if root or paths else shutil.which("containerd")


def _first_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "level=error" in line or line.startswith("containerd:") or "failed" in line:
            return line
    return lines[0] if lines else "no message"


def _dump(binary: str, config: str) -> Optional[str]:
    """None when containerd reads ``config``, else its first error line."""
    try:
        proc = subprocess.run([binary, "--config", config, "config", "dump"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=TIMEOUT, cwd="/", check=False)
    except subprocess.TimeoutExpired:
        return "`config dump` did not finish within %ds" % TIMEOUT
    except OSError as exc:  # e.g. another architecture's binary in an image being prepared
        log("cannot run %s (%s): its config dump check is skipped" % (binary, exc.strerror))
        return None
    return None if proc.returncode == 0 else _first_error(proc.stderr.decode("utf-8", "replace"))


def dump_check(ctx, main: str, files: Dict[str, str], release: Tuple[int, int], secrets: List[str],
               binaries: Optional[Tuple[str, ...]] = None, render: Optional[Callable[[str], str]] = None) -> None:
    """Refuse, touching nothing, when the node's containerd (``release``: (major, minor))
    rejects the would-be config (``files``: path -> new text, the main config among them).
    ``binaries``: where that containerd is (default: find_containerd's); ``render``: what
    happens to the main file before containerd reads it (MicroK8s: the snap's sed)."""
    major = release[0]
    render = render or (lambda text: text)
    binary = find_containerd(ctx.root, binaries)
    if binary is None:
        return
    folder = ctx.root + LOCK_DIR
    work = tempfile.mkdtemp(prefix="dump-", dir=folder if os.path.isdir(folder) else None)  # 0700: copies hold secrets
    shown = {}  # copy -> the node path it stands for (messages name node paths, not temp files)
    try:
        def copy(name: str, text: str, order=None, mine=(), path_shown=main) -> str:
            path = os.path.join(work, name)
            shown[path] = path_shown
            doc = read(text, major)
            if order is not None:  # the main file: every import named as containerd would reach it
                text = ("\ufeff" if doc.bom else "") + set_imports(doc, [os.path.join(work, "%d.toml" % i) if p in mine else ctx.root + p
                                                                        for i, (p, _d) in enumerate(order)])
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            return path

        new_order = load_order(ctx, main, read(files[main], major), release, files)
        for index, (path, _doc) in enumerate(new_order):
            if path in files:
                copy("%d.toml" % index, files[path], path_shown=path)
        error = _dump(binary, copy("config.toml", render(files[main]), new_order, files))
        if error is None:
            return
        old = ctx.read(main)
        before = None
        if old is not None:
            try:
                before = _dump(binary, copy("before.toml", render(old), load_order(ctx, main, read(old, major), release, {})))
            except (ApplyError, ValueError) as exc:
                before = str(exc)
        for path in sorted(shown, key=len, reverse=True):
            error = error.replace(path, shown[path])
        if ctx.root:
            error = error.replace(ctx.root + "/", "/")
        for secret in secrets:
            for form in (secret, toml_string(secret)[1:-1], toml_string(secret, True)[1:-1]):
                error = error.replace(form, "***")
        why = "it rejects the config as it is already" if before else "it rejects the result"
        raise ApplyError("%s: %s --config COPY config dump: %s: %s; nothing written" % (main, binary[len(ctx.root):], why, error), code="node-config-syntax" if before else "node-self-check")
    finally:
        shutil.rmtree(work, ignore_errors=True)
