"""The bad-input corpus: every broken input gets a located message, the right exit code,
no traceback, and leaves the output folder exactly as it was.

Each case is one file in tests/fixtures/bad/ whose header says what must happen::

    # exit: 2                      (1 for runtime faults)
    # code: <code>                 the problem's stable code (generator/messages), shown as [code]
    # expect: <message fragment>   (one or more)
    # at: <text>                   the message must name FILE:LINE of the first line holding <text>
                                   ('-': the problem has no line, e.g. a missing --merge-with file)
    # key: <form>                  key.json is a freshly generated key, mangled this way
    # setup: <name[:arg]>          extra files or permissions, made at test time (see SETUPS)
    # args: <extra CLI arguments>  paths are relative to the case folder

Key material is generated when the test runs (tests/support/keys.py); nothing
private is committed.  Cases run in-process (cli.main) for speed; a sample and
every case that needs another user run as real processes.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from generator import cli
from generator.messages import lookup
from tests.conftest import ROOT
from tests.support.keys import key_file_bytes, service_account_key

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "bad"
CASES = sorted(CORPUS.glob("*.yaml"))


def header(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        if not line.startswith("# ") or ":" not in line:
            break
        key, _, value = line[2:].partition(":")
        out.setdefault(key.strip(), []).append(value[1:] if value.startswith(" ") else value)
    return out


# ---------------------------------------------------------------- mangled keys
def mangled_key(form: str) -> bytes:
    """A generated service-account key file, broken the way real ones get broken."""
    key = dict(service_account_key())
    good = key_file_bytes(key)
    pk = key["private_key"]
    if form == "good":
        return good
    if form == "literal-backslash-n":
        return key_file_bytes({**key, "private_key": pk.replace("\n", "\\n")})
    if form == "crlf":
        return key_file_bytes({**key, "private_key": pk.replace("\n", "\r\n")})
    if form == "stripped-newlines":
        return key_file_bytes({**key, "private_key": pk.replace("\n", "")})
    if form == "no-end-line":
        return key_file_bytes({**key, "private_key": pk.split("-----END")[0]})
    if form == "pasted-newlines":  # the JSON \n escapes became real newlines (pasted into a TOML string)
        return good.decode().replace("\\n", "\n").encode()
    if form == "not-json":
        return b"-----BEGIN PRIVATE KEY-----\nnot a key file\n"
    if form == "json-array":
        return json.dumps([key]).encode()
    if form == "wrong-type":
        return key_file_bytes({**key, "type": "authorized_user"})
    if form == "missing-client-email":
        return key_file_bytes({k: v for k, v in key.items() if k != "client_email"})
    if form == "bad-base64":
        lines = pk.split("\n")
        lines[3] = lines[3][:10] + "!!!" + lines[3][13:]
        return key_file_bytes({**key, "private_key": "\n".join(lines)})
    if form == "inconsistent":  # valid base64 and DER shape, wrong numbers (one byte of n flipped)
        body = "".join(pk.split("\n")[1:-2])
        der = bytearray(base64.b64decode(body))
        der[60] ^= 0x01
        b64 = base64.b64encode(bytes(der)).decode()
        pem = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64)) + "\n-----END PRIVATE KEY-----\n"
        return key_file_bytes({**key, "private_key": pem})
    if form == "not-utf8":
        return good.replace(b'"type"', b'"typ\xe9"', 1)
    raise AssertionError(f"unknown key form {form}")


# ---------------------------------------------------------------- setups
def _write_secret(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def setup_case(folder: Path, profile: Path, spec: dict[str, list[str]]) -> None:
    _write_secret(folder / "key.json", mangled_key(spec.get("key", ["good"])[0]))
    _write_secret(folder / "password.txt", b"s3cret-password\n")
    for item in spec.get("setup", []):
        name, _, arg = item.partition(":")
        if name == "symlink-key":
            (folder / "key.json").rename(folder / "real-key.json")
            (folder / "key.json").symlink_to("real-key.json")
        elif name == "world-readable-key":
            (folder / "key.json").chmod(0o644)
        elif name == "keys-dir":
            (folder / "keys").mkdir()
        elif name == "unreadable-key":
            pass  # EACCES is injected by the test (root can read any file)
        elif name == "huge-key":
            _write_secret(folder / "key.json", b" " * (70 * 1024) + mangled_key("good"))
        elif name == "password":
            _write_secret(folder / "password.txt", arg.encode("latin-1").decode("unicode_escape").encode("latin-1"))
        elif name == "password-random":
            rng = random.Random(8)  # incompressible but reproducible
            _write_secret(folder / "password.txt", base64.b64encode(rng.randbytes(int(arg))) + b"\n")
        elif name == "theirs":
            (folder / "theirs.txt").write_text(arg)
        elif name == "pad-profile":
            with profile.open("a") as handle:
                handle.write("# " + "x" * (1100 * 1024) + "\n")
        else:
            raise AssertionError(f"unknown setup {name}")


# ---------------------------------------------------------------- output folder
def populate_previous(out: Path, name: str) -> None:
    """A previous render that a failed one must leave exactly as it is."""
    prev = out / name
    (prev / "rootfs/etc/regauth").mkdir(parents=True)
    (prev / "user-data").write_bytes(b"#cloud-config\n# previous render\n")
    (prev / "user-data").chmod(0o600)
    (prev / "rootfs/etc/regauth/plan.json").write_bytes(b'{"format": 1}\n')
    (prev / "manifest.json").write_bytes(b"{}\n")
    (out / "other").mkdir()
    (out / "other" / "user-data").write_bytes(b"another profile's output\n")


def snapshot(folder: Path) -> dict[str, tuple[int, bytes | None]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (st.st_mode, p.read_bytes() if stat.S_ISREG(st.st_mode) else None)
    return out


def expected_location(profile: Path, marker: str) -> str:
    text = profile.read_bytes().decode("utf-8", "replace")
    body_start = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("# ") and ":" in line and body_start == text.find(line, body_start):
            body_start += len(line)
            continue
        break
    marker = marker.replace("\\n", "\n").replace("\\t", "\t")
    index = text.find(marker, body_start)
    assert index >= 0, f"marker {marker!r} not in {profile.name}"
    return f"{profile.name}:{text.count(chr(10), 0, index) + 1}:"


# ---------------------------------------------------------------- running
def cli_args(folder: Path, profile: Path, out: Path, spec: dict[str, list[str]]) -> list[str]:
    extra = []
    for token in shlex.split(" ".join(spec.get("args", []))):
        extra.append(token if token.startswith("-") else str(folder / token))
    return ["render", str(profile), "-o", str(out), "--verbose", *extra]


def run_in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def run_as_process(args: list[str]) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "REGAUTH_CORPUS_UNSET"}
    proc = subprocess.run([sys.executable, "-m", "generator", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def case_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="regauth-bad-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_corpus_is_large_and_every_case_says_what_it_expects() -> None:
    assert len(CASES) >= 50
    for path in CASES:
        spec = header(path)
        assert spec.get("exit") and spec.get("expect") and spec.get("at"), f"{path.name}: header incomplete"
        # Every case is a catalogue entry: it names its code, of the kind its exit says.
        kind = {"2": "input", "1": "runtime"}[spec["exit"][0]]
        assert spec.get("code"), f"{path.name}: no code"
        assert all(lookup(c) is not None and lookup(c).kind == kind for c in spec["code"]), f"{path.name}: {spec['code']}"


SUBPROCESS_SAMPLE = {"yaml-python-tag", "secret-nul", "host-wildcard", "key-pasted-newlines", "oversize-even-gzipped"}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_bad_input(path: Path, case_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = header(path)
    profile = case_dir / path.name
    shutil.copyfile(path, profile)
    profile.chmod(0o644)
    setup_case(case_dir, profile, spec)
    out = case_dir / "out"
    populate_previous(out, profile.stem)
    before = snapshot(out)
    monkeypatch.delenv("REGAUTH_CORPUS_UNSET", raising=False)
    args = cli_args(case_dir, profile, out, spec)

    if "unreadable-key" in spec.get("setup", []):
        # As root nothing is unreadable: inject EACCES where the secret file is opened.
        real_open = os.open

        def denying_open(path, *a, **kw):  # type: ignore[no-untyped-def]
            if str(path).endswith("key.json"):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *a, **kw)

        monkeypatch.setattr(os, "open", denying_open)
    if path.stem in SUBPROCESS_SAMPLE:
        code, text = run_as_process(args)
    else:
        code, text = run_in_process(args, capsys)

    assert code == int(spec["exit"][0]), text
    for fragment in spec["expect"]:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    marker = spec["at"][0]
    for problem_code in spec.get("code", []):  # on the line the case points at, when it has one
        shown = [line for line in text.splitlines() if f"error: [{problem_code}] " in line]
        assert shown, f"[{problem_code}] not in:\n{text}"
        if marker != "-":
            assert any(expected_location(profile, marker) in line for line in shown), f"[{problem_code}] not at {marker!r}:\n{text}"
    if marker != "-":
        assert expected_location(profile, marker) in text, f"expected {expected_location(profile, marker)} in:\n{text}"
    assert "Traceback" not in text and "internal error" not in text, text
    if code == 2:
        assert "fix:" in text, "every input problem says how to fix it"
    assert snapshot(out) == before, "the output folder changed"
