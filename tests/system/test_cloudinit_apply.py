"""Rendered user-data applied by real cloud-init (issues 2, 4 and 6).

Every format regauth writes (plain #cloud-config, multipart MIME with the user's own
parts, gzip) is schema-checked by cloud-init 22.4 and 25.1 and applied by cloud-init
in a throwaway Debian sandbox: files, owners, modes and contents are checked, the
apply step must have run, cloud-init must log no WARNING, and a second boot must
change nothing.  The GCE datasource case runs the boot-time fetch end to end against
fakes of the metadata server and of Secret Manager (TLS, its real hostname) inside
the sandbox's own network namespace.
"""

from __future__ import annotations

import base64
from generator.tomlcompat import tomllib
from pathlib import Path

import pytest

from tests.conftest import gar_profile, run_cli, write_profile
from tests.support.cloudinit_schema import schema_check
from tests.support.keys import key_file_bytes
from tests.support.rootfs import ensure_cloudinit_versions, ensure_rootfs
from tests.support.program_host import serving_handler
from tests.support.sandbox import SandboxService, make_test_ca, run_cloud_init

pytestmark = pytest.mark.system
HOST = "europe-docker.pkg.dev"
V2 = ("plugins", "io.containerd.grpc.v1.cri", "registry", "configs")
STOCK = b'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.9"\n'
THEIRS = b"#cloud-config\nwrite_files:\n- path: /etc/theirs.conf\n  content: kept\n  permissions: '0640'\nruncmd:\n- [sh, -c, 'echo theirs > /var/tmp/theirs-ran']\n"


def render(folder: Path, *extra: str, profile: Path | None = None) -> bytes:
    profile = profile or gar_profile(folder, username="_json_key")
    result = run_cli("render", str(profile), "-o", str(folder / "out"), *extra)
    assert result.code == 0, result.err
    return (folder / "out" / profile.stem / "user-data").read_bytes()


def dig(tree: dict, path: tuple) -> object:
    for key in path:
        tree = tree[key]
    return tree


# plain: our #cloud-config alone; mime: merged with the user's own part; gzip: merged and compressed
VARIANTS = ("gzip", "mime", "plain")


def _args(folder: Path, variant: str) -> tuple[str, ...]:
    theirs = folder / "theirs.yaml"
    theirs.write_bytes(THEIRS)
    if variant == "plain":
        return ()
    return ("--merge-with", str(theirs))


def _profile(folder: Path, variant: str) -> Path:
    base = gar_profile(folder, username="_json_key").read_text()
    if variant == "gzip":
        base += "output: {compress: always}\n"
    return write_profile(folder, base, name=f"node-{variant}")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("version", ["22.4", "25.1"])
def test_schema_valid_on_both_cloud_init_versions(profile_dir: Path, variant: str, version: str) -> None:
    if version not in ensure_cloudinit_versions((version,)):
        pytest.fail(f"cloud-init {version} unavailable")
    user_data = render(profile_dir, *_args(profile_dir, variant), profile=_profile(profile_dir, variant))
    ok, output = schema_check(user_data, version)
    assert ok, output


@pytest.mark.parametrize("variant", VARIANTS)
def test_real_cloud_init_applies_it(profile_dir: Path, sa_key: dict, variant: str) -> None:
    ensure_rootfs()
    user_data = render(profile_dir, *_args(profile_dir, variant), profile=_profile(profile_dir, variant))
    with run_cloud_init(user_data, boots=2, files={"/etc/containerd/config.toml": STOCK}) as run:
        assert run.ok, run.problems()
        plan, script, config = (run.stat(p) for p in ("/etc/regauth/plan.json", "/usr/local/sbin/regauth-apply", "/etc/containerd/config.toml"))
        assert (plan.owner, plan.mode) == ("root:root", 0o600)
        assert (script.owner, script.mode) == ("root:root", 0o755)
        assert (config.owner, config.mode) == ("root:root", 0o600)
        parsed = tomllib.loads(run.read_text("/etc/containerd/config.toml"))
        assert dig(parsed, V2 + (HOST, "auth")) == {"username": "_json_key", "password": key_file_bytes(sa_key).decode()}
        assert parsed["plugins"]["io.containerd.grpc.v1.cri"]["sandbox_image"] == "registry.k8s.io/pause:3.9"
        assert run.read_bytes("/etc/containerd/config.toml.regauth.orig") == STOCK
        assert "regauth-apply: containerd: /etc/containerd/config.toml updated" in run.output_log
        assert sa_key["private_key_id"] not in run.log + run.output_log
        if variant != "plain":  # the user's own part survived, in full
            assert run.read_text("/etc/theirs.conf") == "kept"
            assert run.stat("/etc/theirs.conf").mode == 0o640
            assert run.read_text("/var/tmp/theirs-ran").strip() == "theirs"
        assert run.changes_in_boot(2) == []


