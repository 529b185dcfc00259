"""The rendered out/NAME/packer/ through Debian's real Packer 1.6.6.

- `packer validate` + `packer fmt -check` on a template dir holding our packer/
  files plus a googlecompute source (fake project and zone), for every mode;
- hcl_string against Packer's own HCL parser (`packer console`), property-based;
- a real `packer build` over SSH into a sandbox (tests/support/packer.py), then the
  image is inspected: files, modes, owners, the unit enabled and passing
  `systemd-analyze verify`, the baked plan byte-identical and the secret nowhere
  else; finally the baked regauth-apply runs inside the image against Debian's
  stock containerd config.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from generator.tomlcompat import tomllib
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.outputs.hcl import hcl_string
from tests.conftest import ROOT, run_cli, write_profile
from tests.support.keys import key_file_bytes, service_account_key
from tests.support.packer import (
    SANDBOX_SOURCE,
    BuildResult,
    build_over_ssh,
    fmt_check,
    packer_binary,
    packer_env,
    validate,
)

pytestmark = pytest.mark.system

REQUIRED_PLUGINS = "required-plugins.pkr.hcl"
UNIT = "regauth-apply.service"
# Decomposed é: survives only because the plan travels base64 (HCL would NFC it).
CANARY = 'C4N4RY-pw ${HOME} %{ if } {{ .Path }} \'sq\' "dq" \\bs `id` $(id) e\u0301\ttab'
GAR = "europe-docker.pkg.dev"
ROBOT = "registry.example.com:5000"

GCE_SOURCE = """\
source "googlecompute" "golden" {
  project_id          = "regauth-test-project"
  zone                = "europe-west1-b"
  source_image_family = "debian-12"
  ssh_username        = "packer"
  skip_create_image   = true
}
"""

PROFILES = {
    "boot": """
        version: 1
        targets: {containerd: {version: "1.6"}}
        secrets:
          gar-key: {source: gcp-secret-manager, project: regauth-test, secret: gar-reader, version: 3, fetch: boot}
        registries:
          - {host: europe-docker.pkg.dev, auth: {type: gcp-service-account, secret: gar-key}}
        """,
    "baked": """
        version: 1
        targets: {containerd: {version: "1.6"}}
        secrets:
          gar-key: {source: file, path: key.json}
          robot: {source: env, var: REGAUTH_TEST_CANARY}
        registries:
          - {host: europe-docker.pkg.dev, auth: {type: gcp-service-account, secret: gar-key, username: _json_key}}
          - {host: "registry.example.com:5000", auth: {type: basic, username: robot, secret: robot}}
        output: {packer: {bake_secret: true}}
        """,
}
PROFILES["plain"] = PROFILES["baked"].replace("bake_secret: true", "bake_secret: false")


def render(folder: Path, mode: str, sources: list[str]) -> Path:
    """Render one mode's profile with `sources`; return out/NAME/."""
    key = folder / "key.json"
    if not key.exists():
        key.write_bytes(key_file_bytes(service_account_key()))
        key.chmod(0o600)
    body = PROFILES[mode].replace("output: {packer: {", "output: {packer: {sources: [%s], " % ", ".join(sources))
    if "output:" not in body:
        body = body.rstrip(" ") + "        output: {packer: {sources: [%s]}}\n" % ", ".join(sources)
    profile = write_profile(folder, body, mode)
    result = run_cli("render", str(profile), "-o", str(folder / "out"), env={"REGAUTH_TEST_CANARY": CANARY})
    assert result.code == 0, result.err
    return folder / "out" / mode


def template(node: Path, dest: Path) -> Path:
    """A user's template folder: their source next to everything in out/NAME/packer/."""
    shutil.copytree(node / "packer", dest)
    (dest / "source.pkr.hcl").write_text(GCE_SOURCE)
    return dest


def leaks(text: str, node: Path) -> list[str]:
    """Every form of a credential that must never show in Packer's output or log."""
    key = key_file_bytes(service_account_key())
    plan = (node / "rootfs/etc/regauth/plan.json").read_bytes()
    forms = {
        "canary": "C4N4RY",
        "canary b64": base64.b64encode(CANARY.encode()).decode(),
        "key id": json.loads(key)["private_key_id"],
        "key b64": base64.b64encode(key).decode()[:60],
        "plan b64": base64.b64encode(plan).decode()[:60],
    }
    return [name for name, form in forms.items() if form in text]


