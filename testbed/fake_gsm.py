"""A fake Google Secret Manager that the *real* client library talks to.

Why a fake server and not a mock: the behaviours that matter (retries, deadlines,
status-code mapping, REST vs gRPC error classes, the client *not* checking CRC32C)
live inside ``google-cloud-secret-manager`` and ``google-api-core``.  Mocking the
client would test our assumptions about them; a wire-level fake tests the library.
No emulator exists on PyPI or npm (FIELD_NOTES section 6), hence this module.

It serves ``AccessSecretVersion`` on both transports the client uses:

* gRPC, through ``grpc.method_handlers_generic_handler`` and the package's own
  proto-plus message classes (no generated stubs);
* REST, ``GET /v1/projects/P/secrets/S/versions/V:access`` on a threaded
  ``http.server`` with Nagle disabled (else ~44 ms per call).

Behaviour copied from the real service (sources: Google's API reference and
error messages quoted in public issue threads):

* ``versions/latest`` is "an alias to the most recently created SecretVersion",
  whatever its state: when the newest version is disabled, ``latest`` fails with
  FAILED_PRECONDITION ("Secret Version [...] is in DISABLED state.") rather than
  falling back to an older version.  ``latest_policy="newest_enabled"`` switches
  to the fallback behaviour for tests that want it, but the default is Google's.
* Disabled / destroyed versions: FAILED_PRECONDITION (HTTP 400), message
  ``Secret Version [NAME] is in DISABLED state.`` / ``... DESTROYED state.``
* Missing: NOT_FOUND (404) ``Secret [NAME] not found or has no versions.`` or
  ``Secret Version [NAME] not found.``
* Permission denied: PERMISSION_DENIED (403) ``Permission
  'secretmanager.versions.access' denied for resource 'NAME' (or it may not exist).``
* The response carries the *resolved* version name (``.../versions/3`` for a
  ``latest`` request) and ``data_crc32c``.  Google puts the project *number* in
  that name; pass ``project_numbers`` to reproduce that.

Nothing here ever reaches Google: servers bind 127.0.0.1 on free ports. The test
fixture that also keeps google-auth off the network is in tests/support/fake_gsm.py.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field

import google_crc32c
import grpc
from google.cloud.secretmanager_v1 import types as sm_types

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"

ENABLED, DISABLED, DESTROYED = "ENABLED", "DISABLED", "DESTROYED"

# Fault kinds, injected per secret with FakeSecretManager.inject().
NOT_FOUND = "not_found"
PERMISSION_DENIED = "permission_denied"
UNAVAILABLE = "unavailable"
RESOURCE_EXHAUSTED = "resource_exhausted"
DEADLINE_EXCEEDED = "deadline_exceeded"
UNAUTHENTICATED = "unauthenticated"
BAD_CRC = "bad_crc"  # success, but data_crc32c does not match the data
NO_CRC = "no_crc"  # success, without a data_crc32c field
FAULT_KINDS = frozenset(
    {NOT_FOUND, PERMISSION_DENIED, UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED,
     UNAUTHENTICATED, BAD_CRC, NO_CRC}
)

# Canonical status name -> (grpc code, HTTP status), as Google maps them.
_STATUS: dict[str, tuple[grpc.StatusCode, int]] = {
    "INVALID_ARGUMENT": (grpc.StatusCode.INVALID_ARGUMENT, 400),
    "FAILED_PRECONDITION": (grpc.StatusCode.FAILED_PRECONDITION, 400),
    "UNAUTHENTICATED": (grpc.StatusCode.UNAUTHENTICATED, 401),
    "PERMISSION_DENIED": (grpc.StatusCode.PERMISSION_DENIED, 403),
    "NOT_FOUND": (grpc.StatusCode.NOT_FOUND, 404),
    "RESOURCE_EXHAUSTED": (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    "UNAVAILABLE": (grpc.StatusCode.UNAVAILABLE, 503),
    "DEADLINE_EXCEEDED": (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
}

_NAME_RE = re.compile(r"^projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)$")
_REST_RE = re.compile(r"^/v1/(projects/[^/]+/secrets/[^/]+/versions/[^/:]+):access$")


@dataclass
class FakeError:
    """A Google-style error: canonical status name and message."""

    status: str
    message: str

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return _STATUS[self.status][0]

    @property
    def http_status(self) -> int:
        return _STATUS[self.status][1]

    def rest_body(self) -> bytes:
        """The JSON error body Google's REST front end sends."""
        body = {"error": {"code": self.http_status, "message": self.message, "status": self.status}}
        return json.dumps(body).encode()