def test_gce_datasource_boot_time_fetch_end_to_end(profile_dir: Path, sa_key: dict) -> None:
    """No key in user-data; the VM fetches it from Secret Manager with the metadata token."""
    from tests.support.fake_gsm import FakeSecretManager, make_rest_handler
    from tests.support.fake_metadata import MetadataState

    ensure_rootfs()
    profile = write_profile(
        profile_dir,
        f"""
        version: 1
        targets: {{containerd: {{version: "1.7"}}}}
        secrets:
          gar-key: {{source: gcp-secret-manager, project: regauth-test, secret: gar-reader, version: "2", fetch: boot}}
        registries:
          - {{host: {HOST}, auth: {{type: gcp-service-account, secret: gar-key}}}}
        """,
        name="boot",
    )
    user_data = render(profile_dir, profile=profile)
    assert b"PRIVATE KEY" not in user_data and base64.b64encode(key_file_bytes(sa_key))[:40] not in user_data
    key = key_file_bytes(sa_key)
    fake = FakeSecretManager()
    fake.add_secret("regauth-test", "gar-reader", b"old", key)
    ca = make_test_ca(profile_dir / "ca", ["secretmanager.googleapis.com"])
    service = SandboxService(make_rest_handler(fake), hostnames=["secretmanager.googleapis.com"], port=443, tls=ca.server_context())
    state = MetadataState()
    with run_cloud_init(user_data, datasource="GCE", gce_metadata=state, services=[service], ca_pems=[ca.ca_pem], files={"/etc/containerd/config.toml": STOCK}) as run:
        assert run.ok, run.problems()
        parsed = tomllib.loads(run.read_text("/etc/containerd/config.toml"))
        assert dig(parsed, V2 + (HOST, "auth"))["password"] == base64.b64encode(key).decode()
        assert fake.fetch_count("regauth-test", "gar-reader") == 1
        assert state.tokens_issued, "the token came from the metadata server"
        assert run.stat("/etc/regauth/plan.json").mode == 0o644  # holds no secret in this mode


def _bake(out: Path):  # type: ignore[no-untyped-def]
    """A before_boot hook that builds the 'image' the way the Packer snippet does: its
    files staged where the file provisioner puts them, then its install.sh as root."""
    stage = "/tmp/regauth-stage"
    packer = out / "packer"

    def bake(sb, number: int) -> None:  # type: ignore[no-untyped-def]
        if number != 1:
            return
        for path in sorted((packer / "files").rglob("*")):
            if path.is_file():
                sb.write_file(f"{stage}/{path.relative_to(packer / 'files')}", path.read_bytes(), mode=path.stat().st_mode & 0o777)
        result = sb.run(["/bin/sh", f"{stage}/install.sh"], timeout=60)
        assert result.returncode == 0, result.stderr
        sb.run(["rm", "-rf", stage], check=True)

    return bake


def test_program_baked_into_the_image_plan_in_user_data(profile_dir: Path, sa_key: dict) -> None:
    """output.program: image: the image built with out/NAME/packer/ has regauth-apply, the
    user-data (a few KB) only the plan; cloud-init applies it and a reboot changes nothing."""
    ensure_rootfs()
    profile = write_profile(profile_dir, gar_profile(profile_dir, username="_json_key").read_text() + "output:\n  program: image\n", name="baked")
    user_data = render(profile_dir, profile=profile)
    assert len(user_data) < 5 * 1024 and b"regauth-apply\n  owner" not in user_data
    with run_cloud_init(user_data, boots=2, files={"/etc/containerd/config.toml": STOCK}, before_boot=_bake(profile_dir / "out" / "baked")) as run:
        assert run.ok, run.problems()
        assert run.stat("/usr/local/sbin/regauth-apply").mode == 0o755
        assert run.read_bytes("/usr/local/sbin/regauth-apply") == (profile_dir / "out/baked/rootfs/usr/local/sbin/regauth-apply").read_bytes()
        assert run.view.exists("/etc/systemd/system/multi-user.target.wants/regauth-apply.service")  # install.sh enabled it
        parsed = tomllib.loads(run.read_text("/etc/containerd/config.toml"))
        assert dig(parsed, V2 + (HOST, "auth")) == {"username": "_json_key", "password": key_file_bytes(sa_key).decode()}
        assert "regauth-apply: containerd: /etc/containerd/config.toml updated" in run.output_log
        assert sa_key["private_key_id"] not in run.log + run.output_log
        assert run.changes_in_boot(2) == []


