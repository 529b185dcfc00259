"""Issue 7: doctor's containerd claims checked against the real containerd 1.6, 1.7 and 2.x.

Why: a doctor that flags a table as ignored must be right about it.  Here each
claim is held against ``containerd config dump`` (what containerd itself parses:
it drops unknown keys silently, so "dropped" is visible as an absent value) and,
for startup conflicts, against a running containerd's log.  Stock configs from
``containerd config default`` of every binary, and those configs after the
rendered apply step merged credentials in, must give no findings.

Run alone:  python3 -m pytest -m system tests/system/test_doctor_containerd.py
"""


from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from generator.doctor.command import check_sources
from generator.doctor.containerd_release import parse_option
from generator.doctor.discover import find, set_releases
from tests.conftest import ROOT, gar_profile, run_cli
from tests.support.containerd import (
    SERIES,
    ConfigRejected,
    Sandbox,
    config_dump,
    default_config,
    dumped_auth,
    prepare_test_config,
    require_binary,
    require_root,
    running_containerd,
    short_tempdir,
)
from tests.support.doctor_corpus import CORPUS, materialize

pytestmark = pytest.mark.system
ALL = SERIES

# (fixture, containerd series, host, what containerd does with that host's auth)
DUMP_CLAIMS = [
    ("v2-plugins-cri.toml", ("1.6", "1.7"), "", 'rejected: invalid plugin key URI "cri"'),
    ("v2-plugins-cri.toml", ("2",), "europe-docker.pkg.dev", "absent"),
    ("v3-v2-table.toml", ("2",), "europe-docker.pkg.dev", "absent"),
    ("v3-v2-table.toml", ("2",), "us-docker.pkg.dev", "read"),
    ("v2-v3-table.toml", ("1.6", "1.7"), "europe-docker.pkg.dev", "absent"),
    ("v2-v3-table.toml", ("2",), "europe-docker.pkg.dev", "read"),
    ("v1-no-version.toml", ("1.6", "1.7"), "europe-docker.pkg.dev", "read"),
    ("v1-no-version.toml", ("2",), "europe-docker.pkg.dev", "absent"),
    ("v1-no-version.toml", ALL, "us-docker.pkg.dev", "absent"),
    ("v2-ignored-keys.toml", ALL, "europe-docker.pkg.dev", "absent"),
    ("v2-ignored-keys.toml", ALL, "us-docker.pkg.dev", "absent"),
    ("v2-ignored-keys.toml", ALL, "europe-west1-docker.pkg.dev", "absent"),
    ("v2-ignored-keys.toml", ALL, "asia-docker.pkg.dev", "no username"),
    ("v2-ignored-keys.toml", ALL, "registry.example.com:5000", "no identitytoken"),
    ("v2-host-keys.toml", ALL, "europe-docker.pkg.dev", "absent"),
    ("v2-host-keys.toml", ALL, "us-docker.pkg.dev", "absent"),
    ("v2-host-keys.toml", ALL, "europe-west1-docker.pkg.dev", "read"),
    ("v2-missing-host.toml", ALL, "auth", "absent"),
    ("v2-syntax.toml", ALL, "", "rejected"),
]


def _claims() -> list[tuple[str, str, str, str]]:
    return [(f, s, h, w) for f, series, h, w in DUMP_CLAIMS for s in series]


@pytest.mark.parametrize(("fixture", "series", "host", "claim"), _claims(), ids=lambda v: str(v))
def test_containerd_agrees_with_doctor(fixture: str, series: str, host: str, claim: str, tmp_path: Path) -> None:
    binary = require_binary(series)
    config = materialize(CORPUS / "containerd" / fixture, tmp_path)
    assert any(f.severity == "error" for r in check_sources(find([str(config)]).sources, None) for f in r.findings)
    if claim.startswith("rejected"):
        with pytest.raises(ConfigRejected) as rejected:
            config_dump(binary, config)
        assert claim.partition(": ")[2] in str(rejected.value)
        return
    auth = dumped_auth(binary, config_dump(binary, config), host) or {}
    if claim == "read":
        assert auth.get("password") or auth.get("auth"), f"containerd {binary.version} did not read {host}"
    elif claim == "absent":
        assert not any(auth.get(k) for k in ("username", "password", "auth", "identitytoken")), f"containerd {binary.version} read {host}: {sorted(auth)}"
    else:
        field = claim.split()[-1]
        assert auth.get("password") and not auth.get(field), f"{field} unexpectedly kept by containerd {binary.version}"


@pytest.mark.parametrize("series", ALL)
def test_escaped_header_key_is_read_as_that_release_reads_it(series: str, tmp_path: Path) -> None:
    """Issue 15: judged for the binary's release, doctor counts the credential under
    [...configs."europe\u002Ddocker.pkg.dev".auth] for europe-docker.pkg.dev exactly when
    that containerd reads it there (2.x unescapes header keys, 1.x keeps them as written)."""
    binary = require_binary(series)
    config = materialize(CORPUS / "containerd" / "v2-header-escape.toml", tmp_path)
    dumped = dumped_auth(binary, config_dump(binary, config), "europe-docker.pkg.dev") or {}
    found = find([str(config)])
    set_releases(found, parse_option(binary.version))
    (report,) = check_sources(found.sources, None)
    assert bool(dumped.get("password")) == ("europe-docker.pkg.dev" in report.hosts) == (binary.major >= 2), (binary.version, sorted(dumped))


