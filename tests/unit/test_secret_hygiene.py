"""Secret hygiene: a canary secret never leaves by accident.

Canaries: a chunk of a generated key's ``private_key``, its ``client_email``, and an
env password full of characters that every escaper touches.  Every command runs
(``--verbose`` where it exists) on success and on every failure path we can
trigger; the canaries, their base64 (every alignment), JSON-escaped and
TOML-escaped forms must appear nowhere in stdout, stderr, exception text,
``manifest.json``, process arguments of anything regauth or regauth-apply spawns,
or any output file that is not 0600.  ``repr()``/``str()`` of every object that
holds a secret is redacted.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from generator import applyscript
from generator.errors import InvalidInput, RegauthError
from tests.conftest import run_cli, write_profile
from tests.support.keys import key_file_bytes, service_account_key

TOKEN = "cAnArY7q"
ENV_PASSWORD = f"{TOKEN}-pw \"q\" 'sq' \\bs ${{x}} %{{y}} {{{{ z }}}} \u00e9\U0001f600 tab\t"
EMAIL = f"{TOKEN.lower()}-mail@regauth-test.iam.gserviceaccount.com"
HOST_GAR = "europe-docker.pkg.dev"
HOST_BASIC = "registry.example.com:5000"


def canary_key() -> dict[str, str]:
    return {**service_account_key(), "client_email": EMAIL}


def key_chunk(key: dict[str, str]) -> str:
    """48 characters from the middle of the PEM body: unique to this generated key."""
    return key["private_key"].split("\n")[5][8:56]


def _b64_fragments(data: bytes) -> set[str]:
    """Base64 of ``data`` at every byte alignment (the part that does not depend on neighbours)."""
    out = set()
    for k in range(3):
        text = base64.b64encode(b"\0" * k + data).decode()
        start = ((k + 2) // 3) * 4
        end = ((k + len(data)) // 3) * 4
        if end - start >= 12:
            out.add(text[start:end])
    return out


def forms(secret: str) -> set[str]:
    apply = applyscript.module()
    raw = secret.encode("utf-8")
    out = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], apply.toml_string(secret)[1:-1]}
    out |= {apply.toml_string(secret, True)[1:-1]} if "dollar_safe" in apply.toml_string.__code__.co_varnames else set()
    out |= _b64_fragments(raw)
    return {f for f in out if len(f) >= 8}


def all_forms(key: dict[str, str], key_bytes: bytes) -> set[str]:
    found = forms(ENV_PASSWORD) | forms(key_chunk(key)) | forms(EMAIL)
    found |= {base64.b64encode(key_bytes).decode()[:400]}  # the _json_key_base64 password
    found |= _b64_fragments(f"robot:{ENV_PASSWORD}".encode())  # Docker-style auth
    return found | {TOKEN, TOKEN.lower()}  # the marker alone: no escaping or quoting style hides it


def leaks(text: str | bytes, canaries: set[str]) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return sorted(c[:24] for c in canaries if c in text)


PROFILE = f"""
version: 1
targets:
  containerd: {{version: "1.7"}}
secrets:
  gar-key: {{source: file, path: key.json}}
  robot: {{source: env, var: REGAUTH_CANARY_PW}}
registries:
  - host: {HOST_GAR}
    auth: {{type: gcp-service-account, secret: gar-key, username: _json_key}}
  - host: {HOST_BASIC}
    auth: {{type: basic, username: robot, secret: robot}}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    key = canary_key()
    (tmp_path / "key.json").write_bytes(key_file_bytes(key))
    (tmp_path / "key.json").chmod(0o600)
    return tmp_path


def canaries() -> set[str]:
    key = canary_key()
    return all_forms(key, key_file_bytes(key))


ENV = {"REGAUTH_CANARY_PW": ENV_PASSWORD}


