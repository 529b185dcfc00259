"""Which files to check: explicit files, or the runtime configs found under a directory.

A directory holding ``etc/`` is read as a node's ``/`` (the real one, a copy, or a
``rootfs/`` written by ``regauth render``), and a directory named ``etc`` as its
``/etc``: only the known locations are checked (:data:`NODE_GLOBS`, symlinks such as
MicroK8s' ``current`` followed), so ``doctor /`` is precise and takes a fraction of a
second.  Any other directory is walked (never following symlinks, skipping big trees
such as image stores) and files are recognised by how their path ends
(``containerd/config.toml``, ``rancher/k3s/registries.yaml``, ...).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from generator.doctor.containerd_release import BINARY, Release, Runner, decide, known, read_as, run_version
from generator.doctor.findings import Finding, Unreadable
from generator.doctor.source import KINDS, Source
from generator.node.containerd_imports import imports_of, missing_import, read, resolve
from generator.node.errors import ApplyError
from generator.node.files import node_path
from generator.node.tomlparse import Document

# (kind, pattern over the POSIX path relative to the walk's start, anchored at a "/" boundary)
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(r"(?:^|/)" + rx + r"$"))
    for kind, rx in (
        ("microk8s", r"(?:microk8s/current/args/)?containerd-template\.toml"),
        ("containerd", r"containerd/config\.toml"),
        ("containerd", r"containerd/(?:conf\.d|config\.d)/[^/]+\.toml"),
        ("k3s", r"rancher/(?:k3s|rke2)/registries\.yaml"),
        ("docker", r"\.docker/config\.json"),
        ("kubelet", r"kubelet/config\.json"),
        ("kubelet-provider", r"kubernetes/[^/]*credential-provider[^/]*\.(?:yaml|yml|json)"),
        ("containers-auth", r"containers/(?:[0-9]+/)?auth\.json"),
    )
)

# Where each config lives on a node, relative to its "/" (globs; symlinks such as
# var/snap/microk8s/current are followed).  A directory holding etc/ is read as a node
# root and only these are checked, so `doctor /` stays precise and fast.
NODE_GLOBS: tuple[tuple[str, str], ...] = (
    ("containerd", "etc/containerd/config.toml"),
    ("containerd", "etc/containerd/conf.d/*.toml"),
    ("containerd", "etc/containerd/config.d/*.toml"),
    ("microk8s", "var/snap/microk8s/current/args/containerd-template.toml"),
    ("k3s", "etc/rancher/k3s/registries.yaml"),
    ("k3s", "etc/rancher/rke2/registries.yaml"),
    ("docker", "root/.docker/config.json"),
    ("docker", "home/*/.docker/config.json"),
    ("kubelet", "var/lib/kubelet/config.json"),
    ("kubelet-provider", "etc/kubernetes/*credential-provider*.yaml"),
    ("containers-auth", "etc/containers/auth.json"),
    ("containers-auth", "run/containers/*/auth.json"),
    ("containers-auth", "run/user/*/containers/auth.json"),
    ("containers-auth", "root/.config/containers/auth.json"),
    ("containers-auth", "home/*/.config/containers/auth.json"),
)
KNOWN_PATHS = tuple(g for _, g in NODE_GLOBS)

_SKIP_AT_TOP = {"proc", "sys", "dev", "usr", "lib", "lib32", "lib64", "libx32", "bin", "sbin", "boot", "tmp", "srv",
                "mnt", "media", "opt", "snap", "lost+found"}
_SKIP_ANYWHERE = {".git", "node_modules", "__pycache__", ".cache"}
_SKIP_PATHS = ("var/lib/containerd", "var/lib/docker", "var/lib/kubelet/pods", "var/lib/kubelet/plugins", "var/lib/rancher/k3s/agent/containerd",
               "var/lib/rancher/k3s/data", "var/lib/rancher/rke2/agent/containerd", "var/lib/rancher/rke2/data", "var/log", "var/cache",
               "var/lib/apt", "var/lib/dpkg", "var/lib/snapd", "var/snap/microk8s/common", "run/containerd", "run/k3s", "var/lib/containers/storage",
               "etc/ssl", "etc/alternatives")
MAX_ENTRIES = 200_000


@dataclass
class Found:
    sources: list[Source]
    unreadable: list[Unreadable]
    notes: list[str]
    roots: list[tuple[Path, str]] = field(default_factory=list)  # node roots read (path, as shown), for runtime detection
    findings: list[Finding] = field(default_factory=list)  # found while following imports (a missing import)


# Runtime configs that live outside /etc: `doctor /etc` on a node that has the runtime
# also reads them (beside /etc), since they are what that runtime actually reads.
OUTSIDE_ETC: tuple[tuple[str, str, str], ...] = (
    ("microk8s", "var/snap/microk8s", "var/snap/microk8s/current/args/containerd-template.toml"),
)


def classify(relpath: str) -> str | None:
    """The config kind of a path by how it ends, or None."""
    for kind, pattern in PATTERNS:
        if pattern.search(relpath):
            return kind
    return None


def sniff(path: Path, text: str) -> str | None:
    """Kind of an explicitly named file whose name says nothing (e.g. a copy in /tmp)."""
    name = path.name.lower()
    if name.endswith(".toml"):
        return "microk8s" if "${SNAP" in text else "containerd"
    if name.endswith((".yaml", ".yml")):
        return "kubelet-provider" if "CredentialProviderConfig" in text else "k3s"
    if name.endswith(".json"):
        return "docker"
    return None


def containerd_root(path: Path) -> Path | None:
    """The node's "/" for a containerd config at .../etc/containerd/[conf.d/]NAME.toml (for its imports)."""
    d = path.resolve().parent
    if d.name in ("conf.d", "config.d"):
        d = d.parent
    if d.name == "containerd" and d.parent.name == "etc":
        return d.parent.parent
    return None


