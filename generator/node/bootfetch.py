"""Secrets fetched at boot: the VM's token from the GCE metadata server, then the
Secret Manager REST API; and turning plan entries into username/password pairs."""

import base64
import json
import os
import time
from typing import Dict, Optional, Tuple

from .errors import ApplyError, FetchFailure, log


SECRET_MANAGER = "https://secretmanager.googleapis.com"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
EMAIL_PATH = "/computeMetadata/v1/instance/service-accounts/default/email"


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli), the checksum Secret Manager sends; zlib.crc32 is a different CRC."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _metadata_base() -> str:
    # GCE_METADATA_HOST is the override Google's own client libraries honour.
    return "http://" + os.environ.get("GCE_METADATA_HOST", "metadata.google.internal")


def _http_json(request, timeout: float) -> dict:
    import urllib.request

    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read(1024 * 1024)
    try:
        doc = json.loads(body)
    except ValueError:
        raise FetchFailure("%s answered with something that is not JSON" % request.host)
    if not isinstance(doc, dict):
        raise FetchFailure("%s answered with unexpected JSON" % request.host)
    return doc


def _vm_identity(timeout: float) -> str:
    import urllib.request

    try:
        req = urllib.request.Request(_metadata_base() + EMAIL_PATH, headers={"Metadata-Flavor": "Google"})
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.read(512).decode("utf-8", "replace").strip() or "the VM's service account"
    except Exception:
        return "the VM's service account"


class BootFetcher:
    """Fetches each named secret once per run, retrying transient failures until a deadline."""

    def __init__(self, deadline: float, report=log):
        self.deadline = deadline
        self.report = report  # retry lines; the credential provider keeps stderr to one line
        self.cache: Dict[Tuple[str, str], bytes] = {}

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    def _retrying(self, what: str, fn):
        import urllib.error  # only boot-time fetches need urllib; keep plain applies lean

        delay = 0.5
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(max(0.5, min(10.0, self._left())))
            except FetchFailure:
                raise
            except urllib.error.HTTPError as exc:
                if exc.code not in (429, 500, 502, 503, 504):
                    raise
                reason = "HTTP %d" % exc.code
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = type(getattr(exc, "reason", exc)).__name__
            if self._left() <= delay:
                raise ApplyError("%s failed after %d attempts (%s); gave up at the --fetch-timeout deadline" % (what, attempt, reason), code="node-fetch-timeout")
            self.report("%s: attempt %d failed (%s); retrying in %.1fs" % (what, attempt, reason, delay))
            time.sleep(delay)
            import random

            delay = min(delay * 2, 8.0) * (0.8 + 0.4 * random.random())

    def token(self) -> str:
        return self.token_info()[0]

    def token_info(self) -> Tuple[str, int]:
        """The VM's access token and the seconds it has left (``expires_in``; 0 when the
        server does not say), e.g. for a credential provider's cache duration."""
        import urllib.request

        def get(timeout: float) -> Tuple[str, int]:
            req = urllib.request.Request(_metadata_base() + TOKEN_PATH, headers={"Metadata-Flavor": "Google"})
            doc = _http_json(req, timeout)
            token = doc.get("access_token")
            if not isinstance(token, str) or not token:
                raise FetchFailure("the metadata server returned no access_token")
            expires = doc.get("expires_in")
            return token, expires if isinstance(expires, int) and not isinstance(expires, bool) and expires > 0 else 0

        return self._retrying("metadata token", get)

    def fetch(self, name: str, endpoint: Optional[str]) -> bytes:
        key = (name, endpoint or SECRET_MANAGER)
        if key in self.cache:
            return self.cache[key]
        import urllib.error
        import urllib.request

        token = self.token()
        url = (endpoint or SECRET_MANAGER).rstrip("/") + "/v1/" + name + ":access"

        def get(timeout: float) -> bytes:
            req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
            try:
                doc = _http_json(req, timeout)
            except urllib.error.HTTPError as exc:
                if exc.code == 403:
                    raise FetchFailure(
                        "permission denied on %s: grant roles/secretmanager.secretAccessor on %s to %s, and give the VM the cloud-platform scope"
                        % (name, name.split("/versions/")[0], _vm_identity(2.0))
                    )
                if exc.code == 404:
                    raise FetchFailure("secret %s not found (check project, secret id and version)" % name)
                if exc.code == 400:
                    raise FetchFailure("Secret Manager refused %s (HTTP 400: a disabled or destroyed version?)" % name)
                raise
            payload = doc.get("payload")
            if not isinstance(payload, dict) or not isinstance(payload.get("data"), str):
                raise FetchFailure("Secret Manager answered without a payload for %s" % name)
            try:
                data = base64.b64decode(payload["data"], validate=True)
            except ValueError:
                raise FetchFailure("the payload of %s is not base64" % name)
            want = payload.get("dataCrc32c")
            if want is not None and str(want) != str(crc32c(data)):
                raise FetchFailure("the payload of %s failed its CRC32C check (corrupted in transit)" % name)
            return data

        data = self._retrying("fetch %s" % name, get)
        self.cache[key] = data
        return data

    def password(self, source: dict) -> str:
        """The password a plan entry's ``password_from`` names, fetched and checked now."""
        payload = self.fetch(source["gcp_secret_manager"], source.get("endpoint"))
        password = password_from_payload(payload, source["transform"])
        if source.get("check") == "service-account-key":
            _check_key_json(payload, source["gcp_secret_manager"])
        return password


def password_from_payload(payload: bytes, transform: str) -> str:
    """The one definition of how a secret payload becomes a registry password: here at
    boot, and in ``generator.secrets.resolve`` at render time (it imports this)."""
    if not payload:
        raise FetchFailure("the secret is empty, so the password would be empty", code="node-secret-payload")
    if transform == "base64":
        return base64.b64encode(payload).decode("ascii")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise FetchFailure("the secret is not UTF-8 text, so it cannot be a password", code="node-secret-payload")
    if "\x00" in text:
        raise FetchFailure("the secret contains a NUL character", code="node-secret-payload")
    if transform == "strip-newline":
        # `echo pass > file` and `gcloud secrets create --data-file` keep a newline
        # nobody means as part of the password (docker login --password-stdin trims it too).
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
    if not text:
        raise FetchFailure("the secret is empty (or only a line break), so the password would be empty", code="node-secret-payload")
    return text


def _check_key_json(payload: bytes, name: str) -> None:
    try:
        doc = json.loads(payload)
    except ValueError:
        raise FetchFailure("%s is not a service-account key (not JSON)" % name, code="node-secret-payload")
    if not isinstance(doc, dict) or doc.get("type") != "service_account" or "private_key" not in doc:
        raise FetchFailure("%s is not a service-account key JSON" % name, code="node-secret-payload")

