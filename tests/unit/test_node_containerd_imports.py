"""containerd's `imports` rules in the node program (issue 14 items 4 and 5), run as a
node runs it (the shipped file, --root) under the oldest and newest node Python; the
`config dump` check with the real containerd binaries placed into the fake ROOT."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from generator import applyscript
from generator.tomlcompat import tomllib
from tests.support.containerd import require_binary
from tests.support.node_pythons import NEWEST, OLDEST, python_id, require_python

HOST = "europe-docker.pkg.dev"
PASSWORD = 'pw"\\ $x \u00e9'
CRED = {"host": HOST, "username": "robot", "password": PASSWORD}
MAIN = "etc/containerd/config.toml"
DROPIN = "etc/containerd/conf.d/50-regauth.toml"
I3 = "plugins.'io.containerd.cri.v1.images'"
C2 = 'plugins."io.containerd.grpc.v1.cri"'
STALE = f"version = 3\n\n[{I3}.registry.configs.'{HOST}'.auth]\n  identitytoken = 'old'\n  password = 'stale'\n"

pythons = pytest.mark.parametrize("python", [OLDEST, NEWEST], ids=python_id)


def node(tmp: Path, files: dict[str, str], binary: str | None = None) -> Path:
    root = tmp / "root"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    if binary:
        (root / "usr/bin").mkdir(parents=True)
        (root / "usr/bin/containerd").symlink_to(require_binary(binary).path)
    (root / "etc").mkdir(parents=True, exist_ok=True)
    return root


def run(python: str, root: Path, version: str) -> subprocess.CompletedProcess:
    return run_steps(python, root, [{"kind": "containerd", "path": "/" + MAIN, "containerd_version": version, "unit": "containerd",
                                     "registries": [CRED]}])  # fmt: skip


def run_steps(python: str, root: Path, steps: list[dict]) -> subprocess.CompletedProcess:
    plan = root.parent / "plan.json"
    plan.write_text(json.dumps({"format": 1, "profile": "t", "steps": steps}))
    script = root.parent / "regauth-apply"
    script.write_bytes(applyscript.script_for_plan(steps))
    proc = subprocess.run([require_python(python), str(script), "--root", str(root), "--plan", str(plan), "--no-restart"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert PASSWORD not in proc.stdout + proc.stderr
    return proc


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "run" not in p.parts}


def auth(text: bytes, table: str = "io.containerd.cri.v1.images") -> dict:
    return tomllib.loads(text.decode())["plugins"][table]["registry"]["configs"][HOST]["auth"]


@pythons
def test_2x_writes_a_dropin_and_only_adds_the_import(python: str, tmp_path: Path) -> None:
    main = f"version = 3\n# site settings\n\n[{I3}]\n  snapshotter = 'native'\n"
    root = node(tmp_path, {MAIN: main})
    first = run(python, root, "2.1")
    assert first.returncode == 0, first.stderr
    got = (root / MAIN).read_text()
    assert got == "version = 3\nimports = [\"conf.d/50-regauth.toml\"]\n" + main[len("version = 3\n"):]  # beside the main file
    assert auth((root / DROPIN).read_bytes()) == {"username": "robot", "password": PASSWORD}
    assert oct((root / DROPIN).stat().st_mode & 0o777) == "0o600"
    before = files(root)
    second = run(python, root, "2.1")
    assert second.returncode == 0 and files(root) == before, second.stderr


@pythons
def test_2x_an_existing_glob_covers_the_dropin_and_the_main_file_is_untouched(python: str, tmp_path: Path) -> None:
    main = f"version = 3\nimports = ['/etc/containerd/conf.d/*.toml']\n\n[{I3}]\n  snapshotter = 'native'\n"
    root = node(tmp_path, {MAIN: main, "etc/containerd/conf.d/10-old.toml": STALE})
    proc = run(python, root, "2.1")
    assert proc.returncode == 0, proc.stderr
    assert (root / MAIN).read_text() == main and not (root / (MAIN + ".regauth.orig")).exists()
    # 10-old.toml is read before ours: its identitytoken would survive the key-by-key merge, so ours blanks it.
    assert auth((root / DROPIN).read_bytes()) == {"username": "robot", "password": PASSWORD, "identitytoken": ""}
    assert "10-old.toml:3" in proc.stderr and "overridden by /etc/containerd/conf.d/50-regauth.toml" in proc.stderr


@pythons
@pytest.mark.parametrize("imports, stale", [
    ("['/etc/containerd/conf.d/*.toml']", "etc/containerd/conf.d/90-site.toml"),  # sorts after 50-regauth.toml
    ("['/etc/containerd/conf.d/50-regauth.toml', 'site/10.toml']", "etc/containerd/site/10.toml"),  # listed after it (relative)
])  # fmt: skip
def test_2x_an_auth_read_after_the_dropin_is_refused(python: str, imports: str, stale: str, tmp_path: Path) -> None:
    root = node(tmp_path, {MAIN: f"version = 3\nimports = {imports}\n", stale: STALE})
    before = files(root)
    proc = run(python, root, "2.1")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and f"/{stale}:3" in proc.stderr and "read after regauth's drop-in" in proc.stderr
    assert files(root) == before


@pythons
@pytest.mark.parametrize("imports, dropin", [
    ('["/etc/containerd/conf.d/cri.toml"]', "etc/containerd/conf.d/cri.toml"),
    ('["conf.d/cri.toml"]', "etc/containerd/conf.d/cri.toml"),  # relative: beside the main file
    ('["/etc/containerd/conf.d/*.toml"]', "etc/containerd/conf.d/cri.toml"),
])  # fmt: skip
def test_1x_an_import_replacing_the_cri_table_is_refused(python: str, imports: str, dropin: str, tmp_path: Path) -> None:
    main = f'version = 2\nimports = {imports}\n\n[{C2}]\n  sandbox_image = "pause"\n'
    root = node(tmp_path, {MAIN: main, dropin: f'version = 2\n\n[{C2}.containerd]\n  snapshotter = "native"\n'})
    proc = run(python, root, "1.7")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert f"/{dropin}" in proc.stderr and "replaces the main file's whole" in proc.stderr
    assert (root / MAIN).read_text() == main


@pythons
def test_1x_an_import_of_another_plugin_merges_into_the_main_file(python: str, tmp_path: Path) -> None:
    main = f'version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n\n[{C2}]\n  sandbox_image = "pause"\n'
    root = node(tmp_path, {MAIN: main, "etc/containerd/conf.d/m.toml": 'version = 2\n[metrics]\n  address = "127.0.0.1:1"\n'})
    proc = run(python, root, "1.7")
    assert proc.returncode == 0, proc.stderr
    assert auth((root / MAIN).read_bytes(), "io.containerd.grpc.v1.cri") == {"username": "robot", "password": PASSWORD}
    assert not (root / DROPIN).exists()


OTHER = {"etc/containerd/conf.d/m.toml": "version = 2\n"}


@pythons
@pytest.mark.parametrize("series, version, config, extra, accepted", [
    ("1.7", "1.7", f'version = 2\n\n[{C2}]\n  max_concurrent_downloads = "three"\n', {}, False),
    ("2", "2.1", f"version = 3\n\n[{I3}]\n  snapshotter = 3\n", {}, False),
    ("1.7", "1.7", f'version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n\n[{C2}]\n  sandbox_image = "pause"\n', OTHER, True),
    ("2", "2.1", "version = 3\nimports = ['/etc/containerd/conf.d/*.toml']\n", OTHER, True),  # a v2 import under a v3 main
])  # fmt: skip
def test_the_nodes_containerd_judges_the_result(python: str, series: str, version: str, config: str, extra: dict, accepted: bool,
                                                tmp_path: Path) -> None:  # fmt: skip
    root = node(tmp_path, {MAIN: config, **extra}, binary=series)
    before = files(root)
    proc = run(python, root, version)
    assert not list((root / "run/regauth").iterdir())  # the private copies are gone
    assert os.path.islink(root / "usr/bin/containerd")
    if accepted:
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "/usr/bin/containerd --config COPY config dump: it rejects the config as it is already" in proc.stderr
    assert str(root) not in proc.stderr and "/run/regauth/" not in proc.stderr  # node paths only
    assert files(root) == before


@pythons
def test_a_containerd_that_cannot_run_is_skipped_with_a_line(python: str, tmp_path: Path) -> None:
    root = node(tmp_path, {MAIN: "version = 3\n"})
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/containerd").write_bytes(b"\x7fELF not a real binary")  # ENOEXEC, as another architecture's
    (root / "usr/bin/containerd").chmod(0o755)
    proc = run(python, root, "2.1")
    assert proc.returncode == 0, proc.stderr
    assert "usr/bin/containerd (Exec format error): its config dump check is skipped" in proc.stderr


@pytest.mark.parametrize("release, matched", [((1, 6), ["/conf.d/a.toml"]), ((1, 7), ["/etc/containerd/conf.d/a.toml"]),
                                              ((2, 1), ["/etc/containerd/conf.d/a.toml"])])
def test_a_relative_glob_is_matched_where_each_containerd_matches_it(tmp_path: Path, release, matched) -> None:
    """1.6 globs a relative import in its working directory (/ under systemd); 1.7+ beside
    the importing file (checked with config dump; corpus: imports-relative-glob*)."""
    from generator.node.containerd_imports import resolve

    for folder in ("conf.d", "etc/containerd/conf.d"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "a.toml").write_text("")

    class Ctx:
        root = str(tmp_path)

    assert resolve(Ctx(), "/etc/containerd/config.toml", ["conf.d/*.toml"], release, {}) == matched
    # A plain relative path is beside the importing file on every version.
    assert resolve(Ctx(), "/etc/containerd/config.toml", ["conf.d/a.toml"], release, {}) == ["/etc/containerd/conf.d/a.toml"]


TEMPLATE = "var/snap/microk8s/current/args/containerd-template.toml"
SNAP_CONTAINERD = "snap/microk8s/current/bin/containerd"


def run_microk8s(python: str, root: Path) -> subprocess.CompletedProcess:
    from generator.targets.microk8s import PLACEHOLDERS

    steps = [{"kind": "microk8s", "path": "/" + TEMPLATE, "containerd_version": "1.7", "dollar_safe": True, "wait": 0,
              "if_missing": "fail", "restart": "if-running", "units": ["snap.microk8s.daemon-containerd"],
              "restart_command": ["snap", "restart", "microk8s.daemon-containerd"], "placeholders": PLACEHOLDERS,
              "registries": [CRED]}]  # fmt: skip
    return run_steps(python, root, steps)


@pythons
def test_microk8s_template_is_dumped_by_the_snaps_containerd_as_the_snap_renders_it(python: str, tmp_path: Path) -> None:
    """MicroK8s: the snap's own containerd (not one on the host) runs `config dump` on the
    template with its ${...} placeholders replaced as run-containerd-with-args does."""
    template = (Path(__file__).parents[1] / "fixtures/microk8s/containerd-template-08a8c4a.toml").read_text()
    assert "${SNAPSHOTTER}" in template and "${RUNTIME}" in template
    # The real 1.7 binary in the snap: it reads the rendered result (the raw template's
    # placeholders would be fine to it too, so the fake below proves the rendering).
    root = node(tmp_path / "real", {TEMPLATE: template})
    (root / SNAP_CONTAINERD).parent.mkdir(parents=True)
    (root / SNAP_CONTAINERD).symlink_to(require_binary("1.7").path)
    proc = run_microk8s(python, root)
    assert proc.returncode == 0, proc.stderr
    # A fake snap containerd that keeps what it was given and rejects it; a failing
    # /usr/bin/containerd beside it must not be consulted (MicroK8s does not run it).
    root = node(tmp_path / "fake", {TEMPLATE: template})
    seen = tmp_path / "seen"
    seen.mkdir()
    for rel, text in ((SNAP_CONTAINERD, f'cat "$2" > {seen}/$$.toml\necho "containerd: snap says no" >&2\nexit 1\n'),
                      ("usr/bin/containerd", "echo host binary ran >&2\nexit 1\n")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("#!/bin/sh\n" + text)
        (root / rel).chmod(0o755)
    before = files(root)
    proc = run_microk8s(python, root)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "/snap/microk8s/current/bin/containerd --config COPY config dump: it rejects the config as it is already: " \
           "containerd: snap says no" in proc.stderr
    assert files(root) == before
    dumped = [p.read_text() for p in seen.iterdir()]
    assert len(dumped) == 2  # the result, then the original (to name the cause)
    for text in dumped:
        assert "${" not in text, "the snap's sed leaves no placeholder of the template"
        assert 'snapshotter = "overlayfs"' in text and "/var/snap/microk8s/current/" in text


@pytest.mark.parametrize("series, loads", [("1.6", False), ("1.7", False), ("2", True)])
def test_containerd_facts_a_missing_import_is_fatal_on_1x_skipped_on_2x(series: str, loads: bool, tmp_path: Path) -> None:
    """What load_order relies on, checked on the real binaries: 1.6/1.7 fail `failed to load
    TOML: ... no such file or directory`, 2.1 goes on without it; a glob matching nothing is
    fine everywhere."""
    binary = require_binary(series).path
    (tmp_path / "missing.toml").write_text(f'version = 2\nimports = ["{tmp_path}/nope.toml"]\n')
    (tmp_path / "glob.toml").write_text(f'version = 2\nimports = ["{tmp_path}/nope/*.toml"]\n')
    missing = subprocess.run([str(binary), "--config", str(tmp_path / "missing.toml"), "config", "dump"],
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert (missing.returncode == 0) == loads, missing.stderr
    if not loads:
        assert "nope.toml: no such file or directory" in missing.stderr
    glob = subprocess.run([str(binary), "--config", str(tmp_path / "glob.toml"), "config", "dump"],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert glob.returncode == 0, glob.stderr


def test_containerd_facts_2x_merges_imports_key_by_key_inside_one_auth_table(tmp_path: Path) -> None:
    """What dropin_plan relies on (2.1.9): the main file's identitytoken survives a drop-in
    that sets only username/password for the same host, so regauth blanks such keys in its
    drop-in."""
    binary = require_binary("2").path
    (tmp_path / "drop.toml").write_text(f"version = 3\n[{I3}.registry.configs.'{HOST}'.auth]\n  username = 'drop'\n  password = 'p'\n")
    (tmp_path / "main.toml").write_text(f"version = 3\nimports = ['{tmp_path}/drop.toml']\n"
                                        f"[{I3}.registry.configs.'{HOST}'.auth]\n  username = 'main'\n  identitytoken = 'tok'\n")  # fmt: skip
    proc = subprocess.run([str(binary), "--config", str(tmp_path / "main.toml"), "config", "dump"],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    got = tomllib.loads(proc.stdout)["plugins"]["io.containerd.cri.v1.images"]["registry"]["configs"][HOST]["auth"]
    assert {k: v for k, v in got.items() if v} == {"username": "drop", "password": "p", "identitytoken": "tok"}


@pythons
@pytest.mark.parametrize("version, refused", [("1.7", True), ("2.1", False)])
def test_a_missing_import_is_refused_for_1x_and_merged_for_2x(python: str, version: str, refused: bool, tmp_path: Path) -> None:
    main = ("version = 2\n" if version == "1.7" else "version = 3\n") + 'imports = ["/etc/containerd/site.toml"]\n'
    root = node(tmp_path, {MAIN: main}, binary=version.split(".")[0] if version == "2.1" else version)
    before = files(root)
    proc = run(python, root, version)
    if refused:
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert "imports /etc/containerd/site.toml, which does not exist: containerd 1.x refuses to start" in proc.stderr
        assert files(root) == before
    else:
        assert proc.returncode == 0, proc.stderr
        assert auth((root / DROPIN).read_bytes()) == {"username": "robot", "password": PASSWORD}
