"""Issue 5: containerd config version 1 and MicroK8s templates, loaded by real containerd.

- ``version: "1.2"`` (containerd 1.0-1.2) makes regauth write a version-1 config
  (``plugins.cri``); containerd 1.6 reads it, migrates it, and the dump holds our
  password byte for byte under the exact host; a CRI pull then succeeds with it.
- containerd 2.x silently drops ``plugins.cri`` registry settings from a version-1
  file (proven here with its own ``config dump``), so regauth refuses that combination.
- MicroK8s: the real templates from canonical/microk8s (committed under
  tests/fixtures/microk8s/, see README there) get the auth block, are rendered the
  way the snap renders them (``sed`` over ``${SNAP}``, ``${SNAP_DATA}``, ...), and
  are loaded by containerd 2.x (current template) or 1.6 (legacy ``plugins.cri``
  template).  A password holding ``${SNAP_DATA}`` survives the sed exactly.

Run alone:  python3 -m pytest -m system tests/system/test_legacy_and_microk8s.py
"""

# ruff: noqa: F811 - pytest fixtures are imported, then named as parameters
from __future__ import annotations

import base64
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.containerd import (  # noqa: F401 - fixtures
    Containerd,
    config_dump,
    ctd_dir,
    dumped_auth,
    prepare_test_config,
    require_binary,
    require_root,
    running_containerd,
    workdir_layout,
)
from tests.support.registry import RegistryEnv, TokenRequest, registry_env, token_log  # noqa: F401 - fixtures
from tests.system.test_pull import assert_no_secret, run

pytestmark = pytest.mark.system
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "microk8s"
CURRENT = FIXTURES / "containerd-template-08a8c4a.toml"  # version 2, plugins."io.containerd.grpc.v1.cri"
LEGACY = FIXTURES / "containerd-template-c9099aa-legacy.toml"  # no version (1), plugins.cri
TEMPLATE = "var/snap/microk8s/current/args/containerd-template.toml"
TRICKY = "p${SNAP_DATA}w$$${SNAP}d\\${RUNTIME}"  # what the snap's sed would mangle if written raw


def write_profile(folder: Path, targets: str, registries: str, key_file: bytes, password: str = TRICKY) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (("key.json", key_file), ("pw", password.encode())):
        (folder / name).write_bytes(data)
        (folder / name).chmod(0o600)
    path = folder / "node.yaml"
    path.write_text(
        "version: 1\n" + targets + "secrets:\n  gar-key: {source: file, path: key.json}\n  pw: {source: file, path: pw}\n"
        "registries:\n" + registries
    )
    return path


def render(sandbox, profile: Path, out: Path) -> Path:
    python = sys.executable
    run(sandbox, [python, "-m", "generator", "render", str(profile), "-o", str(out)])
    return out / "node" / "rootfs"


