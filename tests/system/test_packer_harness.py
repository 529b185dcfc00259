"""Prove the Packer harness with a hand-written snippet, before any generator exists.

The snippet below is laid out the way regauth's generated one should be (see
tests/support/packer.py and the report to the lead):

    registry-auth.pkr.hcl      variables + one build block (1.6.6-compatible)
    required-plugins.pkr.hcl   modern Packer only; left out for 1.6.6
    files/install.sh           static POSIX sh, run as root by the shell provisioner
    files/rootfs/...           the tree the image gets, uploaded to a 0700 stage dir

Content travels in files, never in HCL strings: Packer 1.6.6 runs provisioner
strings (inline, environment_vars, execute_command) through Go templates, more than
once, so `{{` is mangled there. The one secret is passed base64-encoded through an
env-var *file* (use_env_var_file), so it is in no remote argv and no log line.
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.packer import (
    SANDBOX_SOURCE,
    BuildResult,
    build_over_ssh,
    fmt_check,
    packer_binary,
    validate,
)

pytestmark = pytest.mark.system

# A canary with every character class that has bitten HCL, shell, JSON or Go templates.
CANARY = 'C4N4RY-pw ${HOME} %{ if } {{ .Path }} \'sq\' "dq" \\bs `id` $(id)\nline2\ttab é'
GCE_SOURCE = "source.googlecompute.golden"
REQUIRED_PLUGINS = "required-plugins.pkr.hcl"
UNIT = "regauth-first-boot.service"

SOURCE_HCL = """\
source "googlecompute" "golden" {
  project_id          = "regauth-test-project"
  zone                = "europe-west1-b"
  source_image_family = "debian-12"
  ssh_username        = "packer"
  skip_create_image   = true
}
"""

REQUIRED_PLUGINS_HCL = """\
packer {
  required_plugins {
    googlecompute = {
      version = ">= 1.1.0"
      source  = "github.com/hashicorp/googlecompute"
    }
  }
}
"""

# `packer fmt` canonical form (checked by test_fmt_check_*). SOURCES is filled in per use,
# as the generator would from the profile: GCE for users, null.sandbox for the build test.
SNIPPET_HCL = """\
variable "registry_password" {
  type      = string
  sensitive = true
}

build {
  sources = [SOURCES]

  # As the SSH user (no sudo): a private staging dir the uploads go into.
  provisioner "shell" {
    inline = ["mkdir -m 0700 /tmp/regauth-stage"]
  }

  provisioner "file" {
    source      = "${path.root}/files/rootfs"
    destination = "/tmp/regauth-stage"
  }

  # As root (sudo when the SSH user is not root): install with explicit owner and
  # mode, enable the unit. The secret reaches the script only through the env-var
  # file (0600 in the 0700 stage dir, removed by Packer), base64 so that Packer's
  # Go-template pass cannot alter it.
  provisioner "shell" {
    script           = "${path.root}/files/install.sh"
    remote_folder    = "/tmp/regauth-stage"
    use_env_var_file = true
    environment_vars = ["REGAUTH_SECRET_B64=${base64encode(var.registry_password)}"]
    execute_command  = "$(command -v sudo >/dev/null && echo sudo -n) sh -c '. {{ .EnvVarFile }} && sh {{ .Path }}'"
  }

  # HCL escaping probe (test only): `$${` and `%%{` must arrive as `${` and `%{`.
  provisioner "shell" {
    inline = [
      "printf '%s\\\\n' 'dollar: $${HOME}' 'percent: %%{ if true }x%%{ endif }' 'quote: \\"' 'backslash: \\\\' > /tmp/regauth-stage/probe",
      "$(command -v sudo >/dev/null && echo sudo -n) install -m 0644 /tmp/regauth-stage/probe /etc/regauth/escape-probe",
    ]
  }

  provisioner "shell" {
    inline = ["rm -rf /tmp/regauth-stage"]
  }
}
"""

ESCAPE_PROBE = b'dollar: ${HOME}\npercent: %{ if true }x%{ endif }\nquote: "\nbackslash: \\\n'

INSTALL_SH = """\
#!/bin/sh
# Runs as root on the image being built. Owner and mode are set here, explicitly:
# the file provisioner copies the build machine's modes and the SSH user's owner.
set -eu
stage=/tmp/regauth-stage/rootfs
install -D -o root -g root -m 0644 "$stage/etc/systemd/system/regauth-first-boot.service" \\
    /etc/systemd/system/regauth-first-boot.service
install -D -o root -g root -m 0755 "$stage/usr/local/libexec/regauth/first-boot.sh" \\
    /usr/local/libexec/regauth/first-boot.sh