# --------------------------------------------------------------------------- validate / fmt
@pytest.mark.parametrize("mode", ["boot", "baked", "plain"])
def test_validate_and_fmt_with_a_googlecompute_source(tmp_path: Path, mode: str) -> None:
    node = render(tmp_path, mode, ["source.googlecompute.golden"])
    t = template(node, tmp_path / "t")
    # No -var-file: in the baked mode Packer must pick up regauth-secrets.auto.pkrvars.hcl.
    proc = validate(t, exclude=[REQUIRED_PLUGINS])
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")
    proc = fmt_check(t)  # syntax only: the required_plugins and var files are checked too
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_baked_snippet_needs_the_var_file(tmp_path: Path) -> None:
    """Negative control: the sensitive variable really comes from the auto var file."""
    t = template(render(tmp_path, "baked", ["source.googlecompute.golden"]), tmp_path / "t")
    (t / "regauth-secrets.auto.pkrvars.hcl").unlink()
    proc = validate(t, exclude=[REQUIRED_PLUGINS])
    assert proc.returncode == 1
    assert 'Unset variable "registry_plan_b64"' in proc.stdout + proc.stderr


def test_validate_fails_when_the_source_is_not_defined(tmp_path: Path) -> None:
    """Why output.packer.sources exists: the build block names sources literally."""
    t = template(render(tmp_path, "boot", ["source.googlecompute.other"]), tmp_path / "t")
    proc = validate(t, exclude=[REQUIRED_PLUGINS])
    assert proc.returncode == 1
    assert "Unknown source googlecompute.other" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- hcl_string vs Packer
def packer_console(template_dir: Path, expression: str) -> str:
    """Evaluate one HCL expression with `packer console` (offline, clean environment)."""
    with tempfile.TemporaryDirectory(prefix="regauth-packer-console-") as tmp:
        offline = ["unshare", "--net", "--"] if os.geteuid() == 0 and shutil.which("unshare") else []
        proc = subprocess.run(
            [*offline, str(packer_binary()), "console", "."], cwd=template_dir, env=packer_env(Path(tmp)),
            input=expression + "\n", capture_output=True, text=True, timeout=60, check=False,
        )
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return proc.stdout


SAMPLE = st.lists(
    st.one_of(
        st.sampled_from(["$", "%", "{", "}", "${", "%{", "$${", "%%{", "\\", '"', "\n", "\r\n", "\t", "\b", "\f", "\x00", "\x7f", "\x85", "\u2028", "é", "😀", "{{ .Path }}", "\\u0041"]),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
    ),
    max_size=16,
).map(lambda parts: unicodedata.normalize("NFC", "".join(parts)))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(SAMPLE, min_size=1, max_size=40))
def test_hcl_string_round_trips_through_packer(tmp_path_factory: pytest.TempPathFactory, values: list[str]) -> None:
    """Packer's parser reads back exactly what hcl_string wrote (a .auto.pkrvars.hcl, like ours)."""
    t = tmp_path_factory.mktemp("hcl")
    names = [f"v{i}" for i in range(len(values))]
    (t / "vars.pkr.hcl").write_text("".join(f'variable "{n}" {{\n  type = string\n}}\n\n' for n in names)
                                    + 'source "null" "n" {\n  communicator = "none"\n}\n\nbuild {\n  sources = ["source.null.n"]\n}\n')
    # One attribute per paragraph: `packer fmt` aligns the `=` of adjacent lines.
    (t / "sample.auto.pkrvars.hcl").write_text("\n".join(f"{n} = {hcl_string(v)}\n" for n, v in zip(names, values)), encoding="utf-8")
    assert validate(t).returncode == 0
    proc = fmt_check(t)
    assert proc.returncode == 0, proc.stdout
    out = packer_console(t, "jsonencode([%s])" % ", ".join(f"base64encode(var.{n})" for n in names))
    assert [base64.b64decode(b).decode("utf-8") for b in json.loads(out)] == values


# --------------------------------------------------------------------------- real builds
@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, BuildResult]]]:
    """One real build per mode, sandboxes kept alive for inspection until the module ends."""
    done: dict[str, tuple[Path, BuildResult]] = {}
    try:
        for mode in ("boot", "baked", "plain"):
            folder = tmp_path_factory.mktemp(f"build-{mode}")
            node = render(folder, mode, ["source.googlecompute.golden", SANDBOX_SOURCE])
            result = build_over_ssh(template(node, folder / "t"), exclude=[REQUIRED_PLUGINS])
            done[mode] = (node, result)
            print(f"packer build ({mode}): {result.seconds:.2f} s, lower={result.rootfs_kind}, transfer={result.file_transfer}")
            result.check()
        yield done
    finally:
        for _, result in done.values():
            result.close()


MODES = ["boot", "baked", "plain"]