def apply(rootfs: Path, root: Path | None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--plan", str(rootfs / "etc/regauth/plan.json"), "--no-restart"]
    if root is not None:
        argv += ["--root", str(root)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def gar_and_basic(env: RegistryEnv) -> str:
    return (
        f"  - host: {json.dumps(env.host())}\n    auth: {{type: gcp-service-account, secret: gar-key}}\n"
        "  - host: robot.example.com\n    auth: {type: basic, username: robot, secret: pw}\n"
    )


def snap_sed(template: Path, out: Path, snap_data: Path) -> None:
    """What run-containerd-with-args does, with real sed (placeholder list of the current wrapper)."""
    subs = {"SNAP": "/snap/microk8s/current", "SNAP_DATA": str(snap_data), "SNAP_COMMON": str(snap_data / "common"),
            "RUNTIME": "runc", "SNAPSHOTTER": "native", "RUNTIME_TYPE": "io.containerd.runc.v2"}  # fmt: skip
    script = ";".join(f"s@${{{name}}}@{value}@g" for name, value in subs.items())
    with open(out, "wb") as handle:
        subprocess.run(["sed", script, str(template)], stdout=handle, check=True, timeout=30)


def test_v1_config_is_read_by_containerd_16_and_pulls(registry_env: RegistryEnv, token_log: list[TokenRequest], ctd_dir: Path) -> None:
    env, binary = registry_env, require_binary("1.6")
    lay = workdir_layout(ctd_dir)
    config = ctd_dir / "config.toml"
    # A version-1 file as containerd 1.2 would have it, made test-local (v1 plugin names).
    base = (
        f'[plugins.opt]\n  path = "{lay["opt"]}"\n'
        '[plugins.cri]\n  sandbox_image = "registry.k8s.io/pause:3.6"\n'
        '  [plugins.cri.containerd]\n    snapshotter = "native"\n'
        f'  [plugins.cri.cni]\n    bin_dir = "{lay["cni_bin"]}"\n    conf_dir = "{lay["cni_conf"]}"\n'
    )
    config.write_text(base)
    targets = f'targets:\n  containerd:\n    version: "1.2"\n    config: {config}\n'
    rootfs = render(env.sandbox, write_profile(ctd_dir / "profile", targets, gar_and_basic(env), env.key_file), ctd_dir / "out")
    # A node with no config gets a version-1 file of its own (the rootfs preview shows it).
    preview = rootfs / str(config).lstrip("/")
    assert preview.read_text().startswith("version = 1\n") and "[plugins.cri.registry.configs." in preview.read_text()
    assert dumped_auth(binary, config_dump(binary, preview), env.host())["username"] == "_json_key_base64"

    first = apply(rootfs, None)
    assert first.returncode == 0, first.stderr
    result = config.read_bytes()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    dump = config_dump(binary, config)
    assert dump["version"] == 2  # containerd migrated our version-1 file
    assert dumped_auth(binary, dump, env.host())["password"] == base64.b64encode(env.key_file).decode()
    assert dumped_auth(binary, dump, "robot.example.com")["password"] == TRICKY
    assert dump["plugins"]["io.containerd.grpc.v1.cri"]["sandbox_image"] == "registry.k8s.io/pause:3.6"
    second = apply(rootfs, None)
    assert second.returncode == 0 and "already up to date" in second.stderr
    assert config.read_bytes() == result

    token_log.clear()
    with running_containerd(binary, config, ctd_dir, env.sandbox, ca_file=env.ca_file) as ctd:
        assert ctd.pull(env.image_ref()) == env.image.config_digest
    assert token_log and all((r.username, r.status) == ("_json_key_base64", 200) for r in token_log), token_log
    assert_no_secret(env, first.stderr + second.stderr + ctd.log_text(), "apply output or containerd's log")


def test_containerd_2x_drops_v1_registry_settings_so_regauth_refuses(registry_env: RegistryEnv, ctd_dir: Path) -> None:
    env, binary = registry_env, require_binary("2")
    config = ctd_dir / "config.toml"
    v1 = '[plugins.cri]\n  sandbox_image = "x"\n[plugins.cri.registry.configs."registry.test".auth]\n  username = "u"\n  password = "p"\n'
    config.write_text(v1)
    assert dumped_auth(binary, config_dump(binary, config), "registry.test") is None  # the trap, in 2.x's own words
    targets = f'targets:\n  containerd:\n    version: "{binary.minor_series}"\n    config: {config}\n'
    rootfs = render(env.sandbox, write_profile(ctd_dir / "profile", targets, gar_and_basic(env), env.key_file), ctd_dir / "out")
    result = apply(rootfs, None)
    assert result.returncode == 1, result.stderr
    assert "version 1" in result.stderr and "containerd config migrate" in result.stderr
    assert config.read_text() == v1


def _microk8s_root(workdir: Path, template: Path) -> Path:
    root = workdir / "node"
    target = root / TEMPLATE
    target.parent.mkdir(parents=True)
    shutil.copy(template, target)
    return root


def _assert_placeholders_intact(original: str, merged: str) -> None:
    for line in original.splitlines():
        if "${" in line:
            assert line in merged.splitlines(), line


@pytest.mark.parametrize("case", ["current-2x", "legacy-16"])
def test_microk8s_template_rendered_like_the_snap_loads_exactly(case: str, registry_env: RegistryEnv,
                                                                token_log: list[TokenRequest], ctd_dir: Path) -> None:  # fmt: skip
    require_root()
    env = registry_env
    template, binary = (CURRENT, require_binary("2")) if case == "current-2x" else (LEGACY, require_binary("1.6"))
    root = _microk8s_root(ctd_dir, template)
    targets = "targets:\n  microk8s: {wait_for_template: 0}\n"
    rootfs = render(env.sandbox, write_profile(ctd_dir / "profile", targets, gar_and_basic(env), env.key_file), ctd_dir / "out")
    first = apply(rootfs, root)
    assert first.returncode == 0, first.stderr
    merged = (root / TEMPLATE).read_text()
    assert stat.S_IMODE((root / TEMPLATE).stat().st_mode) == 0o600
    _assert_placeholders_intact(template.read_text(), merged)
    assert "${SNAP_DATA}w" not in merged  # our value went in escaped, invisible to sed
    assert (root / (TEMPLATE + ".regauth.orig")).read_bytes() == template.read_bytes()
    second = apply(rootfs, root)
    assert second.returncode == 0 and "already up to date" in second.stderr
    assert (root / TEMPLATE).read_text() == merged

    rendered = ctd_dir / "containerd.toml"
    snap_sed(root / TEMPLATE, rendered, ctd_dir / "snapdata")
    dump = config_dump(binary, rendered)
    assert dumped_auth(binary, dump, env.host())["password"] == base64.b64encode(env.key_file).decode()
    assert dumped_auth(binary, dump, "robot.example.com") == {**dumped_auth(binary, dump, "robot.example.com"), "username": "robot", "password": TRICKY}
    assert_no_secret(env, first.stderr + second.stderr, "apply output")
    if case != "current-2x":
        return
    # And containerd 2.x pulls with it: the snap's rendering plus only test-local paths
    # (what the snap passes as flags, and opt/NRI dirs that must not touch the host).
    lay = workdir_layout(ctd_dir)
    local = prepare_test_config(rendered.read_text(), ctd_dir) + (
        f'\n[plugins."io.containerd.internal.v1.opt"]\n  path = "{lay["opt"]}"\n'
        f'[plugins."io.containerd.nri.v1.nri"]\n  disable = true\n  socket_path = "{lay["nri_socket"]}"\n'
    )
    rendered.write_text(local)
    token_log.clear()
    with running_containerd(binary, rendered, ctd_dir, env.sandbox, ca_file=env.ca_file) as ctd:
        assert ctd.pull(env.image_ref()) == env.image.config_digest
    assert token_log and all(r.status == 200 for r in token_log), token_log
    assert_no_secret(env, ctd.log_text(), "containerd's log")


def test_microk8s_template_with_registry_mirrors_refuses_hosts_toml(registry_env: RegistryEnv, ctd_dir: Path) -> None:
    """The v2 template still has registry.mirrors, which containerd refuses next to the
    config_path that hosts.toml (tls, mirrors) needs: regauth says so and changes nothing."""
    env = registry_env
    root = _microk8s_root(ctd_dir, CURRENT)
    (ctd_dir / "profile").mkdir()
    shutil.copy(env.ca_file, ctd_dir / "profile" / "ca.pem")
    registries = f"  - host: {json.dumps(env.host())}\n    auth: {{type: gcp-service-account, secret: gar-key}}\n    tls: {{ca_file: ca.pem}}\n"
    targets = "targets:\n  microk8s: {wait_for_template: 0}\n"
    rootfs = render(env.sandbox, write_profile(ctd_dir / "profile", targets, registries, env.key_file), ctd_dir / "out")
    result = apply(rootfs, root)
    assert result.returncode == 1 and "registry.mirrors.docker.io" in result.stderr, result.stderr
    assert (root / TEMPLATE).read_bytes() == CURRENT.read_bytes()
    assert not (root / "var/snap/microk8s/current/args/certs.d").exists()