def test_program_image_on_an_image_without_it(profile_dir: Path) -> None:
    """The same user-data on an image not built with the snippet: one line with its code,
    cloud-init reports the failed runcmd, the config is untouched."""
    ensure_rootfs()
    profile = write_profile(profile_dir, gar_profile(profile_dir).read_text() + "output:\n  program: image\n", name="baked")
    user_data = render(profile_dir, profile=profile)
    with run_cloud_init(user_data, files={"/etc/containerd/config.toml": STOCK}) as run:
        assert not run.ok
        lines = [line for line in run.output_log.splitlines() if "regauth-apply" in line]
        assert lines == ["regauth-apply: FAILED [node-program-missing] /usr/local/sbin/regauth-apply is not in this image, so the plan "
                         "user-data delivered was not applied; build the image with out/NAME/packer/ (it bakes /usr/local/sbin/regauth-apply), "
                         "or render with output.program: user-data"], run.output_log
        assert run.read_bytes("/etc/containerd/config.toml") == STOCK


def test_program_fetched_from_a_url_at_first_boot(profile_dir: Path, sa_key: dict) -> None:
    """output.program: url on a plain image: user-data (plan + fetcher) fetches the
    program over HTTPS (test CA, its own hostname), installs it and applies the plan; the
    second boot fetches nothing and changes nothing."""
    ensure_rootfs()
    url = "https://artifacts.regauth.test/regauth/regauth-apply"
    profile = write_profile(profile_dir, gar_profile(profile_dir, username="_json_key").read_text() + f"output:\n  program: url\n  program_url: {url}\n", name="fetched")
    user_data = render(profile_dir, profile=profile)
    program = (profile_dir / "out/fetched/rootfs/usr/local/sbin/regauth-apply").read_bytes()
    assert len(user_data) < 7 * 1024 and base64.b64encode(program[:300])[:60] not in user_data
    asked: list[str] = []
    ca = make_test_ca(profile_dir / "ca", ["artifacts.regauth.test"])
    service = SandboxService(serving_handler(program, asked), hostnames=["artifacts.regauth.test"], port=443, tls=ca.server_context())
    with run_cloud_init(user_data, boots=2, services=[service], ca_pems=[ca.ca_pem], files={"/etc/containerd/config.toml": STOCK}) as run:
        assert run.ok, run.problems()
        assert asked == ["/regauth/regauth-apply"], asked  # once: the second boot finds it in place
        assert run.read_bytes("/usr/local/sbin/regauth-apply") == program
        assert run.stat("/usr/local/sbin/regauth-apply").mode == 0o755
        parsed = tomllib.loads(run.read_text("/etc/containerd/config.toml"))
        assert dig(parsed, V2 + (HOST, "auth")) == {"username": "_json_key", "password": key_file_bytes(sa_key).decode()}
        assert "regauth-apply: containerd: /etc/containerd/config.toml updated" in run.output_log
        assert sa_key["private_key_id"] not in run.log + run.output_log
        assert run.changes_in_boot(2) == []


def test_program_url_serving_other_bytes_changes_nothing(profile_dir: Path) -> None:
    """The URL serves another program (an older render): one coded line, cloud-init
    reports the failed runcmd, no program installed and the config untouched."""
    ensure_rootfs()
    url = "https://artifacts.regauth.test/regauth-apply"
    profile = write_profile(profile_dir, gar_profile(profile_dir).read_text() + f"output:\n  program: url\n  program_url: {url}\n", name="fetched")
    user_data = render(profile_dir, profile=profile)
    other = b"#!/bin/sh\necho this is not the rendered program\n"
    ca = make_test_ca(profile_dir / "ca", ["artifacts.regauth.test"])
    service = SandboxService(serving_handler(other, []), hostnames=["artifacts.regauth.test"], port=443, tls=ca.server_context())
    with run_cloud_init(user_data, services=[service], ca_pems=[ca.ca_pem], files={"/etc/containerd/config.toml": STOCK}) as run:
        assert not run.ok
        lines = [line for line in run.output_log.splitlines() if "regauth-apply" in line]
        assert len(lines) == 1 and lines[0].startswith(f"regauth-apply: FAILED [node-program-fetch] {url} does not serve the regauth-apply this user-data was rendered with"), run.output_log
        assert not run.view.exists("/usr/local/sbin/regauth-apply")
        assert run.read_bytes("/etc/containerd/config.toml") == STOCK
