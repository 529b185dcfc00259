"""An Artifact-Registry-like private registry on a sandboxed loopback.

Why: the failure regauth fixes (``failed to fetch oauth token ... 401``) comes
from the token exchange, so the test registry must do token auth the way
Google Artifact Registry does: distribution 2.8 (Debian's ``docker-registry``)
with TLS and ``auth: token``, plus a token server (this module, a thread) that
accepts the OAuth2 password grant (POST) and HTTP Basic (GET) with the
username ``_json_key`` (password = the service-account key JSON) or
``_json_key_base64`` (password = base64 of the key file) and answers 401 to
anything else.  Every request is recorded (never the password) so tests can
assert the flow containerd used.

Everything listens inside a :class:`~tests.support.containerd.Sandbox`: the
portless host ``registry.test`` (port 443) and ``registry.test:PORT`` both
exist without touching the host's network.  All keys are made at test time.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import http.client
import io
import json
import platform
import secrets
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.netns import HandshakeInWorker
from testbed.nsbox import listen_loopback
from tests.support.containerd import (
    Sandbox,
    clean_env,
    missing,
    require_root,
    short_tempdir,
    stop_process,
)

REGISTRY_NAME = "registry.test"  # not loopback-looking: containerd uses https as in production
SERVICE = "registry.test"  # the token audience, like GAR's "europe-docker.pkg.dev"
ISSUER = "regauth-test-token-issuer"
REPOSITORY = "regauth-test/images/hello"
TAG = "v1"


# --- keys and certificates --------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A test CA, a server cert for the registry name, and a token signing key."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    signing_key: rsa.RSAPrivateKey
    signing_cert_file: Path  # the registry's rootcertbundle


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(obj: x509.Certificate) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_pki(workdir: Path, names: list[str]) -> Pki:
    """Fresh CA + server cert (EC: instant) and an RSA token signing key (RS256, as GAR)."""
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("regauth test CA")).issuer_name(_name("regauth test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing_cert = (
        x509.CertificateBuilder().subject_name(_name("regauth test token signer")).issuer_name(_name("regauth test token signer"))
        .public_key(signing_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .sign(signing_key, hashes.SHA256())
    )  # fmt: skip
    files = {"ca.pem": _pem(ca), "server.pem": _pem(cert), "server.key": _key_pem(key), "signer.pem": _pem(signing_cert)}
    for name, data in files.items():
        (workdir / name).write_bytes(data)
    (workdir / "server.key").chmod(0o600)
    return Pki(workdir / "ca.pem", workdir / "server.pem", workdir / "server.key", signing_key, workdir / "signer.pem")


def make_service_account_key(client_email: str = "puller@regauth-test.iam.gserviceaccount.com") -> bytes:
    """The bytes of a service-account key file shaped like Google's (fresh RSA key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = {
        "type": "service_account",
        "project_id": "regauth-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": _key_pem(key).decode(),
        "client_email": client_email,
        "client_id": str(secrets.randbelow(10**21)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + urllib.parse.quote(client_email),
        "universe_domain": "googleapis.com",
    }
    return (json.dumps(info, indent=2) + "\n").encode()