install -d -o root -g root -m 0700 /etc/regauth
install -o root -g root -m 0644 "$stage/etc/regauth/registries.json" /etc/regauth/registries.json
if [ -n "${REGAUTH_SECRET_B64:-}" ]; then
    tmp=$(umask 077 && mktemp /etc/regauth/.password.XXXXXX)
    printf '%s' "$REGAUTH_SECRET_B64" | base64 -d > "$tmp"
    chmod 0600 "$tmp"
    mv -f "$tmp" /etc/regauth/password
fi
systemctl enable regauth-first-boot.service
echo "regauth: installed registry auth files and enabled regauth-first-boot.service"
"""

UNIT_FILE = """\
[Unit]
Description=regauth: fetch registry credentials before the container runtime starts
Wants=network-online.target
After=network-online.target
Before=containerd.service
ConditionPathExists=!/var/lib/regauth/first-boot.done

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/libexec/regauth/first-boot.sh

[Install]
WantedBy=multi-user.target
"""

FIRST_BOOT_SH = """\
#!/bin/sh
set -eu
echo "regauth: first boot: nothing to fetch in this test image"
mkdir -p /var/lib/regauth
: > /var/lib/regauth/first-boot.done
"""

REGISTRIES_JSON = '{"registries": ["europe-docker.pkg.dev"], "literal": "${x} %{y} {{z}}"}\n'


def write_template(root: Path, sources: str) -> Path:
    """A user's template dir with the snippet dropped in next to their source."""
    files = root / "files"
    (files / "rootfs/etc/systemd/system").mkdir(parents=True)
    (files / "rootfs/usr/local/libexec/regauth").mkdir(parents=True)
    (files / "rootfs/etc/regauth").mkdir(parents=True)
    (root / "source.pkr.hcl").write_text(SOURCE_HCL)
    (root / REQUIRED_PLUGINS).write_text(REQUIRED_PLUGINS_HCL)
    (root / "registry-auth.pkr.hcl").write_text(SNIPPET_HCL.replace("SOURCES", f'"{sources}"'))
    (files / "install.sh").write_text(INSTALL_SH)
    (files / "rootfs/etc/systemd/system" / UNIT).write_text(UNIT_FILE)
    (files / "rootfs/usr/local/libexec/regauth/first-boot.sh").write_text(FIRST_BOOT_SH)
    (files / "rootfs/etc/regauth/registries.json").write_text(REGISTRIES_JSON)
    # Deliberately "wrong" local modes: install.sh must not depend on them.
    os.chmod(files / "rootfs/usr/local/libexec/regauth/first-boot.sh", 0o600)
    os.chmod(files / "rootfs/etc/regauth/registries.json", 0o666)
    return root


def _leaks(text: str) -> list[str]:
    """Every form of the canary that must never show up in Packer's output or log."""
    b64 = base64.b64encode(CANARY.encode()).decode()
    return [form for form in ("C4N4RY", CANARY.split("\n")[0], b64) if form in text]


# --------------------------------------------------------------------------- offline checks
def test_packer_is_debian_1_6_6() -> None:
    assert "/packer/1.6.6/" in str(packer_binary())


def test_validate_passes_with_googlecompute_source(tmp_path: Path) -> None:
    template = write_template(tmp_path / "t", GCE_SOURCE)
    proc = validate(template, {"registry_password": CANARY}, exclude=[REQUIRED_PLUGINS])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not _leaks(proc.stdout + proc.stderr)


def test_validate_fails_on_required_plugins_with_1_6_6(tmp_path: Path) -> None:
    """Why the required_plugins block must live in a file of its own."""
    template = write_template(tmp_path / "t", GCE_SOURCE)
    proc = validate(template, {"registry_password": CANARY})
    assert proc.returncode == 1
    assert "required_plugins" in proc.stdout + proc.stderr


def test_validate_needs_the_sensitive_variable(tmp_path: Path) -> None:
    template = write_template(tmp_path / "t", GCE_SOURCE)
    proc = validate(template, exclude=[REQUIRED_PLUGINS])
    assert proc.returncode == 1
    assert 'Unset variable "registry_password"' in proc.stdout + proc.stderr


def test_validate_reports_file_and_line(tmp_path: Path) -> None:
    """Negative control: validate is not vacuous on this template dir."""
    template = write_template(tmp_path / "t", GCE_SOURCE)
    broken = template / "registry-auth.pkr.hcl"
    broken.write_text(broken.read_text().replace('destination = "/tmp/regauth-stage"', "destinatoin = 1"))
    proc = validate(template, {"registry_password": "x"}, exclude=[REQUIRED_PLUGINS])
    assert proc.returncode == 1
    assert "registry-auth.pkr.hcl line" in proc.stdout + proc.stderr