def find(paths: list[str], forced_kind: str | None = None) -> Found:
    found = Found([], [], [])
    seen: set[Path] = set()
    for item in paths:
        p = Path(item)
        if p.is_dir():
            before = len(found.sources)
            root: tuple[Path, str] | None = None
            if p.resolve().name == "etc":
                _probe(p, item, "etc/", found, seen)
                root = (p.resolve().parent, os.path.normpath(os.path.join(item, "..")))
                for _kind, evidence, pattern in OUTSIDE_ETC:
                    if (root[0] / evidence).is_dir():
                        _probe(root[0], root[1], "", found, seen, only=pattern)
            elif (p / "etc").is_dir():
                _probe(p, item, "", found, seen)
                root = (p.resolve(), item)
            else:
                _walk(p, item, found, seen)
            if root is not None:
                found.roots.append(root)
                from generator.doctor import plan  # a rendered rootfs/: plan steps stand in for files it cannot preview

                found.notes += plan.add_sources(root[0], root[1], found.sources)
            if len(found.sources) == before and not any(u.file.startswith(item) for u in found.unreadable):
                found.unreadable.append(
                    Unreadable(item, "no runtime registry config found in this directory",
                               "point doctor at a node root, its /etc, a rendered rootfs/, or name the files; it looks for " + ", ".join(KNOWN_PATHS))
                )
            continue
        kind = forced_kind or classify(p.as_posix())
        src = _read(p, item, kind, found, explicit=True)
        if src is not None and src.real not in seen:
            seen.add(src.real)
            found.sources.append(src)
    return found