def libtrust_kid(public_key: rsa.RSAPublicKey) -> str:
    """The key id distribution matches a JWT ``kid`` against (libtrust format)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def mint_token(pki: Pki, subject: str, access: list[dict[str, object]], ttl: int = 300) -> str:
    """An RS256 JWT distribution 2.8 accepts (kid = libtrust id of the signer cert)."""
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "kid": libtrust_kid(pki.signing_key.public_key())}
    claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + ttl, "nbf": now - 10, "iat": now,
              "jti": secrets.token_hex(8), "access": access}  # fmt: skip
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = pki.signing_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


# --- the token server -------------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    """One request to the token endpoint, as a test asserts it (never the password)."""

    method: str  # "POST" (OAuth2 password grant) or "GET" (Basic or anonymous)
    grant_type: str  # "password" for the POST flow, "" for GET
    username: str  # "" when anonymous
    status: int  # 200 or 401 (400 for a malformed POST)
    reason: str  # why it was refused, "" when granted
    scope: str


def check_credentials(username: str, password: str, key_file: bytes, access_token_ok: Callable[[str], bool] | None = None) -> str:
    """"" if Artifact Registry would accept these for ``key_file``, else why not.

    ``oauth2accesstoken`` (a Google access token as password, what keyless nodes send)
    is accepted only when ``access_token_ok`` says the token is one it issued, e.g. a
    fake metadata server's ``MetadataState.token_is_valid``.
    """
    expected = json.loads(key_file)
    if username == "oauth2accesstoken":
        if access_token_ok is None:
            return "oauth2accesstoken: this registry trusts no token issuer"
        return "" if access_token_ok(password) else "oauth2accesstoken password is not a token the metadata server issued"
    if username == "_json_key":
        try:
            given = json.loads(password)
        except ValueError as err:
            return f"_json_key password is not valid JSON ({err.msg})"
    elif username == "_json_key_base64":
        try:
            given = json.loads(base64.b64decode(password, validate=True))
        except ValueError as err:
            return f"_json_key_base64 password is not base64 of key JSON ({err})"
    elif not username:
        return "anonymous access to a private repository"
    else:
        return f"unknown username {username!r}"
    return "" if given == expected else f"{username} password is not the expected service-account key"


class TokenServer:
    """GAR-like token endpoint served over TLS from a socket in the sandbox."""

    def __init__(self, pki: Pki, key_file: bytes, listener: socket.socket):
        self.pki, self.key_file = pki, key_file
        self.access_token_ok: Callable[[str], bool] | None = None  # set to accept oauth2accesstoken
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self.port = listener.getsockname()[1]
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(pki.cert_file, pki.key_file)
        self._httpd = _TLSServer(listener, tls, _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="token-server", daemon=True)
        self._thread.start()

    @property
    def realm(self) -> str:
        return f"https://{REGISTRY_NAME}:{self.port}/v2/token"

    def clear(self) -> None:
        """Forget recorded requests (call before the pull a test asserts on)."""
        with self._lock:
            self.requests.clear()

    def record(self, req: TokenRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _TLSServer(HandshakeInWorker, ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, listener: socket.socket, tls: ssl.SSLContext, handler: type[BaseHTTPRequestHandler]):
        super().__init__(listener.getsockname(), handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener  # made inside the sandbox's network namespace
        self._tls = tls


def _granted(scope: str) -> list[dict[str, object]]:
    """Grant pull on every repository scope asked for (a reader's rights)."""
    access = []
    for item in scope.split():
        parts = item.split(":")
        if len(parts) >= 3 and parts[0] == "repository":
            wanted = set(parts[-1].split(","))
            access.append({"type": "repository", "name": ":".join(parts[1:-1]), "actions": sorted(wanted & {"pull"})})
    return access


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:  # quiet: requests are recorded instead
            pass

        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            username = password = ""
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("basic "):
                try:
                    username, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                except ValueError:
                    username = "<undecodable>"
            self._answer("GET", "", username, password, " ".join(query.get("scope", [])))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"), keep_blank_values=True)

            def first(key: str) -> str:
                return (form.get(key) or [""])[0]

            grant = first("grant_type")
            if grant != "password":
                self._send(400, {"error": "unsupported_grant_type"})
                server.record(TokenRequest("POST", grant, first("username"), 400, "not a password grant", first("scope")))
                return
            self._answer("POST", grant, first("username"), first("password"), first("scope"))

        def _answer(self, method: str, grant: str, username: str, password: str, scope: str) -> None:
            if urllib.parse.urlsplit(self.path).path != "/v2/token":
                self._send(404, {"errors": [{"code": "NOT_FOUND"}]})
                return
            reason = check_credentials(username, password, server.key_file, server.access_token_ok)
            server.record(TokenRequest(method, grant, username, 401 if reason else 200, reason, scope))
            if reason:
                self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication failed"}]})
                return
            token = mint_token(server.pki, username, _granted(scope))
            issued = dt.datetime.now(dt.timezone.utc).isoformat()
            self._send(200, {"token": token, "access_token": token, "expires_in": 300, "issued_at": issued})

        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


# --- the registry processes and the image -----------------------------------


_listen = listen_loopback  # call via Sandbox.call: the socket lands in the sandbox


def _free_port() -> int:
    with _listen(0) as sock:
        return sock.getsockname()[1]


def _https(pki: Pki, port: int, method: str, path: str, body: bytes = b"",
           headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """One HTTPS request to 127.0.0.1:port verified as REGISTRY_NAME (run in the sandbox)."""
    tls = ssl.create_default_context(cafile=str(pki.ca_file))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = http.client.HTTPSConnection(REGISTRY_NAME, port, context=tls, timeout=10)
    conn.sock = tls.wrap_socket(raw, server_hostname=REGISTRY_NAME)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _wait_registry(pki: Pki, port: int, proc: subprocess.Popen, log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            status, headers, _ = _https(pki, port, "GET", "/v2/")
            if status == 401 and "bearer" in headers.get("www-authenticate", "").lower():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"docker-registry not answering on {port}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Image:
    """The tiny image pushed at test time."""

    repository: str
    tag: str
    manifest_digest: str
    config_digest: str  # what CRI PullImage returns as the image ref


def _image_blobs() -> tuple[bytes, bytes, bytes]:
    """(layer tar.gz, config JSON, manifest JSON): one file, current platform."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = b"pulled with regauth\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))
    layer_tar = tar_buf.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    config = json.dumps({
        "architecture": arch, "os": "linux", "config": {"Cmd": ["/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
    }).encode()  # fmt: skip
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer),
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest()}],
    }).encode()  # fmt: skip
    return layer, config, manifest


def push_image(pki: Pki, port: int, repository: str = REPOSITORY, tag: str = TAG) -> Image:
    """Push the tiny image with plain registry API calls (run in the sandbox)."""
    token = mint_token(pki, "test-pusher", [{"type": "repository", "name": repository, "actions": ["pull", "push"]}])
    auth = {"Authorization": f"Bearer {token}"}
    layer, config, manifest = _image_blobs()
    for blob in (layer, config):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        status, headers, body = _https(pki, port, "POST", f"/v2/{repository}/blobs/uploads/", headers=auth)
        assert status == 202, f"upload start: {status} {body[:300]!r}"
        location = urllib.parse.urlsplit(headers["location"])
        query = (location.query + "&" if location.query else "") + "digest=" + urllib.parse.quote(digest)
        put_headers = {**auth, "Content-Type": "application/octet-stream", "Content-Length": str(len(blob))}
        status, _, body = _https(pki, port, "PUT", f"{location.path}?{query}", blob, put_headers)
        assert status == 201, f"blob put: {status} {body[:300]!r}"
    media = json.loads(manifest)["mediaType"]
    status, headers, body = _https(pki, port, "PUT", f"/v2/{repository}/manifests/{tag}", manifest,
                                   {**auth, "Content-Type": media})  # fmt: skip
    assert status == 201, f"manifest put: {status} {body[:300]!r}"
    return Image(repository, tag, "sha256:" + hashlib.sha256(manifest).hexdigest(),
                 json.loads(manifest)["config"]["digest"])  # fmt: skip


def _registry_config(workdir: Path, pki: Pki, port: int, realm: str, storage: Path) -> Path:
    """distribution 2.8 config (JSON is YAML): TLS, token auth, no extras."""
    config = {
        "version": "0.1",
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16),
                 "tls": {"certificate": str(pki.cert_file), "key": str(pki.key_file)}},
        "auth": {"token": {"realm": realm, "service": SERVICE, "issuer": ISSUER,
                           "rootcertbundle": str(pki.signing_cert_file)}},
        "health": {"storagedriver": {"enabled": False}},
    }  # fmt: skip
    path = workdir / f"registry-{port}.yml"
    path.write_text(json.dumps(config, indent=2))
    return path


@contextmanager
def _registry(sandbox: Sandbox, workdir: Path, pki: Pki, port: int, realm: str, storage: Path) -> Iterator[None]:
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        missing("docker-registry not found; run: sudo bash scripts/deps/containerd.sh")
    config = _registry_config(workdir, pki, port, realm, storage)
    log = workdir / f"registry-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(sandbox.command([str(binary), "serve", str(config)]), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, env=clean_env(), start_new_session=True)  # fmt: skip
    try:
        sandbox.call(_wait_registry, pki, port, proc, log)
        yield
    finally:
        stop_process(proc)


# --- the whole environment --------------------------------------------------


@dataclass
class RegistryEnv:
    """Everything a pull test needs; see :func:`registry_env`."""

    sandbox: Sandbox
    pki: Pki
    token_server: TokenServer
    port: int  # the registry.test:PORT registry; the portless one is on 443
    image: Image
    key_file: bytes  # the service-account key the registry accepts (file bytes)
    wrong_key_file: bytes  # a well-formed key for another account: refused
    workdir: Path
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_file

    def host(self, with_port: bool = True) -> str:
        """The registry host exactly as containerd looks credentials up (port included)."""
        return f"{REGISTRY_NAME}:{self.port}" if with_port else REGISTRY_NAME

    def image_ref(self, with_port: bool = True) -> str:
        return f"{self.host(with_port)}/{self.image.repository}:{self.image.tag}"

    def secret_texts(self) -> list[str]:
        """Strings that must never show up in a log: key JSON, its base64, the PEM body."""
        info = json.loads(self.key_file)
        pem_body = [line for line in info["private_key"].splitlines() if line and not line.startswith("-----")]
        return [self.key_file.decode(), base64.b64encode(self.key_file).decode(), info["private_key"],
                *pem_body[1:4], info["private_key_id"]]  # fmt: skip


@contextmanager
def start_registry_env(workdir: Path) -> Iterator[RegistryEnv]:
    """Start sandbox, token server and both registries; stop all of them on exit."""
    require_root()
    with ExitStack() as stack:
        sandbox = Sandbox(workdir, {REGISTRY_NAME: "127.0.0.1"})
        stack.callback(sandbox.close)
        pki = make_pki(workdir, [REGISTRY_NAME])
        key_file, wrong_key_file = make_service_account_key(), make_service_account_key()
        token_server = TokenServer(pki, key_file, sandbox.call(_listen, 0))
        stack.callback(token_server.close)
        storage = workdir / "storage"
        storage.mkdir()
        port = sandbox.call(_free_port)
        stack.enter_context(_registry(sandbox, workdir, pki, port, token_server.realm, storage))
        stack.enter_context(_registry(sandbox, workdir, pki, 443, token_server.realm, storage))
        image = sandbox.call(push_image, pki, port)
        yield RegistryEnv(sandbox, pki, token_server, port, image, key_file, wrong_key_file, workdir)


@pytest.fixture(scope="session")
def registry_env() -> Iterator[RegistryEnv]:
    """Session-wide GAR-like registry in a sandbox; every process stops at teardown."""
    require_root()
    with short_tempdir("reg-") as workdir, start_registry_env(workdir) as env:
        yield env


@pytest.fixture
def token_log(registry_env: RegistryEnv) -> list[TokenRequest]:
    """The token server's records, emptied for this test."""
    registry_env.token_server.clear()
    return registry_env.token_server.requests
