"""``output.program: url``: user-data fetches regauth-apply at first boot (issue 15).

The node program no longer fits AWS's 16 KB of user-data next to a key (issue 14 made it
~20 KB gzipped).  With ``program: url`` user-data carries the plan and a small fetcher
(generator/node/programfetch.py, run as ``python3 -c``) that downloads the program,
refuses any bytes but those rendered (SHA-256 in user-data) and installs it atomically.
These tests run the fetcher exactly as user-data carries it, under the oldest and the
newest node Python, against a loopback HTTP server; tests/system/test_cloudinit_apply.py
runs it in real cloud-init.
"""

from __future__ import annotations

import hashlib
import http.server
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from generator import applyscript
from tests.conftest import gar_profile, run_cli, write_profile
from tests.support.node_pythons import NEWEST, OLDEST, python_id, require_python
from tests.support.program_host import serving_handler

ROOT = Path(__file__).resolve().parents[2]
URL = "https://artifacts.example.com/regauth/regauth-apply"


def _url_profile(folder: Path, url: str = URL, cloud: str = "gce") -> Path:
    return write_profile(folder, gar_profile(folder).read_text() + f"output:\n  cloud: {cloud}\n  program: url\n  program_url: {url}\n", name="fetched")


def _render(folder: Path, profile: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    result = run_cli("render", str(profile), "-o", str(folder / "out"), env=env)
    assert result.code == 0, result.err
    return folder / "out" / profile.stem, result


def _fetch_argv(user_data: bytes) -> list[str]:
    """The fetcher's argv as user-data's runcmd runs it (before `&& regauth-apply`)."""
    doc = yaml.safe_load(user_data)
    line = doc["runcmd"][-1]  # the apply is runcmd's last line
    words = shlex.split(line)
    cut = words.index("&&")
    assert words[cut + 1:] == [applyscript.VM_PATH]
    return words[:cut]


@contextmanager
def serving(body: bytes, status: int = 200) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server answering every GET with ``status`` and ``body``; (its URL, the paths asked)."""
    asked: list[str] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), serving_handler(body, asked, status))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/regauth/regauth-apply", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _run_fetcher(python: str, argv: list[str], url: str, dest: Path, seconds: str | None = None) -> subprocess.CompletedProcess:
    """The shipped fetcher with the rendered SHA-256, deadline (or ``seconds``) and fix,
    pointed at ``url`` and ``dest``."""
    assert argv[0] == "/usr/bin/python3" and argv[1] == "-c" and argv[5] == applyscript.VM_PATH
    return subprocess.run([python, "-c", argv[2], url, argv[4], str(dest), seconds or argv[6], argv[7]], capture_output=True, text=True, timeout=300)


def test_user_data_carries_the_plan_and_the_fetcher_not_the_program(profile_dir: Path) -> None:
    out, result = _render(profile_dir, _url_profile(profile_dir))
    user_data = (out / "user-data").read_bytes()
    doc = yaml.safe_load(user_data)
    assert [f["path"] for f in doc["write_files"]] == [applyscript.PLAN_PATH]
    program = (out / "rootfs" / applyscript.VM_PATH.lstrip("/")).read_bytes()
    assert program == applyscript.full_script()  # one file per regauth version serves every profile
    argv = _fetch_argv(user_data)
    assert argv[3:7] == [URL, hashlib.sha256(program).hexdigest(), applyscript.VM_PATH, "120"]  # regauth-apply's --fetch-timeout default
    assert len(user_data) < 7 * 1024, len(user_data)
    assert f"serve fetched/rootfs{applyscript.VM_PATH} of the output folder there" in result.err and URL in result.err


def test_every_runtime_fits_aws_with_the_program_fetched(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "scripts/demo-key.py", "profiles/keys/demo-gar-key.json"], cwd=ROOT, check=True, capture_output=True)
    every = (ROOT / "bench/profiles/all-runtimes-aws.yaml").read_text().replace("path: keys/", f"path: {ROOT}/profiles/keys/")
    profile = write_profile(tmp_path, every.replace("output:\n", f"output:\n  program: url\n  program_url: {URL}\n"), name="every")
    out, _ = _render(tmp_path, profile, {"REGAUTH_EXAMPLE_PASSWORD": "robot-password-made-up-here"})
    assert len((out / "user-data").read_bytes()) <= 12 * 1024


@pytest.mark.parametrize("python", [OLDEST, NEWEST], ids=python_id)
def test_the_fetcher_installs_exactly_the_rendered_program(python: str, profile_dir: Path, tmp_path: Path) -> None:
    python = require_python(python)
    out, _ = _render(profile_dir, _url_profile(profile_dir))
    argv = _fetch_argv((out / "user-data").read_bytes())
    program = (out / "rootfs" / applyscript.VM_PATH.lstrip("/")).read_bytes()
    dest = tmp_path / "usr/local/sbin/regauth-apply"
    with serving(program) as (url, asked):
        run = _run_fetcher(python, argv, url, dest)
        assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
        assert dest.read_bytes() == program and dest.stat().st_mode & 0o777 == 0o755
        assert [p.name for p in dest.parent.iterdir()] == ["regauth-apply"]  # no temporary file left
        again = _run_fetcher(python, argv, url, dest)  # a reboot: the program is there, nothing is fetched
        assert again.returncode == 0 and asked == ["/regauth/regauth-apply"]


@pytest.mark.parametrize("python", [OLDEST, NEWEST], ids=python_id)
def test_other_bytes_are_refused_in_one_line_and_nothing_is_written(python: str, profile_dir: Path, tmp_path: Path) -> None:
    python = require_python(python)
    out, _ = _render(profile_dir, _url_profile(profile_dir))
    argv = _fetch_argv((out / "user-data").read_bytes())
    dest = tmp_path / "sbin/regauth-apply"
    older = b"#!/usr/bin/python3\nprint('a regauth-apply of another render')\n"
    with serving(older) as (url, _):
        run = _run_fetcher(python, argv, url, dest)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.splitlines() == [
        f"regauth-apply: FAILED [node-program-fetch] {url} does not serve the regauth-apply this user-data was rendered with "
        f"(SHA-256 {hashlib.sha256(older).hexdigest()}, not {argv[4]}), so nothing was installed or applied; {argv[7]}"
    ]
    assert not dest.exists() and not dest.parent.exists()
    explained = run_cli("doctor", "--error", run.stderr.strip())
    assert "node-program-fetch" in explained.out + explained.err


def test_an_unreachable_url_fails_at_its_deadline_in_one_line(profile_dir: Path, tmp_path: Path) -> None:
    """Nothing listens on the port: tries with backoff until the deadline (4 s here; user-data
    passes 120, regauth-apply's --fetch-timeout default), then the line; the program's
    place stays empty, so `&& regauth-apply` never runs."""
    out, _ = _render(profile_dir, _url_profile(profile_dir))
    argv = _fetch_argv((out / "user-data").read_bytes())
    with socket.socket() as sock:  # a port nothing listens on (bound, never listening)
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/regauth-apply"
        dest = tmp_path / "regauth-apply"
        run = _run_fetcher(require_python(NEWEST), argv, url, dest, seconds="4")
    assert run.returncode == 1
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"regauth-apply: FAILED [node-program-fetch] cannot fetch {dest} from {url} (")
    tries = int(line.split(" tries in 4 s)")[0].rsplit("; ", 1)[1])
    assert tries >= 3, line  # 1 s, 2 s, then the deadline: backoff, not one try
    assert line.endswith(f" tries in 4 s), so the plan user-data delivered was not applied; {argv[7]}")
    assert not dest.exists()


@pytest.mark.parametrize("python", [OLDEST, NEWEST], ids=python_id)
def test_a_404_is_not_retried(python: str, profile_dir: Path, tmp_path: Path) -> None:
    """The server answered (a wrong URL, an object not uploaded): one try, then the line
    (with the rendered 120 s deadline, a retry would show as a second request)."""
    out, _ = _render(profile_dir, _url_profile(profile_dir))
    argv = _fetch_argv((out / "user-data").read_bytes())
    dest = tmp_path / "regauth-apply"
    with serving(b"no such object", status=404) as (url, asked):
        run = _run_fetcher(require_python(python), argv, url, dest)
    assert run.returncode == 1 and asked == ["/regauth/regauth-apply"]
    assert run.stderr == f"regauth-apply: FAILED [node-program-fetch] cannot fetch {dest} from {url} (HTTP 404 Not Found; not retried), so the plan user-data delivered was not applied; {argv[7]}\n"
    assert not dest.exists()


@pytest.mark.parametrize(
    ("output", "code"),
    [
        ("  program: url\n", "program-url-missing"),
        (f"  program_url: {URL}\n", "program-url-unused"),
        ("  program: image\n  program_url: https://example.com/x\n", "program-url-unused"),
        ("  program: url\n  program_url: ftp://example.com/regauth-apply\n", "program-url-bad"),
        ("  program: url\n  program_url: https:///regauth-apply\n", "program-url-bad"),
        ("  program: url\n  program_url: 'https://example.com:port/x'\n", "program-url-bad"),
        ("  program: url\n  program_url: 42\n", "not-a-string"),
    ],
)
def test_a_wrong_program_url_is_refused_with_what_to_write(profile_dir: Path, output: str, code: str) -> None:
    profile = write_profile(profile_dir, gar_profile(profile_dir).read_text() + "output:\n" + output, name="wrong")
    result = run_cli("render", str(profile), "-o", str(profile_dir / "out"))
    assert result.code == 2 and f"[{code}]" in result.err, result.err
    assert "fix:" in result.err and "Traceback" not in result.err
    assert not (profile_dir / "out").exists()


@pytest.mark.parametrize(
    ("url", "what"),
    [
        ("https://robot:{secret}@example.com/regauth-apply", "user:password@ before its host"),
        ("ftp://robot:{secret}@example.com:port/regauth-apply", "user:password@ before its host"),  # bad too: still never quoted
        ("https://b.s3.amazonaws.com/regauth-apply?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F{secret}&X-Amz-Signature={secret}",
         "a signed URL's credential (X-Amz-Credential, X-Amz-Signature)"),
        ("https://storage.googleapis.com/b/regauth-apply?X-Goog-Signature={secret}", "a signed URL's credential (X-Goog-Signature)"),
        ("https://acct.blob.core.windows.net/c/regauth-apply?sv=2022-11-02&sig={secret}", "a signed URL's credential (sig)"),
    ],
)
def test_a_credential_in_program_url_is_refused_and_never_quoted(profile_dir: Path, url: str, what: str) -> None:
    secret = "s3cr3t" + hashlib.sha256(b"made up here").hexdigest()[:12]
    profile = write_profile(profile_dir, gar_profile(profile_dir).read_text() + f"output:\n  program: url\n  program_url: '{url.format(secret=secret)}'\n", name="credential")
    result = run_cli("render", str(profile), "-o", str(profile_dir / "out"))
    assert result.code == 2 and "[program-url-credential]" in result.err and f"program_url holds {what}," in result.err, result.err
    assert secret not in result.err + result.out
    assert not (profile_dir / "out").exists()


def test_a_plain_query_string_is_kept(profile_dir: Path) -> None:
    url = "https://artifacts.example.com/regauth-apply?version=0.1.0"
    out, _ = _render(profile_dir, _url_profile(profile_dir, url=f"'{url}'"))
    assert _fetch_argv((out / "user-data").read_bytes())[3] == url