def check_outputs(out: Path, names: set[str]) -> None:
    """manifest.json never; any file that is not 0600 never; secret files are 0600."""
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        found = leaks(path.read_bytes(), names)
        if path.name == "manifest.json":
            assert not found, f"{path}: {found}"
        if mode & 0o077:
            assert not found, f"{path} is {mode:04o} and holds {found}"


def commands(folder: Path, profile: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    out = str(folder / "out")
    return [
        ("render", ["render", str(profile), "-o", out, "--verbose"], ENV),
        ("render --dry-run", ["render", str(profile), "-o", out, "--dry-run", "--verbose"], ENV),
        ("validate", ["validate", str(profile), "--verbose"], ENV),
        ("validate --json", ["validate", str(profile), "--json"], ENV),
        ("schema", ["schema"], ENV),
        ("doctor rootfs", ["doctor", str(folder / "out" / profile.stem / "rootfs")], ENV),
        ("doctor --json", ["doctor", str(folder / "out" / profile.stem / "rootfs"), "--json"], ENV),
        ("verify (registry down)", ["verify", str(profile), "--timeout", "1"], ENV),
    ]


def available(name: str) -> bool:
    from generator.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return name.split()[0] in sub.choices  # type: ignore[attr-defined]


def test_every_command_on_success_keeps_the_canaries_in(folder: Path) -> None:
    profile = write_profile(folder, PROFILE.replace(HOST_BASIC, "127.0.0.1:9").replace(HOST_GAR, "127.0.0.2:9"), "canary")
    names = canaries()
    ran = []
    for label, args, env in commands(folder, profile):
        if not available(label):
            continue
        result = run_cli(*args, env=env)
        ran.append(label)
        assert "Traceback" not in result.err, (label, result.err[-2000:])
        assert not leaks(result.out + result.err, names), (label, leaks(result.out + result.err, names))
        if label == "render":
            assert result.code == 0, result.err
            check_outputs(folder / "out", names)
            # The secrets are really there (0600), so the scan above could have failed.
            user_data = folder / "out/canary/user-data"
            assert stat.S_IMODE(user_data.stat().st_mode) == 0o600
    assert {"render", "render --dry-run", "validate", "validate --json", "schema"} <= set(ran)


def _bad_key(kind: str) -> bytes:
    key = canary_key()
    if kind == "type":
        return key_file_bytes({**key, "type": ENV_PASSWORD})
    if kind == "escaped":
        return key_file_bytes({**key, "private_key": key["private_key"].replace("\n", "\\n")})
    if kind == "pasted":
        return key_file_bytes(key).decode().replace("\\n", "\n").encode()
    if kind == "not-json":
        return key["private_key"].encode()
    raise AssertionError(kind)


FAILURES = {
    "key type is the canary": (PROFILE, {"key": "type"}),
    "key escaped twice": (PROFILE, {"key": "escaped"}),
    "key pasted into TOML": (PROFILE, {"key": "pasted"}),
    "key is a bare PEM": (PROFILE, {"key": "not-json"}),
    "password with NUL": (PROFILE, {"env": ENV_PASSWORD + "\x00"}),
    # 12.8 KB of hex digits gzip cannot shrink below AWS's 16 KB once base64-encoded (the
    # node program's own size does not decide this case).
    "user-data too large": (PROFILE + "output: {cloud: aws, compress: never}\n", {"env": ENV_PASSWORD + "".join(hashlib.sha256(b"%d" % i).hexdigest() for i in range(400))}),
    "output folder is a file": (PROFILE, {"out_is_file": True}),
    "invalid profile next to secrets": (PROFILE + "bogus: 1\n", {}),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_every_failure_path_keeps_the_canaries_in(folder: Path, case: str) -> None:
    body, how = FAILURES[case]
    if "key" in how:
        (folder / "key.json").write_bytes(_bad_key(how["key"]))
    env = {"REGAUTH_CANARY_PW": how.get("env", ENV_PASSWORD).replace("\x00", "")} if "\x00" not in how.get("env", "") else {}
    profile = write_profile(folder, body, "canary")
    out = folder / "out"
    if how.get("out_is_file"):
        out.write_text("not a folder\n")
    names = canaries()
    if "\x00" in how.get("env", ""):  # env vars cannot hold NUL; the same bytes in a secret file
        (folder / "pw.txt").write_bytes(how["env"].encode())
        (folder / "pw.txt").chmod(0o600)
        profile.write_text(profile.read_text().replace("{source: env, var: REGAUTH_CANARY_PW}", "{source: file, path: pw.txt}"))
    for args in (["render", str(profile), "-o", str(out), "--verbose"], ["render", str(profile), "--dry-run", "-o", str(out)], ["validate", str(profile), "--json"]):
        result = run_cli(*args, env=env)
        text = result.out + result.err
        if "--dry-run" not in args and args[0] == "render":
            assert result.code in (1, 2), (case, args, text[-1500:])
        assert "Traceback" not in text and "internal error" not in text, (case, text[-1500:])
        assert not leaks(text, names), (case, args[0], leaks(text, names))
    if out.is_dir():
        check_outputs(out, names)


def test_exception_text_is_clean(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exceptions themselves (str, repr, render), not only what the CLI prints."""
    from generator.render import render_all

    monkeypatch.setenv("REGAUTH_CANARY_PW", ENV_PASSWORD)
    (folder / "key.json").write_bytes(_bad_key("type"))
    profile = write_profile(folder, PROFILE, "canary")
    with pytest.raises(RegauthError) as info:
        render_all([profile], folder / "out", jobs=1)
    exc = info.value
    texts = [str(exc), repr(exc), exc.render()] + ([repr(p) for p in exc.problems] if isinstance(exc, InvalidInput) else [])
    assert not leaks("\n".join(texts), canaries())


# ---------------------------------------------------------------- reprs
def _walk(obj: Any, seen: set[int], depth: int = 0) -> list[Any]:
    """obj and every object reachable through dataclass fields, lists, tuples and dicts."""
    if id(obj) in seen or depth > 8:
        return []
    seen.add(id(obj))
    found = [obj]
    children: list[Any] = []
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        children = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
    elif isinstance(obj, (list, tuple, set)):
        children = list(obj)
    elif isinstance(obj, dict):
        children = list(obj.values())
    for child in children:
        found.extend(_walk(child, seen, depth + 1))
    return found


def test_repr_and_str_of_every_secret_holding_object_are_redacted(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.render import Outcome, _Job, node_files, plan_steps, render_all, render_profile, with_manifest
    from generator.profiles import load_profile
    from generator.secrets.resolve import SecretResolver

    monkeypatch.setenv("REGAUTH_CANARY_PW", ENV_PASSWORD)
    profile = load_profile(write_profile(folder, PROFILE + "output: {packer: {bake_secret: true}}\n", "canary"))
    creds = SecretResolver().credentials(profile)
    rendered = render_profile(profile, creds, [("theirs.yaml", b"#cloud-config\n")])
    files = with_manifest(rendered)
    outcomes = render_all([profile.file], folder / "out", write=False, jobs=1)
    from generator.outputs.userdata import package

    user_data = package(rt_user_data(rendered), cloud="none", compress="always", profile_file="p")
    roots = [creds, rendered, files, outcomes, node_files(profile, plan_steps(profile, creds)), user_data, Outcome("x", rendered=rendered), _Job(folder, True, (("theirs.yaml", ENV_PASSWORD.encode()),))]
    objects = [o for root in roots for o in _walk(root, set())]
    kinds = {type(o).__name__ for o in objects}
    assert {"SecretValue", "Credential", "OutputFile", "Step", "Rendered", "NodeFile", "Outcome", "UserData", "_Job"} <= kinds, kinds
    names = canaries() | forms(ENV_PASSWORD)
    for obj in objects:
        if type(obj) in (str, bytes, dict, list, tuple, set, int, bool, type(None)):
            continue  # plain data reached through a field: what matters is its holder's repr
        for text in (repr(obj), str(obj)):
            assert not leaks(text, names), f"{type(obj).__name__} leaks {leaks(text, names)} in its repr/str"


def rt_user_data(rendered: Any) -> bytes:
    return next(f.data for f in rendered.files if f.relpath == "user-data")


# ---------------------------------------------------------------- processes spawned on the node
FAKE_SYSTEMCTL = """#!/bin/sh
# Records its own command line (what /proc/PID/cmdline shows) and environment.
tr '\\0' ' ' < /proc/$$/cmdline >> "$REGAUTH_SPAWN_LOG"; echo >> "$REGAUTH_SPAWN_LOG"
env >> "$REGAUTH_SPAWN_LOG"
exit 0
"""


def test_apply_step_spawns_nothing_that_carries_a_secret(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    result = run_cli("render", str(write_profile(folder, PROFILE, "canary")), "-o", str(folder / "out"), env=ENV)
    assert result.code == 0, result.err
    rootfs = folder / "out/canary/rootfs"
    node = tmp_path_factory.mktemp("node")
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    (bin_dir / "containerd").write_text("#!/bin/sh\nexit 0\n")  # the runtime is "installed"
    (bin_dir / "containerd").chmod(0o755)
    (node / "usr/bin").mkdir(parents=True)
    (node / "usr/bin/containerd").write_text("")
    log = node / "spawn.log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "REGAUTH_SPAWN_LOG": str(log)}
    argv = [sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(node), "--plan", str(rootfs / "etc/regauth/plan.json")]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    spawned = log.read_text()
    assert "systemctl" in spawned and "restart" in spawned, "the restart path ran (is-active, then restart)"
    names = canaries()
    assert not leaks(spawned, names), leaks(spawned, names)
    assert not leaks(proc.stdout + proc.stderr, names)
    # A failing apply (unmergeable config) says why without quoting the secret either.
    config = node / "etc/containerd/config.toml"
    # (a string where the host's table must go: regauth cannot write the auth there)
    config.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.configs]\n"europe-docker.pkg.dev" = "x"\n')
    failed = subprocess.run(argv + ["--no-restart"], capture_output=True, text=True, env=env, timeout=60)
    assert failed.returncode == 1 and "left unchanged" in failed.stderr
    assert not leaks(failed.stdout + failed.stderr, names)


def test_render_spawns_no_process_with_a_secret(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Instrument subprocess and os.exec*/posix_spawn: whatever render starts, its argv is clean."""
    import generator.cli

    spawned: list[str] = []
    real_popen_init = subprocess.Popen.__init__

    def recording_init(self, args, *a, **kw):  # type: ignore[no-untyped-def]
        spawned.append(repr(args) + repr(kw.get("env")))
        return real_popen_init(self, args, *a, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", recording_init)
    for name in ("execv", "execve", "execvp", "execvpe", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            real = getattr(os, name)
            monkeypatch.setattr(os, name, lambda *a, _real=real, **kw: (spawned.append(repr(a)), _real(*a, **kw))[1])
    monkeypatch.setenv("REGAUTH_CANARY_PW", ENV_PASSWORD)
    profile = write_profile(folder, PROFILE, "canary")
    assert generator.cli.main(["render", str(profile), "-o", str(folder / "out"), "--verbose"]) == 0
    assert not leaks("\n".join(spawned), canaries())


# ---------------------------------------------------------------- every dataclass, statically
SENSITIVE_FIELDS = {"password", "auth", "identitytoken", "token", "access_token", "data", "raw", "body", "text", "payload", "merge_with", "spec", "key", "value"}
# Fields with those names that hold no secret value (names, paths, public material).
NOT_SECRET = {
    ("AuthSpec", "secret"), ("GsmSpec", "secret"), ("GsmRef", "secret"), ("TlsSpec", "key"),
    ("ImageRef", "text"),  # an image reference
    ("Registry", "auth"),  # AuthSpec: type, secret *name*, username
    ("LoadedYaml", "data"),  # the profile document (it names secrets, never holds them)
}


def _all_dataclasses() -> list[type]:
    import importlib
    import pkgutil

    import generator

    found = []
    for info in pkgutil.walk_packages(generator.__path__, "generator."):
        if info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # a module another engineer is writing right now; the rest still count
            continue
        for obj in vars(module).values():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_every_dataclass_field_that_can_hold_a_secret_is_kept_out_of_repr() -> None:
    offenders = []
    classes = _all_dataclasses()
    assert len(classes) > 20
    for cls in classes:
        # dataclass's generated __repr__ is wrapped by reprlib.recursive_repr; a hand-written one is not.
        custom_repr = "__repr__" in cls.__dict__ and not hasattr(cls.__dict__["__repr__"], "__wrapped__")
        for f in dataclasses.fields(cls):
            if f.name in SENSITIVE_FIELDS and f.repr and not custom_repr and (cls.__name__, f.name) not in NOT_SECRET:
                offenders.append(f"{cls.__module__}.{cls.__name__}.{f.name}")
    assert not offenders, "add field(repr=False) (or a redacting __repr__): " + ", ".join(offenders)


# The same secrets and registries, served by regauth's kubelet credential provider, with rotation.
PROVIDER_PROFILE = PROFILE.replace("version: 1\n", "version: 1\nrefresh: 1h\n", 1).replace(
    '  containerd: {version: "1.7"}\n', "  kubelet:\n    credential_provider: {type: regauth, kubelet_flags: kubeadm}\n"
)


def test_credential_provider_and_timer_keep_the_canaries_in(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 16: the provider's store, its answers' only channel (stdout), its errors, and the
    refresh units.  The answer itself carries the password to kubelet: nothing else may."""
    result = run_cli("render", str(write_profile(folder, PROVIDER_PROFILE, "canary")), "-o", str(folder / "out"), env=ENV)
    assert result.code == 0, result.err
    names = canaries()
    assert not leaks(result.out + result.err, names)
    rootfs = folder / "out/canary/rootfs"
    check_outputs(folder / "out", names)
    for unit in ("regauth-refresh.service", "regauth-refresh.timer"):
        assert not leaks((rootfs / "etc/systemd/system" / unit).read_bytes(), names)
    node = tmp_path_factory.mktemp("node")
    applied = subprocess.run([sys.executable, str(rootfs / "usr/local/sbin/regauth-apply"), "--root", str(node), "--plan",
                              str(rootfs / "etc/regauth/plan.json"), "--no-restart"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert applied.returncode == 0 and not leaks(applied.stderr, names), applied.stderr
    for path in node.rglob("*"):
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            assert not leaks(path.read_bytes(), names), f"{path} is readable by others and holds a canary"
    assert stat.S_IMODE((node / "etc/regauth/credential-provider.json").stat().st_mode) == 0o600
    provider = [sys.executable, str(rootfs / "usr/local/sbin/regauth-credential-provider"), "--root", str(node)]
    request = {"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest", "image": f"{HOST_BASIC}/a/b:1"}
    ok = subprocess.run(provider, input=json.dumps(request), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["auth"][HOST_BASIC]["password"] == ENV_PASSWORD
    assert not leaks(ok.stderr, names)
    # Failing: a store that is not JSON any more, and a request that is not one.
    store = node / "etc/regauth/credential-provider.json"
    store.write_text(store.read_text()[:-40])
    for data in (json.dumps(request), "{" + ENV_PASSWORD):
        failed = subprocess.run(provider, input=data, capture_output=True, text=True, timeout=60)
        assert failed.returncode in (1, 2) and failed.stdout == "" and not leaks(failed.stderr, names), failed.stderr
