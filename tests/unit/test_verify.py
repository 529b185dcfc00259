"""Issue 7: ``regauth verify`` replays containerd's token flow and names the cause of a failure.

These run without root against a small GAR-like registry served over TLS on
127.0.0.1 by this process (test CA, certificate for ``localhost``), so every branch
(POST grant, GET fallback, refused key, missing IAM, unknown repository or tag,
TLS, registry down, timeout) is exercised on every run.  The real distribution
registry with its token server is used by tests/system/test_verify_registry.py.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from generator.registryclient import parse_challenge
from generator.verify import _password_shape_hint
from tests.support.netns import HandshakeInWorker
from tests.conftest import gar_profile, run_cli, write_profile
from tests.support.keys import key_file_bytes, service_account_key
from tests.support.registry import check_credentials, make_pki


@dataclass
class FakeRegistry:
    """What the fake serves and what it saw (never a password)."""

    key_file: bytes
    port: int = 0
    post_grant: bool = True  # False: answer the POST with 405 (registries without OAuth2), forcing the GET fallback
    tags: dict[str, list[str]] = field(default_factory=lambda: {"team/app": ["v1"]})
    denied: set[str] = field(default_factory=set)  # repositories the account may not read (403, like missing IAM)
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path without query, status)

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"


def _handler(fake: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, object] | None = None, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body or {}).encode()
            fake.seen.append((self.command, urllib.parse.urlsplit(self.path).path, status))
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _token_reply(self, username: str, password: str) -> None:
            if check_credentials(username, password, fake.key_file):
                self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication failed"}]})
            else:
                self._send(200, {"token": f"tok-{username}"})

        def do_POST(self) -> None:
            form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
            if not fake.post_grant:
                self._send(405)
                return
            self._token_reply((form.get("username") or [""])[0], (form.get("password") or [""])[0])

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/token":
                user, _, password = base64.b64decode(self.headers.get("Authorization", "Basic ")[6:]).decode().partition(":")
                self._token_reply(user, password)
            else:
                self._registry(path)

        def do_HEAD(self) -> None:
            self._registry(urllib.parse.urlsplit(self.path).path)

        def _registry(self, path: str) -> None:
            if not self.headers.get("Authorization", "").startswith("Bearer tok-"):
                realm = f"https://localhost:{fake.port}/token"
                self._send(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": f'Bearer realm="{realm}",service="localhost"'})
                return
            if path == "/v2/":
                self._send(200)
                return
            name, _, rest = path[len("/v2/"):].partition("/manifests/")
            if not rest:
                name, _, rest = path[len("/v2/"):].partition("/tags/")
            if name in fake.denied:
                self._send(403, {"errors": [{"code": "DENIED", "message": "permission denied"}]})
            elif name not in fake.tags:
                self._send(404, {"errors": [{"code": "NAME_UNKNOWN"}]})
            elif path.endswith("/tags/list"):
                self._send(200, {"name": name, "tags": fake.tags[name]})
            elif rest in fake.tags[name]:
                self._send(200, headers={"Docker-Content-Digest": "sha256:" + "ab" * 32})
            else:
                self._send(404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]})

    return Handler


class _TLSServer(HandshakeInWorker, ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._tls = tls


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_pki(tmp_path_factory.mktemp("pki"), ["localhost"])


@pytest.fixture
def fake(pki, sa_key: dict[str, str]) -> Iterator[FakeRegistry]:  # type: ignore[no-untyped-def]
    registry = FakeRegistry(key_file_bytes(sa_key))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki.cert_file, pki.key_file)
    server = _TLSServer(_handler(registry), tls)
    registry.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _verify(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    result = run_cli("verify", *args, env=env)
    leaked = [s for s in _secrets() if s in result.out + result.err]
    assert not leaked, "secret material in verify output"
    return result


def _secrets() -> list[str]:
    key = service_account_key()
    body = [line for line in key["private_key"].splitlines() if not line.startswith("-----")]
    return [*body[1:3], key["private_key_id"], base64.b64encode(key_file_bytes(key)).decode()[40:90]]


def test_good_key_token_by_post_then_manifest(fake: FakeRegistry, profile_dir: Path, pki) -> None:  # type: ignore[no-untyped-def]
    for username in ("_json_key_base64", "_json_key"):
        profile = gar_profile(profile_dir, host=fake.host, username=username, name=f"p{username}")
        result = _verify(str(profile), "--image", f"{fake.host}/team/app:v1", "--ca-file", str(pki.ca_file))
        assert result.code == 0, result.out + result.err
        assert f"OK      {fake.host}  [verify-ok] " in result.out and f"token via POST (OAuth2 password grant) as {username}" in result.out
        assert "team/app:v1 readable (sha256:" in result.out
    assert ("POST", "/token", 200) in fake.seen and ("GET", "/token", 200) not in fake.seen


def test_get_with_basic_when_post_is_not_supported(fake: FakeRegistry, profile_dir: Path, pki) -> None:  # type: ignore[no-untyped-def]
    fake.post_grant = False
    result = _verify(str(gar_profile(profile_dir, host=fake.host)), "--ca-file", str(pki.ca_file), "--json")
    doc = json.loads(result.out)
    assert result.code == 0 and doc["ok"] is True
    (reg,) = doc["registries"]
    assert reg["code"] == "verify-ok" and "token via GET (Basic)" in reg["summary"] and "pass --image" in reg["summary"]
    assert next(s for s in reg["steps"] if "token" in s).endswith("-> 405")
    assert [s for s in fake.seen if s[1] == "/token"] == [("POST", "/token", 405), ("GET", "/token", 200)]


def test_wrong_key_is_refused_with_key_advice(fake: FakeRegistry, tmp_path: Path, pki) -> None:  # type: ignore[no-untyped-def]
    other = service_account_key("someone-else@regauth-test.iam.gserviceaccount.com")
    (tmp_path / "key.json").write_bytes(key_file_bytes(other))
    (tmp_path / "key.json").chmod(0o600)
    result = _verify(str(gar_profile(tmp_path, host=fake.host)), "--image", f"{fake.host}/team/app:v1", "--ca-file", str(pki.ca_file))
    assert result.code == 1
    assert f"FAILED  {fake.host}  [verify-credentials-refused] credentials refused: POST 401, then GET with Basic 401: UNAUTHORIZED authentication failed" in result.out
    assert "the registry rejected the key (someone-else@regauth-test.iam.gserviceaccount.com)" in result.out
    assert "gcloud iam service-accounts keys list --iam-account=someone-else@" in result.out
    assert [s for s in fake.seen if s[1] == "/token"] == [("POST", "/token", 401), ("GET", "/token", 401)]


def test_key_json_under_json_key_base64_is_named(fake: FakeRegistry, profile_dir: Path, pki) -> None:  # type: ignore[no-untyped-def]
    """A basic-auth profile that pairs _json_key_base64 with the raw key JSON: the mix-up is named."""
    profile = write_profile(
        profile_dir,
        f"""
        version: 1
        targets: {{containerd: {{version: "1.7"}}}}
        secrets:
          k: {{source: file, path: key.json}}
        registries:
          - {{host: "{fake.host}", auth: {{type: basic, username: _json_key_base64, secret: k}}}}
        """,
    )
    result = _verify(str(profile), "--ca-file", str(pki.ca_file))
    assert result.code == 1 and "the password is key JSON but the username is _json_key_base64" in result.out


@pytest.mark.parametrize(
    ("image", "code", "summary", "cause"),
    [
        ("team/nope:v1", "verify-repository-not-found", "team/nope:v1: repository not found (404, NAME_UNKNOWN)", "the repository does not exist"),
        ("team/app:v9", "verify-tag-not-found", "team/app:v9: tag or digest not found (404, MANIFEST_UNKNOWN)", "has no 'v9' (it has: v1)"),
        ("team/secret:v1", "verify-read-denied", "reading team/secret:v1 refused (403, DENIED)", "the token does not grant pull on team/secret"),
    ],
)
def test_manifest_failures_name_the_cause(image: str, code: str, summary: str, cause: str, fake: FakeRegistry, profile_dir: Path, pki) -> None:  # type: ignore[no-untyped-def]
    fake.denied.add("team/secret")
    fake.tags["team/secret"] = ["v1"]
    result = _verify(str(gar_profile(profile_dir, host=fake.host)), "--image", f"{fake.host}/{image}", "--ca-file", str(pki.ca_file))
    assert result.code == 1 and f"[{code}] credentials accepted; {summary}" in result.out and cause in result.out, result.out


def test_tls_trust_comes_from_ca_file_or_ssl_cert_file(fake: FakeRegistry, profile_dir: Path, pki) -> None:  # type: ignore[no-untyped-def]
    profile = str(gar_profile(profile_dir, host=fake.host))
    untrusted = _verify(profile)
    assert untrusted.code == 1 and f"TLS failure talking to {fake.host}" in untrusted.out and "--ca-file" in untrusted.out
    assert _verify(profile, env={"SSL_CERT_FILE": str(pki.ca_file)}).code == 0


def test_registry_down_and_hanging_registry_fail_within_bounds(profile_dir: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once closed
    down = _verify(str(gar_profile(profile_dir, host=f"localhost:{port}", name="down")))
    assert down.code == 1 and "connection refused" in down.out and "registry is down or the port is wrong" in down.out
    with socket.socket() as silent:  # accepts the TCP connection, never speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        host = f"localhost:{silent.getsockname()[1]}"
        hung = _verify(str(gar_profile(profile_dir, host=host, name="hung")), "--timeout", "0.5")
    assert hung.code == 1 and "timed out" in hung.out and "--timeout S" in hung.out


def test_image_on_a_host_the_profile_lacks(fake: FakeRegistry, profile_dir: Path, pki) -> None:  # type: ignore[no-untyped-def]
    result = _verify(str(gar_profile(profile_dir, host=fake.host)), "--image", "us-docker.pkg.dev/p/r/app:1", "--ca-file", str(pki.ca_file))
    assert result.code == 1
    assert "FAILED  us-docker.pkg.dev  [verify-no-registry-for-image] " in result.out and "the profile has no registry 'us-docker.pkg.dev'" in result.out
    assert f"OK      {fake.host}" in result.out and "[verify-ok] " in result.out


def test_invalid_profile_exits_2(tmp_path: Path, profile_dir: Path) -> None:
    profile = write_profile(tmp_path, "version: 1\nregistries: []\n")
    assert _verify(str(profile)).code == 2
    assert _verify(str(tmp_path / "missing.yaml")).code == 2
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    good = str(gar_profile(profile_dir, name="good"))
    for args, text in ((["--timeout", "0"], "positive number"), (["--ca-file", str(tmp_path / "bad.pem")], "not a PEM"),
                       (["--ca-file", str(tmp_path / "none.pem")], "no such CA file"), (["--image", "https://x/y"], "has a scheme")):
        result = _verify(good, *args)
        assert result.code == 2 and text in result.err, (args, result.err)


def test_parse_challenge_and_password_shape_hints() -> None:
    c = parse_challenge('Bearer realm="https://europe-docker.pkg.dev/v2/token",service="europe-docker.pkg.dev",scope="repository:p/r/i:pull"')
    assert c.scheme == "bearer" and c.params == {"realm": "https://europe-docker.pkg.dev/v2/token", "service": "europe-docker.pkg.dev", "scope": "repository:p/r/i:pull"}
    assert parse_challenge('Basic realm="Registry Realm"').scheme == "basic" and parse_challenge("").scheme == ""
    assert "use _json_key_base64" in _password_shape_hint("_json_key", base64.b64encode(b'{"type": "service_account"}').decode())
    assert _password_shape_hint("_json_key_base64", base64.b64encode(b"{}").decode()) == ""


def test_boot_fetched_secret_is_skipped_not_failed(tmp_path: Path) -> None:
    profile = write_profile(
        tmp_path,
        """
        version: 1
        targets: {containerd: {version: "2.1"}}
        secrets:
          k: {source: gcp-secret-manager, project: my-project, secret: gar-key, version: "3", fetch: boot}
        registries:
          - {host: europe-docker.pkg.dev, auth: {type: gcp-service-account, secret: k}}
        """,
    )
    result = _verify(str(profile))
    assert result.code == 0 and "SKIPPED europe-docker.pkg.dev  [verify-skipped-at-boot] secret 'k' is fetched on the VM at boot" in result.out, result.out + result.err


def test_every_result_code_is_one_verify_reports() -> None:
    """Each per-registry code of the catalogue (generator/messages/results.py) has a place in verify.py."""
    from generator import messages
    from generator.messages import results

    source = (Path(__file__).parents[2] / "generator" / "verify.py").read_text(encoding="utf-8")
    entries = {name: m for name, m in vars(results).items() if isinstance(m, messages.Message)}
    assert {m.code for m in entries.values()} == set(messages.codes("verify"))
    assert not [name for name in entries if f"R.{name}" not in source]
