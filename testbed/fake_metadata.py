"""A fake GCE metadata server for the boot-time fetch (and cloud-init's GCE datasource).

Why three layers: the boot-fetch tests only need a server on a loopback port,
but another helper builds a cloud-init GCE-datasource sandbox and routes
``metadata.google.internal`` to its own listener.  So:

* :class:`MetadataState` — the tree of values, fault mode, request log;
* :func:`metadata_response` — pure ``(method, path, headers) -> (status, headers, body)``;
* :func:`make_metadata_handler` — an ``http.server`` handler class bound to a state;
* :class:`FakeMetadataServer` / :func:`running_fake_metadata` (and the ``fake_metadata``
  fixture in tests/support/fake_metadata.py) — start it on 127.0.0.1, always stopped.

Behaviour copied from the real server: every ``/computeMetadata/v1/`` request needs
``Metadata-Flavor: Google`` (else 403) and is refused if it carries
``X-Forwarded-For``; replies carry ``Metadata-Flavor: Google``; a directory path
ending in ``/`` lists its children (sub-directories with a trailing ``/``);
``?recursive=true`` returns the subtree as JSON; ``?alt=json`` returns a leaf as
JSON.  The token endpoint returns ``{"access_token","expires_in","token_type"}``.
Key case conversion that the real server applies in recursive JSON is not modelled.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = "/computeMetadata/v1/"
TOKEN_PATH = "instance/service-accounts/default/token"
EMAIL_PATH = "instance/service-accounts/default/email"

# Fault modes (MetadataState.set_fault).
DOWN = "down"  # close the connection without a reply (curl: "Empty reply", exit 52)
SLOW = "slow"  # sleep MetadataState.slow_seconds, then answer normally
ERROR_500 = "500"  # HTTP 500 with a short text body
GARBAGE = "garbage"  # 200 with a body that is not what the caller expects
FAULT_MODES = frozenset({DOWN, SLOW, ERROR_500, GARBAGE})


@dataclass
class MetadataRequest:
    """One request as received (header names lower-cased)."""

    method: str
    path: str  # without query string
    query: str
    headers: dict[str, str]
    time: float  # time.monotonic()
    status: int = 0  # 0 = connection dropped


@dataclass
class _Fault:
    mode: str
    remaining: int | None
    path_contains: str | None


def default_tree(
    *,
    project_id: str = "fake-project",
    numeric_project_id: str = "123456789012",
    email: str = "regauth-vm@fake-project.iam.gserviceaccount.com",
    scopes: tuple[str, ...] = ("https://www.googleapis.com/auth/cloud-platform",),
) -> dict[str, Any]:
    """A plausible GCE instance; extend it with :meth:`MetadataState.set`."""
    account = {"aliases": ["default"], "email": email, "scopes": list(scopes)}
    return {
        "project": {"project-id": project_id, "numeric-project-id": numeric_project_id, "attributes": {}},
        "instance": {
            "id": "4520031799277581759",
            "name": "regauth-test-vm",
            "hostname": "regauth-test-vm.c.fake-project.internal",
            "zone": f"projects/{numeric_project_id}/zones/europe-west1-b",
            "attributes": {},
            "service-accounts": {"default": dict(account), email: dict(account)},
        },
    }


class MetadataState:
    """Values, token minting, faults and the request log; shared by any server that mounts it."""

    def __init__(self, tree: dict[str, Any] | None = None, *, token_ttl: int = 3599) -> None:
        self._lock = threading.Lock()
        self.tree: dict[str, Any] = tree if tree is not None else default_tree()
        self.token_ttl = token_ttl
        self.tokens_issued: list[str] = []
        self.requests: list[MetadataRequest] = []
        self.slow_seconds = 5.0
        self._faults: list[_Fault] = []

    # -------------------------------------------------------------- values
    def set(self, path: str, value: Any) -> None:
        """Set a value by metadata path, e.g. ``set("instance/attributes/user-data", text)``."""
        parts = [p for p in path.strip("/").split("/") if p]
        with self._lock:
            node = self.tree
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value

    @property
    def email(self) -> str:
        return str(self.tree["instance"]["service-accounts"]["default"]["email"])

    def issue_token(self) -> str:
        """Mint a fresh fake token (a boot-fetch test can require it at the GSM fake)."""
        with self._lock:
            token = f"ya29.fake-token-{len(self.tokens_issued) + 1}"
            self.tokens_issued.append(token)
            return token

    def token_is_valid(self, token: str | None) -> bool:
        """For ``FakeSecretManager(require_bearer=state.token_is_valid)``."""
        with self._lock:
            return token is not None and token in self.tokens_issued

    # -------------------------------------------------------------- faults
    def set_fault(self, mode: str | None, times: int | None = None, path_contains: str | None = None) -> None:
        """Replace all faults with one (``None`` clears): next ``times`` requests (None = all)."""
        if mode is not None and mode not in FAULT_MODES:
            raise ValueError(f"unknown fault {mode!r}; one of {sorted(FAULT_MODES)}")
        with self._lock:
            self._faults = [] if mode is None else [_Fault(mode, times, path_contains)]

    def _take_fault(self, path: str) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault.path_contains and fault.path_contains not in path:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault.mode
            return None

    def _record(self, req: MetadataRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def requests_to(self, path_suffix: str) -> list[MetadataRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]


class DropConnection(Exception):
    """Raised by :func:`metadata_response` when the fault mode says: reply with nothing."""


def metadata_response(
    state: MetadataState, method: str, raw_path: str, headers: Mapping[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """Answer one request; pure apart from the state's log/faults, so any server can mount it."""
    split = urlsplit(raw_path)
    query = {k.lower(): v[-1] for k, v in parse_qs(split.query).items()}
    lower = {k.lower(): v for k, v in headers.items()}
    req = MetadataRequest(method, split.path, split.query, lower, time.monotonic())
    state._record(req)
    status, out_headers, body = _answer(state, method, split.path, query, lower)
    req.status = status
    return status, out_headers, body


