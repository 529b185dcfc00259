"""Issue 15: doctor reads containerd configs with the node's reader, as the release that
loads them reads them (generator/node/containerd_imports.py), decided once
(generator/doctor/containerd_release.py): plan, live `containerd --version`, or
--containerd-version, which wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator.doctor.command import check_sources
from generator.doctor.containerd_release import decide, parse_option, parse_version_output
from generator.doctor.discover import find, follow_imports, set_releases
from generator.doctor.findings import FileReport
from generator.node.containerd_imports import read
from generator.node.tomlparse import TOMLError
from tests.conftest import ROOT

ESCAPED = (
    "version = 2\n"
    '[plugins."io.containerd.grpc.v1.cri".registry.configs."europe\\u002Ddocker.pkg.dev".auth]\n'
    '  username = "_json_key_base64"\n'
    '  password = "c2VjcmV0"\n'
)
ESCAPED_V3 = ESCAPED.replace("version = 2", "version = 3").replace("io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images")


def _node(tmp_path: Path, config: str, planned: str | None = None) -> Path:
    root = tmp_path / "node"
    (root / "etc/containerd").mkdir(parents=True)
    (root / "etc/containerd/config.toml").write_text(config)
    (root / "etc/containerd/config.toml").chmod(0o600)
    if planned is not None:
        (root / "etc/regauth").mkdir()
        step = {"kind": "containerd", "path": "/etc/containerd/config.toml", "containerd_version": planned, "registries": [], "unit": "containerd"}
        (root / "etc/regauth/plan.json").write_text(json.dumps({"format": 1, "steps": [step]}))
    return root


def _reports(paths: list[str], override: tuple[int, int] | None = None) -> tuple[list[FileReport], list[str]]:
    found = find(paths)
    set_releases(found, override, run=lambda argv: pytest.fail(f"ran {argv} for a tree that is not the live system"))
    follow_imports(found)
    return check_sources(found.sources, None, found.roots, found.findings), found.notes


def _config_report(reports: list[FileReport]) -> FileReport:
    (report,) = [r for r in reports if r.file.endswith("etc/containerd/config.toml")]
    return report


# ------------------------------------------------------------ escaped header keys


def test_escaped_header_is_not_the_host_on_a_planned_1_7_node(tmp_path: Path) -> None:
    report = _config_report(_reports([str(_node(tmp_path, ESCAPED, planned="1.7"))])[0])
    assert "europe-docker.pkg.dev" not in report.hosts  # 1.x keeps the escape: another table name
    (finding,) = [f for f in report.findings if f.code == "header-escape"]
    assert finding.severity == "error" and finding.line == 2 and "containerd 1.x keeps as written" in finding.message
    assert '"europe-docker.pkg.dev"' in finding.fix
    assert "host-key" not in [f.code for f in report.findings]  # one finding for the escape, not a second for the key


def test_escaped_header_is_the_host_on_2_x(tmp_path: Path) -> None:
    root = _node(tmp_path, ESCAPED, planned="1.7")
    report = _config_report(_reports([str(root)], override=(2, 1))[0])  # the option wins over the plan
    assert "europe-docker.pkg.dev" in report.hosts and not [f for f in report.findings if f.code == "header-escape"]
    # a version 3 file is read by 2.x whatever the release: no plan, no option
    report = _config_report(_reports([str(_node(tmp_path / "v3", ESCAPED_V3))])[0])
    assert "europe-docker.pkg.dev" in report.hosts and not [f for f in report.findings if f.code == "header-escape"]


def test_escaped_header_with_release_unknown_warns(tmp_path: Path) -> None:
    report = _config_report(_reports([str(_node(tmp_path, ESCAPED))])[0])
    assert "europe-docker.pkg.dev" in report.hosts  # read as 2.x (TOML 1.0) ...
    (finding,) = [f for f in report.findings if f.code == "header-escape"]  # ... and told where 1.x differs
    assert finding.severity == "warning" and "containerd 1.x and 2.x read differently" in finding.message
    assert "--containerd-version" in finding.fix


def test_cli_option_and_image(tmp_path: Path) -> None:
    root = _node(tmp_path, ESCAPED, planned="1.7")

    def doctor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "generator", "doctor", str(root), "--image", "europe-docker.pkg.dev/p/r/app:1", *args],
                              capture_output=True, text=True, check=False, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})

    planned = doctor()
    assert planned.returncode == 1 and "[image-host]" in planned.stdout and "[header-escape]" in planned.stdout
    two = doctor("--containerd-version", "2.1")
    assert "[image-host]" not in two.stdout and "[header-escape]" not in two.stdout, two.stdout
    bad = doctor("--containerd-version", "latest")
    assert bad.returncode == 2 and "is not a containerd release" in bad.stderr


# ------------------------------------------------------------ imports


def _imports_node(tmp_path: Path, imports: str) -> Path:
    root = _node(tmp_path, f"version = 2\nimports = {imports}\n")
    for where in ("conf.d", "etc/containerd/conf.d"):
        (root / where).mkdir(parents=True)
        (root / where / "auth.toml").write_text("version = 2\n")
    return root


@pytest.mark.parametrize(("release", "read_from"), [((1, 6), "conf.d"), ((1, 7), "etc/containerd/conf.d"), ((2, 1), "etc/containerd/conf.d")])
def test_relative_glob_import_is_matched_where_that_release_does(tmp_path: Path, release: tuple[int, int], read_from: str) -> None:
    root = _imports_node(tmp_path, '["conf.d/*.toml"]')
    found = find([str(root / "etc/containerd/config.toml")])  # the named file: imports are followed, nothing else probed
    set_releases(found, release)
    follow_imports(found)
    assert [s.real for s in found.sources] == [root / "etc/containerd/config.toml", root / read_from / "auth.toml"]
    assert found.sources[1].node_path == "/" + read_from + "/auth.toml" and found.sources[1].release == release
    assert not found.notes


def test_relative_glob_import_with_release_unknown_notes_1_6(tmp_path: Path) -> None:
    root = _imports_node(tmp_path, '["conf.d/*.toml"]')
    found = find([str(root / "etc/containerd/config.toml")])
    set_releases(found)
    follow_imports(found)
    assert [s.real for s in found.sources][1:] == [root / "etc/containerd/conf.d/auth.toml"]
    (note,) = found.notes
    assert "containerd 1.6 matches it in its working directory" in note and "--containerd-version" in note


@pytest.mark.parametrize(("release", "severity"), [((1, 7), "error"), ((2, 1), None), (None, "warning")])
def test_missing_import(tmp_path: Path, release: tuple[int, int] | None, severity: str | None) -> None:
    root = _node(tmp_path, 'version = 2\n\nimports = ["/etc/containerd/gone.toml"]\n')
    reports, _ = _reports([str(root / "etc/containerd/config.toml")], release)
    got = [f for f in _config_report(reports).findings if f.code == "missing-import"]
    if severity is None:
        assert not got  # 2.x skips it
        return
    (finding,) = got
    assert (finding.severity, finding.line, finding.path) == (severity, 3, "imports")
    # the node's words (generator/node/containerd_imports.missing_import)
    assert finding.message == "/etc/containerd/config.toml imports /etc/containerd/gone.toml, which does not exist: containerd 1.x refuses to start"
    assert finding.fix == "create it or drop it from imports"


# ------------------------------------------------------------ syntax


def test_syntax_finding_carries_the_node_parsers_position(tmp_path: Path) -> None:
    text = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d\n'
    with pytest.raises(TOMLError) as parsed:
        read(text, 2)
    report = _config_report(_reports([str(_node(tmp_path, text))])[0])
    (finding,) = report.findings
    assert (finding.code, finding.line, finding.col) == ("syntax", parsed.value.line, parsed.value.col) == ("syntax", 3, parsed.value.col)
    assert finding.col > 1 and finding.message == "not valid TOML: " + parsed.value.reason


def test_an_escaped_quote_in_a_header_key_is_a_syntax_error_on_1_x_only(tmp_path: Path) -> None:
    text = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.configs."a\\"b".auth]\n'
    assert [f.code for f in _config_report(_reports([str(_node(tmp_path, text, planned="1.7"))])[0]).findings] == ["syntax"]
    assert "syntax" not in [f.code for f in _config_report(_reports([str(_node(tmp_path / "2", text, planned="2.1"))])[0]).findings]


# ------------------------------------------------------------ which release


@pytest.mark.parametrize(("output", "release"), [
    ("containerd github.com/containerd/containerd v1.7.24 88bf19b2105c8b17560993bee28a01ddc2f97182", (1, 7)),
    ("containerd containerd.io 1.6.20 2806fc1057397dbaeefbea0e4e17bddfbd388f38", (1, 6)),
    ("containerd github.com/containerd/containerd/v2 v2.1.9 b5fd2b9bcbb5b8c8d5bdc9bb3e0e5ab0ee5f3c2b\n", (2, 1)),
    ("containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1", (1, 7)),  # Debian's package
    ("containerd github.com/containerd/containerd/v2 2.1.9+unknown", (2, 1)),
    ("", None),
    ("containerd: unknown flag", None),
])
def test_version_output(output: str, release: tuple[int, int] | None) -> None:
    assert parse_version_output(output) == release


def _cached_binaries() -> list[Path]:
    cache = Path(os.environ.get("REGAUTH_CACHE", ROOT / ".cache")) / "containerd"
    return sorted(cache.glob("*/usr/bin/containerd"))


@pytest.mark.parametrize("binary", _cached_binaries() or [None], ids=lambda p: p.parent.parent.parent.name if p else "none")
def test_real_binaries_version_output(binary: Path | None) -> None:
    if binary is None:
        pytest.skip("no containerd binaries in REGAUTH_CACHE (scripts/deps/containerd.sh)")
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
    major, minor = binary.parent.parent.parent.name.split(".")[:2]
    assert parse_version_output(out) == (int(major), int(minor)), out


def test_decide_order(tmp_path: Path) -> None:
    planned = _node(tmp_path / "planned", "version = 2\n", planned="1.7")
    bare = _node(tmp_path / "bare", "version = 2\n")
    asked: list[list[str]] = []

    def runner(argv: list[str]) -> str | None:
        asked.append(argv)
        return "containerd github.com/containerd/containerd/v2 v2.1.9 abc"

    assert decide(planned, "containerd", (2, 0), runner, live=planned) == (2, 0)  # the option wins over everything
    assert decide(planned, "containerd", None, runner, live=planned) == (1, 7) and not asked  # then the plan
    assert decide(bare, "containerd", None, runner, live=bare) == (2, 1)  # then the live system's binary
    assert asked == [["containerd", "--version"]]
    assert decide(bare, "microk8s", None, runner, live=bare) == (2, 1) and asked[-1][0] == "/snap/microk8s/current/bin/containerd"
    assert decide(bare, "containerd", None, lambda argv: None, live=bare) is None  # no binary: unknown, no error
    assert decide(bare, "containerd", None, runner) is None and len(asked) == 2  # a copied tree: never asks the host
    assert decide(None, "containerd") is None


def test_option_parsing() -> None:
    assert parse_option("1.7") == (1, 7) and parse_option("v2.1.9") == (2, 1)
    for bad in ("latest", "2", "0.9", ""):
        with pytest.raises(ValueError):
            parse_option(bad)


def test_relative_import_of_a_symlinked_config_is_beside_the_link(tmp_path: Path) -> None:
    """containerd joins a relative import to the config path it was given (links unresolved)."""
    root = _node(tmp_path, "")
    (root / "srv/real/extra").mkdir(parents=True)
    (root / "srv/real/config.toml").write_text('version = 2\nimports = ["extra/x.toml"]\n')
    (root / "srv/real/extra/x.toml").write_text("version = 2\n")  # beside the link's target: not read
    (root / "etc/containerd/extra").mkdir()
    (root / "etc/containerd/extra/x.toml").write_text("version = 2\n")
    (root / "etc/containerd/config.toml").unlink()
    (root / "etc/containerd/config.toml").symlink_to("../../srv/real/config.toml")
    found = find([str(root)])
    set_releases(found, (1, 7))
    follow_imports(found)
    assert [s.node_path for s in found.sources if s.kind == "containerd"] == ["/etc/containerd/config.toml", "/etc/containerd/extra/x.toml"]


# ------------------------------------------------------------ config version vs release


@pytest.mark.parametrize(("planned", "found"), [("1.7", True), ("1.6", True), ("2.1", False), (None, False)])
def test_a_version_3_config_on_a_1_x_node_is_an_error(tmp_path: Path, planned: str | None, found: bool) -> None:
    """1.7.24 does not start ("unsupported config version `3`"), 1.6.20 reads it as version 2
    without the 2.x tables (the node refuses it too: one rule, node/containerd.version_mismatch)."""
    root = _node(tmp_path, ESCAPED_V3.replace("europe\\u002Ddocker.pkg.dev", "europe-docker.pkg.dev"), planned)
    reports, _ = _reports([str(root)])
    hits = [f for f in _config_report(reports).findings if f.code == "config-version-release"]
    if not found:
        assert hits == []
        return
    (finding,) = hits
    assert finding.severity == "error" and finding.line == 1
    assert f"this node runs containerd {planned}" in finding.message
    assert ("refuses to start" if planned == "1.7" else "loads it as version 2 and ignores the 2.x tables") in finding.why
