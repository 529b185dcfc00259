"""The few registry HTTP calls ``regauth verify`` makes, the way containerd makes them.

Standard library only (``urllib`` with an explicit TLS context), imported by
``verify`` alone.  Every call has a timeout; redirects are not followed (a redirect
would carry credentials to another host); network and TLS failures become
:class:`Unreachable` with a kind (``tls``, ``refused``, ``timeout``, ``dns``,
``network``) so the caller can name the cause.  Nothing here logs or formats a
credential: they travel in request headers and bodies only.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
BODY_CAP = 64 * 1024
USER_AGENT = "regauth-verify"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    def json(self) -> dict[str, object]:
        try:
            doc = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def error_code(self) -> str:
        """First ``errors[].code`` of a registry error body ("NAME_UNKNOWN", ...)."""
        errors = self.json().get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("code") or "")
        return ""


class Unreachable(Exception):
    """The request got no HTTP answer.  ``kind``: tls | refused | timeout | dns | network."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" | "basic" | "" (no auth asked)
    params: dict[str, str]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # the 3xx surfaces as an HTTPError the caller reports


class RegistryClient:
    def __init__(self, timeout: float, ca_file: str | None = None) -> None:
        context = ssl.create_default_context()  # system store; SSL_CERT_FILE/SSL_CERT_DIR honoured by OpenSSL
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect())

    def request(self, method: str, url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> Response:
        req = urllib.request.Request(url, data=data, method=method, headers={"User-Agent": USER_AGENT, **(headers or {})})
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read(BODY_CAP))
        except urllib.error.HTTPError as exc:
            body = b""
            try:
                body = exc.read(BODY_CAP)
            except (OSError, http.client.HTTPException):
                pass
            return Response(exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, body)
        except urllib.error.URLError as exc:
            raise _unreachable(exc.reason) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _unreachable(exc) from None
        except ValueError:  # e.g. a relative or non-https realm in the challenge
            raise Unreachable("network", f"cannot request '{url.split('?', 1)[0]}' (not an absolute http(s) URL)") from None

    # -- the three steps containerd takes ------------------------------------
    def ping(self, host: str) -> tuple[Response, Challenge]:
        resp = self.request("GET", f"https://{host}/v2/")
        return resp, parse_challenge(resp.headers.get("www-authenticate", ""))

    def token(self, challenge: Challenge, username: str, password: str, scope: str) -> tuple[Response, list[tuple[str, int]]]:
        """OAuth2 password grant (POST), then GET with Basic on 400/401/404/405, like containerd."""
        realm = challenge.params.get("realm", "")
        service = challenge.params.get("service", "")
        form = {"grant_type": "password", "username": username, "password": password, "service": service, "client_id": "regauth"}
        if scope:
            form["scope"] = scope
        tried: list[tuple[str, int]] = []
        resp = self.request("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"}, urllib.parse.urlencode(form).encode())
        tried.append(("POST", resp.status))
        if resp.status in (400, 401, 404, 405):
            query = urllib.parse.urlencode({k: v for k, v in (("service", service), ("scope", scope)) if v})
            url = realm + ("&" if "?" in realm else "?") + query if query else realm
            resp = self.request("GET", url, {"Authorization": basic_header(username, password)})
            tried.append(("GET", resp.status))
        return resp, tried

    def manifest(self, host: str, repository: str, reference: str, authorization: str) -> Response:
        url = f"https://{host}/v2/{repository}/manifests/{reference}"
        headers = {"Accept": MANIFEST_TYPES, **({"Authorization": authorization} if authorization else {})}
        resp = self.request("HEAD", url, headers)
        if resp.status in (401, 403, 404):  # HEAD has no body: ask again for the error code (NAME_UNKNOWN, DENIED, ...)
            again = self.request("GET", url, headers)
            if again.status == resp.status:
                return again
        return resp


def basic_header(username: str, password: str) -> str:
    """HTTP Basic: the same base64 of ``user:pass`` as Docker's ``auth`` field (one rule, the node's)."""
    from generator.node.authfile import basic_auth

    return "Basic " + basic_auth(username, password)


def parse_challenge(header: str) -> Challenge:
    """``Bearer realm="...",service="...",scope="..."`` (or Basic) -> scheme and params."""
    m = re.match(r"\s*(\w+)\s*(.*)", header or "")
    if not m:
        return Challenge("", {})
    params = {}
    for p in re.finditer(r'(\w+)=(?:"([^"]*)"|([^",\s]+))', m.group(2)):
        params[p.group(1).lower()] = p.group(2) if p.group(2) is not None else p.group(3)
    return Challenge(m.group(1).lower(), params)


def _unreachable(reason: object) -> Unreachable:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return Unreachable("tls", reason.verify_message or str(reason))
    if isinstance(reason, ssl.SSLError):
        text = str(reason)
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
            return Unreachable("tls", "the server does not speak TLS on this port (plain HTTP?)")
        return Unreachable("tls", text)
    if isinstance(reason, ConnectionRefusedError):
        return Unreachable("refused", "connection refused")
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return Unreachable("timeout", "timed out")
    if isinstance(reason, socket.gaierror):
        return Unreachable("dns", f"cannot resolve the host ({reason.strerror})")
    if isinstance(reason, OSError):
        return Unreachable("network", reason.strerror or str(reason))
    return Unreachable("network", str(reason))