def test_fmt_check_passes_on_whole_dir(tmp_path: Path) -> None:
    template = write_template(tmp_path / "t", GCE_SOURCE)
    proc = fmt_check(template)  # fmt is syntax-only, so the required_plugins file is fine
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fmt_check_detects_misformatting(tmp_path: Path) -> None:
    template = write_template(tmp_path / "t", GCE_SOURCE)
    (template / "source.pkr.hcl").write_text(SOURCE_HCL.replace("project_id          =", "project_id ="))
    proc = fmt_check(template)
    assert proc.returncode == 3, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- real build
@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildResult]:
    template = write_template(tmp_path_factory.mktemp("packer") / "t", SANDBOX_SOURCE)
    with build_over_ssh(template, {"registry_password": CANARY}, exclude=[REQUIRED_PLUGINS]) as result:
        print(f"packer build: {result.seconds:.2f} s, lower={result.rootfs_kind}, transfer={result.file_transfer}")
        yield result.check()


def test_build_installs_files_with_explicit_modes(build: BuildResult) -> None:
    expected = {
        "/etc/regauth": ("dir", 0o700),
        "/etc/regauth/registries.json": ("file", 0o644),
        "/etc/regauth/password": ("file", 0o600),
        f"/etc/systemd/system/{UNIT}": ("file", 0o644),
        "/usr/local/libexec/regauth/first-boot.sh": ("file", 0o755),
    }
    for path, (kind, mode) in expected.items():
        info = build.file(path)
        assert (info.kind, oct(info.mode), info.uid, info.gid) == (kind, oct(mode), 0, 0), path
    assert build.file("/etc/regauth/registries.json").data == REGISTRIES_JSON.encode()
    assert build.file(f"/etc/systemd/system/{UNIT}").data == UNIT_FILE.encode()


def test_build_secret_arrives_byte_for_byte(build: BuildResult) -> None:
    assert build.file("/etc/regauth/password").data == CANARY.encode()


def test_build_secret_only_in_its_file(build: BuildResult) -> None:
    """Nothing else on the image holds it: stage dir, env-var file and scripts are gone."""
    assert build.grep_image(b"C4N4RY") == ["/etc/regauth/password"]
    assert build.grep_image(base64.b64encode(CANARY.encode())) == []
    assert not build.exists("/tmp/regauth-stage")


def test_build_secret_not_in_output_log_or_remote_commands(build: BuildResult) -> None:
    assert not _leaks(build.output)
    assert not _leaks(build.log), "secret (or its base64) in PACKER_LOG"
    remote = [line for line in build.log.splitlines() if "starting remote command" in line]
    assert remote, "PACKER_LOG should list remote commands"
    assert not [line for line in remote if "<sensitive>" in line or "REGAUTH_SECRET" in line]


def test_build_hcl_escapes_round_trip(build: BuildResult) -> None:
    assert build.file("/etc/regauth/escape-probe").data == ESCAPE_PROBE


def test_build_enables_unit(build: BuildResult) -> None:
    link = build.file(f"/etc/systemd/system/multi-user.target.wants/{UNIT}")
    assert link.kind == "symlink"
    assert link.target == f"/etc/systemd/system/{UNIT}"
    proc = build.run(f"systemctl is-enabled {UNIT}")
    assert (proc.returncode, proc.stdout.strip()) == (0, "enabled"), proc.stderr


def test_build_unit_passes_systemd_analyze_verify(build: BuildResult) -> None:
    if not build.exists("/usr/bin/systemd-analyze"):
        pytest.skip("no systemd-analyze in the sandbox rootfs")
    proc = build.run(f"systemd-analyze verify /etc/systemd/system/{UNIT}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert UNIT not in proc.stderr, proc.stderr  # verify warns on stderr with rc 0


def test_build_output_shows_install_step(build: BuildResult) -> None:
    assert "regauth: installed registry auth files" in build.output


def test_build_left_host_untouched(build: BuildResult) -> None:
    assert not Path("/etc/regauth").exists()
    assert not Path(f"/etc/systemd/system/{UNIT}").exists()
    assert build.run("hostname").stdout.strip() == "regauth-sandbox"
    assert socket.gethostname() != "regauth-sandbox"


def test_sandbox_stops_everything(tmp_path: Path) -> None:
    """After close(): no process of the namespace, no temp dir (mounts die with the ns)."""
    template = write_template(tmp_path / "t", SANDBOX_SOURCE)
    result = build_over_ssh(template, {"registry_password": "x"}, exclude=[REQUIRED_PLUGINS])
    pid, tmp = result.sandbox.ns_pid, result.sandbox.tmp
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert children, "sshd should be running in the namespace"
    result.close()
    assert [p for p in [pid, *children] if Path(f"/proc/{p}").exists()] == []
    assert not tmp.exists()
    result.close()  # idempotent