@pytest.mark.parametrize("mode", MODES)
def test_build_installs_files_with_owner_and_mode(builds: dict, mode: str) -> None:
    node, build = builds[mode]
    rootfs = node / "packer/files/rootfs"
    expected = {
        "/etc/regauth": ("dir", 0o700),
        "/usr/local/sbin/regauth-apply": ("file", 0o755),
        f"/etc/systemd/system/{UNIT}": ("file", 0o644),
    }
    if mode != "plain":
        expected["/etc/regauth/plan.json"] = ("file", 0o644 if mode == "boot" else 0o600)
    for path, (kind, perm) in expected.items():
        info = build.file(path)
        assert (info.kind, oct(info.mode), info.uid, info.gid) == (kind, oct(perm), 0, 0), path
        if kind == "file" and path != "/etc/regauth/plan.json":
            assert info.data == (rootfs / path.lstrip("/")).read_bytes(), path
    if mode == "plain":
        assert not build.exists("/etc/regauth/plan.json")
    else:
        # Byte-identical to the plan user-data would deliver.
        assert build.file("/etc/regauth/plan.json").data == (node / "rootfs/etc/regauth/plan.json").read_bytes()
    assert not build.exists("/tmp/regauth-stage")
    assert "regauth: installed /usr/local/sbin/regauth-apply" in build.output


@pytest.mark.parametrize("mode", MODES)
def test_build_enables_the_unit_and_it_verifies(builds: dict, mode: str) -> None:
    _, build = builds[mode]
    link = build.file(f"/etc/systemd/system/multi-user.target.wants/{UNIT}")
    assert (link.kind, link.target) == ("symlink", f"/etc/systemd/system/{UNIT}")
    proc = build.run(f"systemctl is-enabled {UNIT}")
    assert (proc.returncode, proc.stdout.strip()) == (0, "enabled"), proc.stderr
    if not build.exists("/usr/bin/systemd-analyze"):
        pytest.skip("no systemd-analyze in the sandbox rootfs")
    proc = build.run(f"systemd-analyze verify /etc/systemd/system/{UNIT}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert UNIT not in proc.stderr and "regauth" not in proc.stderr, proc.stderr  # warnings come with rc 0


def test_baked_secret_only_in_the_plan(builds: dict) -> None:
    node, build = builds["baked"]
    assert not leaks(build.output, node), "credential in packer's output"
    assert not leaks(build.log, node), "credential in PACKER_LOG"
    remote = [line for line in build.log.splitlines() if "starting remote command" in line]
    assert remote and not [line for line in remote if "REGAUTH_PLAN_B64" in line or "<sensitive>" in line]
    assert build.grep_image(b"C4N4RY") == ["/etc/regauth/plan.json"]
    plan = (node / "rootfs/etc/regauth/plan.json").read_bytes()
    assert build.grep_image(base64.b64encode(plan)[:60]) == []


def test_baked_plan_applies_inside_the_image(builds: dict) -> None:
    """The image's own regauth-apply merges the baked plan into Debian's stock config."""
    node, build = builds["baked"]
    if not build.exists("/usr/bin/python3"):
        pytest.skip("no python3 in the sandbox rootfs")
    stock = (ROOT / "tests/fixtures/containerd/debian12-1.6.20-shipped.toml").read_text()
    config = build.sandbox.host_path("/etc/containerd/config.toml")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(stock)
    first = build.run("/usr/local/sbin/regauth-apply --no-restart")
    assert first.returncode == 0, first.stderr
    assert "C4N4RY" not in first.stdout + first.stderr
    merged = build.file("/etc/containerd/config.toml")
    assert (oct(merged.mode), merged.uid) == (oct(0o600), 0)
    doc = tomllib.loads(merged.data.decode())
    configs = doc["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"]
    key = key_file_bytes(service_account_key()).decode()
    assert configs[ROBOT]["auth"] == {"username": "robot", "password": CANARY}
    assert configs[GAR]["auth"] == {"username": "_json_key", "password": key}
    original = tomllib.loads(stock)
    assert doc["plugins"]["io.containerd.grpc.v1.cri"]["cni"] == original["plugins"]["io.containerd.grpc.v1.cri"]["cni"]
    assert doc["plugins"]["io.containerd.internal.v1.opt"] == original["plugins"]["io.containerd.internal.v1.opt"]
    second = build.run("/usr/local/sbin/regauth-apply --no-restart")
    assert second.returncode == 0 and "already up to date" in second.stderr
    assert build.file("/etc/containerd/config.toml").data == merged.data
    # containerd itself reads it back (when Debian's containerd is installed here).
    from tests.support.containerd import config_dump, find_binary

    binary = find_binary("1.6")
    if binary is not None:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "config.toml"
            copy.write_bytes(merged.data)
            dump = config_dump(binary, copy)
        assert dump["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"][ROBOT]["auth"]["password"] == CANARY


def test_builds_left_the_host_untouched(builds: dict) -> None:
    assert not Path(f"/etc/systemd/system/{UNIT}").exists()
    assert not Path("/tmp/regauth-stage").exists()