@pytest.mark.parametrize("series", ALL)
def test_a_version_3_config_is_reported_exactly_where_containerd_cannot_use_it(series: str, tmp_path: Path) -> None:
    """config-version-release (the node's version_mismatch), judged for the binary's release:
    1.7 rejects a version-3 file, 1.6 loads it as version 2 and drops the 2.x table's
    auth (config dump), 2.x reads it; doctor reports it exactly for 1.x, saying which."""
    binary = require_binary(series)
    config = tmp_path / "config.toml"
    config.write_text('version = 3\n[plugins."io.containerd.cri.v1.images".registry.configs."b.example".auth]\n  username = "u"\n  password = "p"\n')
    config.chmod(0o600)
    try:
        dumped: dict | None = config_dump(binary, config)
    except ConfigRejected as exc:
        assert "unsupported config version" in str(exc), str(exc)
        dumped = None
    found = find([str(config)])
    set_releases(found, parse_option(binary.version))
    (report,) = check_sources(found.sources, None)
    hits = [f for f in report.findings if f.code == "config-version-release"]
    if binary.major >= 2:
        assert dumped is not None and dumped_auth(binary, dumped, "b.example") and hits == []
    elif dumped is None:
        assert binary.version >= "1.7" and [f.why.split(",")[0] for f in hits] == [f"containerd {binary.major}.{binary.version.split('.')[1]} refuses to start with it (unsupported config version)"]
    else:
        assert not dumped_auth(binary, dumped, "b.example") and dumped.get("version") == 2
        assert [f.why.split(",")[0] for f in hits] == ["containerd 1.6 loads it as version 2 and ignores the 2.x tables it is written for"], hits


@pytest.mark.parametrize("series", SERIES)
def test_stock_default_config_has_no_findings(series: str, tmp_path: Path) -> None:
    binary = require_binary(series)
    config = tmp_path / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(default_config(binary))
    config.chmod(0o644)  # stock files are world-readable: no credentials, so no finding
    proc = subprocess.run([sys.executable, "-m", "generator", "doctor", str(tmp_path), "--json"], capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and '"findings": []' in proc.stdout, proc.stdout


@pytest.mark.parametrize("series", SERIES)
def test_stock_config_after_rendered_apply_has_no_findings(series: str, profile_dir: Path, tmp_path: Path) -> None:
    binary = require_binary(series)
    out = tmp_path / "out"
    assert run_cli("render", str(gar_profile(profile_dir, version=binary.minor_series)), "-o", str(out)).code == 0
    node = tmp_path / "node"
    config = node / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(default_config(binary))
    rootfs = out / "node/rootfs"
    apply = subprocess.run([sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(node),
                            "--plan", str(rootfs / "etc/regauth/plan.json"), "--no-restart"], capture_output=True, text=True, check=False, timeout=60)
    assert apply.returncode == 0, apply.stderr
    assert dumped_auth(binary, config_dump(binary, config), "europe-docker.pkg.dev")
    proc = subprocess.run([sys.executable, "-m", "generator", "doctor", str(node), "--image", "europe-docker.pkg.dev/p/r/app:1"],
                          capture_output=True, text=True, check=False, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and "no problems found" in proc.stdout, proc.stdout


@pytest.mark.parametrize("series", SERIES)
def test_mirrors_with_config_path_really_breaks_the_cri_plugin(series: str) -> None:
    """The startup conflict doctor reports is what containerd logs (the CRI plugin does not load)."""
    require_root()
    binary = require_binary(series)
    with short_tempdir("dcp-") as workdir:
        sandbox = Sandbox(workdir, {})
        try:
            text = prepare_test_config(default_config(binary), workdir)
            plugin = binary.images_plugin
            header = re.search(r"^\s*\[plugins\.[\"']" + re.escape(plugin) + r"[\"']\.registry\]\s*$", text, re.MULTILINE)
            assert header, "stock config has no registry table"
            start = text.index("config_path", header.end())
            end = text.index("\n", start)
            text = text[:start] + f'config_path = "{workdir}/certs.d"' + text[end:]
            text += f'\n[plugins."{plugin}".registry.mirrors."docker.io"]\n  endpoint = ["https://mirror.gcr.io"]\n'
            config = workdir / "config.toml"
            config.write_text(text)
            findings = [f for r in check_sources(find([str(config)]).sources, None) for f in r.findings]
            assert [f.code for f in findings] == ["config-path-conflict"]
            log = ""
            try:
                with running_containerd(binary, config, workdir, sandbox, ready_timeout=10) as running:
                    log = running.log_text()
            except Exception:  # a CRI that never becomes ready is one way this shows
                log = (workdir / "containerd.log").read_text(errors="replace")
            assert "`mirrors` cannot be set when `config_path` is provided" in log
        finally:
            sandbox.close()