def _answer(
    state: MetadataState, method: str, path: str, query: dict[str, str], headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    base = {"Metadata-Flavor": "Google", "Server": "Metadata Server for VM"}
    if path in ("", "/"):  # google.auth's is_on_gce() ping at the bare IP
        return 200, {**base, "Content-Type": "application/text"}, b"computeMetadata/\n"
    if not path.startswith(ROOT):
        return 404, {**base, "Content-Type": "text/html"}, b"not found\n"
    if "x-forwarded-for" in headers:
        return 403, {**base, "Content-Type": "text/html"}, b"Request had X-Forwarded-For header; refused\n"
    if headers.get("metadata-flavor") != "Google":
        return 403, {**base, "Content-Type": "text/html"}, b"Missing required header: Metadata-Flavor: Google\n"
    if method not in ("GET", "HEAD"):
        return 405, {**base, "Content-Type": "text/html"}, b"method not allowed\n"
    rel = path[len(ROOT):]
    fault = state._take_fault(rel)
    if fault == DOWN:
        raise DropConnection()  # the request stays logged with status 0
    if fault == SLOW:
        time.sleep(state.slow_seconds)
    if fault == ERROR_500:
        return 500, {**base, "Content-Type": "text/plain"}, b"Internal Server Error\n"
    if fault == GARBAGE:
        return 200, {**base, "Content-Type": "application/json"}, b"<html>\x00\xffnot json{"
    if rel.rstrip("/") == TOKEN_PATH or _is_account_token(rel):
        return _token(state, base)
    return _tree_value(state, rel, query, base)


def _is_account_token(rel: str) -> bool:
    parts = rel.strip("/").split("/")
    return len(parts) == 4 and parts[:2] == ["instance", "service-accounts"] and parts[3] == "token"


def _token(state: MetadataState, base: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    body = {"access_token": state.issue_token(), "expires_in": state.token_ttl, "token_type": "Bearer"}
    return 200, {**base, "Content-Type": "application/json"}, json.dumps(body).encode()


def _tree_value(
    state: MetadataState, rel: str, query: dict[str, str], base: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    node: Any = state.tree
    for part in [p for p in rel.split("/") if p]:
        if not isinstance(node, dict) or part not in node:
            return 404, {**base, "Content-Type": "text/html"}, b"Not Found\n"
        node = node[part]
    recursive = query.get("recursive", "").lower() == "true"
    if isinstance(node, dict):
        if recursive or query.get("alt") == "json":
            return 200, {**base, "Content-Type": "application/json"}, json.dumps(node).encode()
        if not rel.endswith("/") and rel:
            return 301, {**base, "Location": ROOT + rel + "/"}, b""
        listing = "".join(f"{k}/\n" if isinstance(v, dict) else f"{k}\n" for k, v in node.items())
        return 200, {**base, "Content-Type": "application/text"}, listing.encode()
    if query.get("alt") == "json" or isinstance(node, (list, int, float, bool)):
        return 200, {**base, "Content-Type": "application/json"}, json.dumps(node).encode()
    data = node if isinstance(node, bytes) else str(node).encode()
    return 200, {**base, "Content-Type": "application/text"}, data


def make_metadata_handler(state: MetadataState) -> type[http.server.BaseHTTPRequestHandler]:
    """A handler class bound to ``state``; mount it on any ``http.server`` listener."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _serve(self, send_body: bool) -> None:
            try:
                status, headers, body = metadata_response(state, self.command, self.path, dict(self.headers.items()))
            except DropConnection:
                self.close_connection = True
                return
            try:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (e.g. its timeout on a SLOW fault)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(False)

        def do_POST(self) -> None:  # noqa: N802
            self._serve(True)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


class FakeMetadataServer:
    """A threaded listener for a :class:`MetadataState`; can go down and come back on the same port."""

    def __init__(self, state: MetadataState | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state or MetadataState()
        self.host = host
        self.port = port
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (append ``/computeMetadata/v1/...``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def host_port(self) -> str:
        """For ``GCE_METADATA_HOST`` / ``GCE_METADATA_IP``."""
        return f"{self.host}:{self.port}"

    def start(self) -> FakeMetadataServer:
        server = http.server.ThreadingHTTPServer((self.host, self.port), make_metadata_handler(self.state))
        server.daemon_threads = True
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                  name="fake-metadata", daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Close the listener (connections are then refused); the port number is kept for restart."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def restart(self) -> None:
        """Come back up on the same port (models the metadata server appearing late at boot)."""
        self.stop()
        self.start()

    def __enter__(self) -> FakeMetadataServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_fake_metadata(state: MetadataState | None = None) -> Iterator[FakeMetadataServer]:
    """``with running_fake_metadata() as md:`` — always stopped."""
    with FakeMetadataServer(state) as server:
        yield server