@dataclass
class AccessResult:
    """A successful access: resolved name, payload and the CRC32C to report (None = omit)."""

    name: str
    data: bytes
    crc32c: int | None

    def rest_body(self) -> bytes:
        payload: dict[str, str] = {"data": base64.b64encode(self.data).decode()}
        if self.crc32c is not None:
            payload["dataCrc32c"] = str(self.crc32c)  # int64 is a JSON string
        return json.dumps({"name": self.name, "payload": payload}).encode()

    def grpc_message(self) -> sm_types.AccessSecretVersionResponse:
        payload = sm_types.SecretPayload(data=self.data)
        if self.crc32c is not None:
            payload.data_crc32c = self.crc32c
        return sm_types.AccessSecretVersionResponse(name=self.name, payload=payload)


@dataclass
class Call:
    """One AccessSecretVersion call as the fake saw it (for counting and concurrency checks)."""

    name: str  # resource name as requested, e.g. projects/p/secrets/s/versions/latest
    project: str
    secret: str
    version: str  # as requested ("3", "latest")
    transport: str  # "grpc" | "rest"
    start: float  # time.monotonic()
    end: float = 0.0
    status: str = ""  # "OK" or canonical error status
    in_flight: int = 0  # calls in progress when this one started, itself included
    bearer: str | None = None  # Authorization: Bearer value if any (fake tokens only)

    @property
    def secret_path(self) -> str:
        return f"projects/{self.project}/secrets/{self.secret}"


@dataclass
class _Version:
    number: int
    data: bytes
    state: str = ENABLED


@dataclass
class _Fault:
    kind: str
    remaining: int | None  # None = forever


@dataclass
class _Secret:
    versions: dict[int, _Version] = field(default_factory=dict)
    faults: list[_Fault] = field(default_factory=list)
    latency: float | None = None  # None = use the store-wide latency