def _read(path: Path, shown: str, kind: str | None, found: Found, *, explicit: bool, node_path: str = "",
          root: Path | None = None) -> Source | None:
    try:
        st = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        found.unreadable.append(Unreadable(shown, "no such file or directory"))
        return None
    except PermissionError:
        found.unreadable.append(Unreadable(shown, "permission denied", "run doctor as root (sudo regauth doctor ...): these files hold credentials and are root-only"))
        return None
    except IsADirectoryError:
        found.unreadable.append(Unreadable(shown, "is a directory"))
        return None
    except OSError as exc:
        found.unreadable.append(Unreadable(shown, exc.strerror or "cannot read"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        found.unreadable.append(Unreadable(shown, "not UTF-8 text", "name a runtime config file (TOML, YAML or JSON)"))
        return None
    text = text.removeprefix("\ufeff")
    if kind is None and explicit:
        kind = sniff(path, text)
    if kind not in KINDS:
        found.unreadable.append(
            Unreadable(shown, "not a config doctor knows", f"name it like its place on a node ({', '.join(KNOWN_PATHS[:4])}, ...) or pass --as KIND")
        )
        return None
    if kind == "containerd" and root is None:
        root = containerd_root(path)  # a named file: its node's "/" from where it sits
    return Source(shown, path, kind, text, st.st_mode, root if kind == "containerd" else None, node_path)


def _probe(base: Path, shown_base: str, under: str, found: Found, seen: set[Path], only: str | None = None) -> None:
    """Check the known node locations below ``base`` (a node root, or its etc/ when ``under`` is "etc/")."""
    for kind, pattern in NODE_GLOBS:
        if not pattern.startswith(under) or (only is not None and pattern != only):
            continue
        rel_pattern = pattern[len(under) :]
        for match in sorted(glob.glob(os.path.join(glob.escape(str(base)), rel_pattern))):
            path = Path(match)
            if not path.is_file() or path.resolve() in seen:
                continue
            rel = path.relative_to(base).as_posix()
            # the node's "/" is known here, even for a config that is a link to elsewhere
            src = _read(path, os.path.join(shown_base, rel), kind, found, explicit=False, node_path="/" + under + rel,
                        root=base.resolve().parent if under else base.resolve())
            if src is not None:
                seen.add(path.resolve())
                found.sources.append(src)


def _walk(top: Path, shown_top: str, found: Found, seen: set[Path]) -> None:
    """Any other directory: recognise configs by how their paths end."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        rel_dir = Path(dirpath).relative_to(top).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        keep = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if d in _SKIP_ANYWHERE or (not rel_dir and d in _SKIP_AT_TOP):
                continue
            if any(rel == s or rel.endswith("/" + s) for s in _SKIP_PATHS):
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            count += 1
            rel = f"{rel_dir}/{name}" if rel_dir else name
            kind = classify(rel) or (classify(f"{top.resolve().name}/{rel}") if top.resolve().name else None)
            if kind is None:
                continue
            path = Path(dirpath) / name
            if path.is_symlink() and not path.exists():
                continue
            src = _read(path, os.path.join(shown_top, rel), kind, found, explicit=False)
            if src is not None and path.resolve() not in seen:
                seen.add(path.resolve())
                found.sources.append(src)
        if count > MAX_ENTRIES:
            found.notes.append(f"{shown_top}: stopped after {MAX_ENTRIES} files; name a smaller directory (e.g. /etc) for a complete check")
            return


def set_releases(found: Found, override: Release | None = None, run: Runner = run_version) -> None:
    """Give every containerd/MicroK8s source the release that reads it (decided once per
    node tree and runtime by :func:`generator.doctor.containerd_release.decide`)."""
    decided: dict[tuple[Path | None, str], Release | None] = {}
    for i, src in enumerate(found.sources):
        if src.kind not in BINARY or src.step is not None:
            continue
        key = (src.root or _tree_of(src), src.kind)
        if key not in decided:
            decided[key] = decide(key[0], src.kind, override, run)
        found.sources[i] = dataclasses.replace(src, release=decided[key])


def _tree_of(src: Source) -> Path | None:
    """The node's "/" of a file read at a known node path (MicroK8s' template has no imports root)."""
    real = src.real.as_posix()
    return Path(real[: -len(src.node_path)] or "/") if src.node_path and real.endswith(src.node_path) else None


@dataclass(frozen=True)
class _Tree:
    """The node tree as the node's import functions see it: ``root`` + node path is the file."""

    root: str  # "" for the live system


def follow_imports(found: Found) -> None:
    """Add the files a containerd config pulls in with ``imports = [...]``: exactly the files
    containerd of the source's release opens, resolved by the node's own functions
    (generator/node/containerd_imports.py: relative paths beside the importing file, a
    relative glob in containerd's working directory on 1.6).

    They are part of the effective config: on containerd 1.x an imported file replaces
    whole plugin tables, so credentials in a drop-in matter as much as the main file.  A
    missing import is a finding (1.x refuses to start; 2.x skips it).  With the release
    unknown, imports resolve as on 1.7 and later, and a note says where 1.6 differs.
    """
    seen = {s.real.resolve() for s in found.sources}
    queue = [s for s in found.sources if s.kind == "containerd" and s.root is not None]
    while queue:
        src = queue.pop(0)
        assert src.root is not None
        tree = _Tree("" if src.root.resolve() == Path("/") else str(src.root.resolve()))
        try:
            # containerd joins a relative import to the importing path as given, links unresolved
            parent = src.node_path or _node_path_of(src.real, src.root)
            doc = read(src.text, read_as(src.release)[0])
            entries = [e for e in imports_of(doc, parent) if e]
        except (ValueError, ApplyError):  # TOMLError is a ValueError; the file's own check reports it
            continue
        if not parent:
            continue  # read from outside its node tree: no node path to resolve imports against
        got = known(src.release, doc.value.get("version"))
        release = read_as(got)
        if got is None and any("*" in e and not e.startswith("/") for e in entries):
            found.notes.append(f"{src.shown}: a relative `imports` glob is matched beside the file, as containerd 1.7 and later "
                               "do; containerd 1.6 matches it in its working directory (/ under systemd): pass --containerd-version "
                               "to check for the release the node runs")
        for path in resolve(tree, parent, entries, release, {}):
            try:
                real = Path(tree.root + node_path(tree.root, path))
            except ApplyError:
                continue
            if not real.exists():
                missing = _missing_import(src.shown, got, doc, parent, path)
                if missing is not None:
                    found.findings.append(missing)
                continue
            if real.resolve() in seen or not real.is_file():
                continue
            seen.add(real.resolve())
            new = _read(real, _shown_under(src, path), "containerd", found, explicit=False, node_path=path, root=src.root)
            if new is not None:
                new = dataclasses.replace(new, release=src.release)  # same node, same containerd
                found.sources.append(new)
                queue.append(new)


def _missing_import(shown: str, release: Release | None, doc: Document, parent: str, path: str) -> Finding | None:
    """The node's rule for a missing import, as a finding at the importing file's `imports`
    (release unknown: a warning, since 1.x refuses to start and 2.x skips it)."""
    try:
        missing_import(parent, path, release[0] if release else 1)
    except ApplyError as exc:
        what, fix = str(exc).split("; ", 1)  # the node's sentence: "<what>; <fix>"
    else:
        return None  # 2.x skips it
    node = doc.node(("imports",))
    return Finding("missing-import", shown, what,
                   "containerd 1.6/1.7 stop at a missing import ('failed to load TOML: ... no such file or directory')"
                   + ("" if release else "; 2.x skips it (which release this node runs is unknown: pass --containerd-version)"),
                   fix, line=doc.line_col(node.start)[0] if node is not None else 0, path="imports",
                   severity="error" if release else "warning")


def _shown_under(importer: Source, node_file: str) -> str:
    """The imported ``node_file`` (a path on the node) spelled like the importing file was
    shown (same root prefix), else as the path it was read from."""
    assert importer.root is not None
    mine = importer.node_path or _node_path_of(importer.real, importer.root)
    if mine and importer.shown.endswith(mine.lstrip("/")):
        return importer.shown[: len(importer.shown) - len(mine.lstrip("/"))] + node_file.lstrip("/")
    return str(importer.root / node_file.lstrip("/"))


def _node_path_of(real: Path, root: Path) -> str:
    try:
        return "/" + real.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return ""