class FakeSecretManager:
    """State + both servers.  Use as a context manager or via the ``fake_gsm`` fixture.

    All mutators are thread-safe; the store lock is never held while sleeping, so
    injected latency does not serialize concurrent calls.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        latest_policy: str = "newest",
        require_bearer: Callable[[str | None], bool] | None = None,
        project_numbers: Mapping[str, str] | None = None,
        grpc_workers: int = 64,
        rest_ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if latest_policy not in ("newest", "newest_enabled"):
            raise ValueError("latest_policy is 'newest' (Google) or 'newest_enabled'")
        self.latency = latency
        self.latest_policy = latest_policy
        self.require_bearer = require_bearer
        self.project_numbers = dict(project_numbers or {})
        self._grpc_workers = grpc_workers
        self._rest_ssl_context = rest_ssl_context
        self._lock = threading.Lock()
        self._secrets: dict[tuple[str, str], _Secret] = {}
        self.calls: list[Call] = []
        self._in_flight = 0
        self.max_in_flight = 0
        self._grpc_server: grpc.Server | None = None
        self._rest_server: http.server.ThreadingHTTPServer | None = None
        self._rest_thread: threading.Thread | None = None
        self.grpc_port = 0
        self.rest_port = 0

    # ----------------------------------------------------------------- store
    def add_secret(self, project: str, secret: str, *versions: bytes) -> str:
        """Create a secret (if needed) and add enabled versions; returns projects/P/secrets/S."""
        with self._lock:
            self._secrets.setdefault((project, secret), _Secret())
        for data in versions:
            self.add_version(project, secret, data)
        return f"projects/{project}/secrets/{secret}"

    def add_version(self, project: str, secret: str, data: bytes, state: str = ENABLED) -> int:
        """Append a version (numbers start at 1, like Google); returns its number."""
        _check_state(state)
        with self._lock:
            sec = self._secrets.setdefault((project, secret), _Secret())
            number = max(sec.versions, default=0) + 1
            sec.versions[number] = _Version(number, bytes(data), state)
            return number

    def set_state(self, project: str, secret: str, version: int, state: str) -> None:
        """Enable / disable / destroy a version (destroy also drops the data, like Google)."""
        _check_state(state)
        with self._lock:
            ver = self._secrets[(project, secret)].versions[version]
            ver.state = state
            if state == DESTROYED:
                ver.data = b""

    def inject(self, project: str, secret: str, kind: str, times: int | None = None) -> None:
        """Make the next ``times`` calls for this secret fail with ``kind`` (None = forever).

        Faults queue in order: ``inject(UNAVAILABLE, 2)`` then ``inject(BAD_CRC, 1)``
        gives two UNAVAILABLE, one bad checksum, then normal answers.  Works for
        secrets that do not exist too (e.g. permission denied hides existence).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None (forever)")
        with self._lock:
            self._secrets.setdefault((project, secret), _Secret()).faults.append(_Fault(kind, times))

    def set_latency(self, project: str, secret: str, seconds: float) -> None:
        """Per-secret latency, overriding the store-wide ``latency``."""
        with self._lock:
            self._secrets.setdefault((project, secret), _Secret()).latency = seconds

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.max_in_flight = 0

    # ------------------------------------------------------------ inspection
    def fetch_count(self, project: str | None = None, secret: str | None = None) -> int:
        """Calls seen, optionally for one secret (all versions, all outcomes)."""
        with self._lock:
            return sum(
                1 for c in self.calls
                if (project is None or c.project == project) and (secret is None or c.secret == secret)
            )

    def calls_for(self, project: str, secret: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.project == project and c.secret == secret]

    # ----------------------------------------------------------- the method
    def access(self, name: str, transport: str, bearer: str | None = None) -> AccessResult | FakeError:
        """Answer one AccessSecretVersion; transport-neutral so both servers share it."""
        match = _NAME_RE.match(name)
        if not match:
            return FakeError("INVALID_ARGUMENT", f"Invalid resource field value in the request: {name}")
        project, secret, version = match.groups()
        call = self._begin(Call(name, project, secret, version, transport, time.monotonic(), bearer=bearer))
        try:
            time.sleep(self._latency_for(project, secret))
            result = self._answer(project, secret, version, bearer)
        finally:
            self._end(call)
        call.status = "OK" if isinstance(result, AccessResult) else result.status
        return result

    def _begin(self, call: Call) -> Call:
        with self._lock:
            self._in_flight += 1
            call.in_flight = self._in_flight
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self.calls.append(call)
        return call

    def _end(self, call: Call) -> None:
        with self._lock:
            self._in_flight -= 1
            call.end = time.monotonic()

    def _latency_for(self, project: str, secret: str) -> float:
        with self._lock:
            sec = self._secrets.get((project, secret))
            return sec.latency if sec and sec.latency is not None else self.latency

    def _answer(self, project: str, secret: str, version: str, bearer: str | None) -> AccessResult | FakeError:
        if self.require_bearer is not None and not self.require_bearer(bearer):
            return FakeError(
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        with self._lock:
            sec = self._secrets.get((project, secret))
            fault = _take_fault(sec) if sec else None
            requested = f"projects/{project}/secrets/{secret}/versions/{version}"
            if fault is not None and fault not in (BAD_CRC, NO_CRC):
                return _fault_error(fault, requested)
            if sec is None or not sec.versions:
                return FakeError("NOT_FOUND", f"Secret [projects/{project}/secrets/{secret}] not found or has no versions.")
            ver = self._resolve(sec, version)
            if ver is None:
                return FakeError("NOT_FOUND", f"Secret Version [{requested}] not found.")
            shown = f"projects/{self.project_numbers.get(project, project)}/secrets/{secret}/versions/{ver.number}"
            if ver.state != ENABLED:
                return FakeError("FAILED_PRECONDITION", f"Secret Version [{shown}] is in {ver.state} state.")
            crc: int | None = google_crc32c.value(ver.data)
            if fault == BAD_CRC:
                crc = (crc + 1) & 0xFFFFFFFF
            elif fault == NO_CRC:
                crc = None
            return AccessResult(shown, ver.data, crc)

    def _resolve(self, sec: _Secret, version: str) -> _Version | None:
        if version == "latest":
            candidates = sorted(sec.versions.values(), key=lambda v: v.number, reverse=True)
            if self.latest_policy == "newest_enabled":
                candidates = [v for v in candidates if v.state == ENABLED] or candidates
            return candidates[0] if candidates else None
        if version.isdigit():
            return sec.versions.get(int(version))
        return None  # version aliases are not modelled

    # ---------------------------------------------------------------- servers
    @property
    def grpc_target(self) -> str:
        """host:port for ``grpc.insecure_channel``."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_endpoint(self) -> str:
        """``api_endpoint`` for ``transport="rest"``."""
        scheme = "https" if self._rest_ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.rest_port}"

    def start(self) -> FakeSecretManager:
        """Start both servers on free loopback ports; stops what started if one fails."""
        try:
            self._start_grpc()
            self._start_rest()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_grpc(self) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            self._grpc_access,
            request_deserializer=sm_types.AccessSecretVersionRequest.deserialize,
            response_serializer=sm_types.AccessSecretVersionResponse.serialize,
        )
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._grpc_workers, thread_name_prefix="fake-gsm-grpc"),
            options=[("grpc.so_reuseport", 0)],
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"AccessSecretVersion": handler}),)
        )
        self.grpc_port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc_server = server

    def _grpc_access(self, request: sm_types.AccessSecretVersionRequest, context: grpc.ServicerContext):
        metadata = dict(context.invocation_metadata() or ())
        result = self.access(request.name, "grpc", _bearer(metadata.get("authorization")))
        if isinstance(result, FakeError):
            context.abort(result.grpc_code, result.message)
        return result.grpc_message()

    def _start_rest(self) -> None:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_rest_handler(self))
        server.daemon_threads = True
        if self._rest_ssl_context is not None:
            server.socket = self._rest_ssl_context.wrap_socket(server.socket, server_side=True)
        self.rest_port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                  name="fake-gsm-rest", daemon=True)
        thread.start()
        self._rest_server, self._rest_thread = server, thread

    def stop(self) -> None:
        """Stop both servers; safe to call twice or after a failed start."""
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None).wait(5)
            self._grpc_server = None
        if self._rest_server is not None:
            self._rest_server.shutdown()
            self._rest_server.server_close()
            self._rest_server = None
        if self._rest_thread is not None:
            self._rest_thread.join(5)
            self._rest_thread = None

    def __enter__(self) -> FakeSecretManager:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def rest_response(fake: FakeSecretManager, path: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
    """(status, JSON body) for one REST GET; reusable by other servers (e.g. boot-fetch sandboxes)."""
    match = _REST_RE.match(path.split("?", 1)[0])
    if not match:
        err = FakeError("NOT_FOUND", f"The requested URL {path} was not found on this server.")
        return err.http_status, err.rest_body()
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    result = fake.access(match.group(1), "rest", _bearer(auth))
    if isinstance(result, FakeError):
        return result.http_status, result.rest_body()
    return 200, result.rest_body()


def make_rest_handler(fake: FakeSecretManager) -> type[http.server.BaseHTTPRequestHandler]:
    """A request-handler class bound to ``fake`` (kept separate so other servers can mount it)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: requests pools connections
        disable_nagle_algorithm = True  # else ~44 ms per call (FIELD_NOTES 6)

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            status, body = rest_response(fake, self.path, dict(self.headers.items()))
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client timed out and left

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # keep test output clean

    return Handler


def _bearer(value: str | None) -> str | None:
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


def _take_fault(sec: _Secret) -> str | None:
    """Pop the next fault for a secret (caller holds the lock)."""
    if not sec.faults:
        return None
    fault = sec.faults[0]
    if fault.remaining is not None:
        fault.remaining -= 1
        if fault.remaining <= 0:
            sec.faults.pop(0)
    return fault.kind


def _fault_error(kind: str, name: str) -> FakeError:
    """The error Google returns for each injected failure."""
    if kind == NOT_FOUND:
        return FakeError("NOT_FOUND", f"Secret Version [{name}] not found.")
    if kind == PERMISSION_DENIED:
        return FakeError(
            "PERMISSION_DENIED",
            f"Permission 'secretmanager.versions.access' denied for resource '{name}' (or it may not exist).",
        )
    if kind == UNAVAILABLE:
        return FakeError("UNAVAILABLE", "The service is currently unavailable.")
    if kind == RESOURCE_EXHAUSTED:
        return FakeError(
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Access requests' and limit 'Access requests per minute "
            "per project' of service 'secretmanager.googleapis.com'.",
        )
    if kind == DEADLINE_EXCEEDED:
        return FakeError("DEADLINE_EXCEEDED", "Deadline exceeded.")
    if kind == UNAUTHENTICATED:
        return FakeError("UNAUTHENTICATED", "Request had invalid authentication credentials.")
    raise AssertionError(kind)


def _check_state(state: str) -> None:
    if state not in (ENABLED, DISABLED, DESTROYED):
        raise ValueError(f"state must be ENABLED, DISABLED or DESTROYED, not {state!r}")


def unused_port() -> int:
    """A loopback port with nothing listening (for 'server is down' cases); racy but fine in tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_fake_gsm(**kwargs: object) -> Iterator[FakeSecretManager]:
    """``with running_fake_gsm() as fake:`` — servers always stopped, even on error."""
    fake = FakeSecretManager(**kwargs)  # type: ignore[arg-type]
    with fake:
        yield fake
