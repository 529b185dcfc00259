"""``source: gcp-secret-manager`` at build time: read secret versions from Google Secret Manager.

Why it looks like this (see FIELD_NOTES section 6 and issue 4):

* Google libraries cost ~0.5 s to import, and most renders never need them, so this
  module imports nothing from ``google`` at top level; :func:`fetch_secrets` does.
* The client's default retry silently retries UNAVAILABLE for up to 60 s and then
  raises ``RetryError``.  We pass ``retry=None`` and run our own small, visible
  retry loop (exponential backoff with jitter) inside one deadline for the whole run.
* The client does not verify ``data_crc32c``; we do, with google-crc32c.
* Every failure becomes :class:`SecretUnavailable` with the cause *and* the fix
  (which name, which IAM role on which secret for which identity, which command).
  Messages carry resource names only: never payload bytes, never their CRC32C
  (a 32-bit checksum of a short password is an offline guessing oracle).
* A run references the same secret from many registries or profiles; each distinct
  version is fetched once, distinct ones concurrently through one shared client
  (Google's clients are thread-safe).  Nothing is cached on disk.
"""

from __future__ import annotations

import logging
import random
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generator.errors import SecretUnavailable
from generator.messages import runtime as R
from generator.secrets.value import SecretValue

if TYPE_CHECKING:  # pragma: no cover - typing only, never imported at run time
    from google.cloud.secretmanager import SecretManagerServiceClient

log = logging.getLogger(__name__)

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
TRANSPORTS = ("grpc", "rest")

# Same rules as Google: project id (6-30, lowercase, starts with a letter) or number;
# secret id letters/digits/-/_ up to 255; version a positive number or "latest".
_PROJECT_RE = re.compile(r"^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]+)$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION_RE = re.compile(r"^(?:[1-9][0-9]*|latest)$")
_NAME_RE = re.compile(r"^projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)$")
_STATE_RE = re.compile(r"\[([^\]]+)\] is in (DISABLED|DESTROYED) state")
_MIN_CALL_SECONDS = 0.01
_LOGIN_FIX = "log in again: gcloud auth application-default login (or check credentials_file: in the profile)"


@dataclass(frozen=True)
class GsmRef:
    """One secret version in Secret Manager (hashable: it is the dedupe key)."""

    project: str
    secret: str
    version: str

    @property
    def name(self) -> str:
        """Full resource name, the form Google's API and error messages use."""
        return f"projects/{self.project}/secrets/{self.secret}/versions/{self.version}"

    @property
    def secret_path(self) -> str:
        """The secret (not the version): where IAM bindings are granted."""
        return f"projects/{self.project}/secrets/{self.secret}"

    @property
    def pinned(self) -> bool:
        """False for ``latest``, whose value can change between two renders."""
        return self.version != "latest"


@dataclass(frozen=True)
class GsmOptions:
    """How to reach Secret Manager and how long to try.  Frozen so runs can group refs by it."""

    credentials_file: str | None = None  # key / external-account JSON; None = Application Default Credentials
    endpoint: str | None = None  # e.g. "secretmanager.europe-west1.rep.googleapis.com" or a fake's http://127.0.0.1:PORT
    transport: str = "grpc"  # "grpc" | "rest"
    timeout_total: float = 30.0  # seconds for the whole fetch_secrets() call, retries included
    attempts: int = 4  # per secret version, first try included
    concurrency: int = 16  # distinct secrets fetched at once
    anonymous: bool = False  # no credentials at all: only for local fakes/emulators
    call_timeout: float = 10.0  # cap for one RPC; never more than what is left of timeout_total
    backoff_initial: float = 0.5  # first retry waits 0.25-0.5 s, doubling up to backoff_max
    backoff_max: float = 5.0


def parse_gsm_ref(spec: str | Mapping[str, Any]) -> GsmRef:
    """A :class:`GsmRef` from ``projects/P/secrets/S/versions/V`` or ``{project, secret[, version]}``.

    ``{"name": "projects/..."}`` is accepted too.  Version defaults to ``latest``;
    integers are accepted (YAML ``version: 3``).  Raises ValueError with a message
    that says what to write; the caller turns it into a located Problem.
    """
    if isinstance(spec, str):
        return _parse_name(spec)
    if not isinstance(spec, Mapping):
        raise ValueError(f"a Secret Manager reference is a resource name or a mapping, not {type(spec).__name__}")
    if "name" in spec:
        if any(k in spec for k in ("project", "secret", "version")):
            raise ValueError("give either name: or project/secret/version, not both")
        return _parse_name(spec["name"])
    project, secret, version = spec.get("project"), spec.get("secret"), spec.get("version", "latest")
    if project is None or secret is None:
        raise ValueError("a Secret Manager reference needs project and secret (version defaults to latest)")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    return _checked(project, secret, version)


def _parse_name(name: object) -> GsmRef:
    match = _NAME_RE.match(name) if isinstance(name, str) else None
    if not match:
        raise ValueError(
            f"{name!r} is not a secret version resource name; write projects/PROJECT/secrets/SECRET/versions/3 "
            "(or .../versions/latest)"
        )
    return _checked(*match.groups())


def _checked(project: object, secret: object, version: object) -> GsmRef:
    if not isinstance(project, str) or not _PROJECT_RE.match(project):
        raise ValueError(f"{project!r} is not a Google Cloud project id or number (e.g. my-project-123)")
    if not isinstance(secret, str) or not _SECRET_RE.match(secret):
        raise ValueError(f"{secret!r} is not a Secret Manager secret id (letters, digits, '-' and '_', up to 255)")
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise ValueError(f"{version!r} is not a secret version; write a version number such as 3, or latest")
    return GsmRef(project, secret, version)


def validate_options(options: GsmOptions) -> list[str]:
    """Problems with ``options`` (empty = fine); callable at profile-load time for early, located errors."""
    problems = []
    if options.transport not in TRANSPORTS:
        problems.append(f"transport must be grpc or rest, not {options.transport!r}")
    if options.attempts < 1:
        problems.append("attempts must be at least 1")
    if options.timeout_total <= 0 or options.call_timeout <= 0:
        problems.append("timeouts must be positive")
    if options.concurrency < 1:
        problems.append("concurrency must be at least 1")
    if options.anonymous and options.credentials_file:
        problems.append("anonymous and credentials_file exclude each other")
    if options.anonymous and not options.endpoint:
        problems.append("anonymous access only makes sense with an endpoint (a local fake or emulator)")
    if (options.endpoint or "").startswith("http://") and not options.anonymous:
        problems.append(
            f"endpoint {options.endpoint} is plain http: regauth will not send Google credentials unencrypted; "
            "use an https:// endpoint (or anonymous access for a local fake)"
        )
    return problems


# ---------------------------------------------------------------------- fetching
def fetch_secrets(refs: Iterable[GsmRef], options: GsmOptions | None = None) -> dict[GsmRef, SecretValue]:
    """Fetch every distinct ref once, concurrently; all-or-nothing.

    Returns a value for every ref given.  Raises :class:`SecretUnavailable` naming
    every ref that failed (each with its fix), after letting the others finish, so
    one run shows all problems.  Raises ValueError for unusable ``options``.
    """
    options = options or GsmOptions()
    problems = validate_options(options)
    if problems:
        raise ValueError("; ".join(problems))
    distinct = list(dict.fromkeys(refs))
    if not distinct:
        return {}
    deadline = time.monotonic() + options.timeout_total
    client, identity = _make_client(options, deadline)
    try:
        results = _fetch_all(client, distinct, options, deadline, identity)
    finally:
        client.transport.close()
    failures = [r for r in results.values() if isinstance(r, SecretUnavailable)]
    if failures:
        raise _combined(failures)
    return {ref: value for ref, value in results.items() if isinstance(value, SecretValue)}


def _fetch_all(
    client: SecretManagerServiceClient, refs: list[GsmRef], options: GsmOptions, deadline: float, identity: str | None
) -> dict[GsmRef, SecretValue | SecretUnavailable]:
    """Run :func:`_fetch_one` for each ref on a pool; failures are returned, not raised."""
    workers = min(options.concurrency, len(refs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="regauth-gsm") as pool:
        futures = {ref: pool.submit(_fetch_one, client, ref, options, deadline, identity) for ref in refs}
        results: dict[GsmRef, SecretValue | SecretUnavailable] = {}
        for ref, future in futures.items():
            try:
                results[ref] = future.result()
            except SecretUnavailable as failure:
                results[ref] = failure
    return results


@dataclass
class _Failure:
    """One classified attempt failure."""

    error: SecretUnavailable
    transient: bool
    status: str  # short label for logs and the give-up message, e.g. UNAVAILABLE
    exc: BaseException | None = None  # what was raised, for exception chaining


class _Corrupted(Exception):
    """CRC32C of the received payload does not match the server's; carries no data."""


def _fetch_one(
    client: SecretManagerServiceClient, ref: GsmRef, options: GsmOptions, deadline: float, identity: str | None
) -> SecretValue:
    """Access one version with bounded retries; raises SecretUnavailable."""
    started = time.monotonic()
    last: _Failure | None = None
    tried = 0
    for attempt in range(1, options.attempts + 1):
        remaining = deadline - time.monotonic()
        if remaining < _MIN_CALL_SECONDS:  # a call this short cannot succeed; stop at the bound
            break
        tried = attempt
        try:
            response = client.access_secret_version(
                request={"name": ref.name}, retry=None, timeout=min(options.call_timeout, remaining)
            )
            value = _verified(response, ref)
            log.info("Secret Manager: read %s (attempt %d of %d)", ref.name, attempt, options.attempts)
            return value
        except Exception as exc:  # classified below; unknown errors re-raised
            last = _classify(exc, ref, identity)
            last.exc = exc
            if not last.transient:
                raise last.error from exc
        if attempt == options.attempts:
            break
        delay = _backoff(attempt, options)
        if time.monotonic() + delay >= deadline:
            break
        # Visible without -v: a render that waits on retries must say why it waits.
        log.warning("Secret Manager: %s reading %s (attempt %d of %d failed); retrying in %.1f s",
                    last.status, ref.name, attempt, options.attempts, delay)
        time.sleep(delay)
    raise _gave_up(ref, last, tried, time.monotonic() - started, options) from (last.exc if last else None)


def _backoff(attempt: int, options: GsmOptions) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, so retries spread out."""
    ceiling = min(options.backoff_max, options.backoff_initial * (2 ** (attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _verified(response: Any, ref: GsmRef) -> SecretValue:
    """Check CRC32C (the client does not) and wrap the payload."""
    import google_crc32c

    payload = response.payload
    data = bytes(payload.data)
    if "data_crc32c" in payload:
        if google_crc32c.value(data) != payload.data_crc32c:
            raise _Corrupted()
    else:  # Google always sends it; an emulator or proxy might not
        log.debug("no data_crc32c for %s; payload not verified", ref.name)
    return SecretValue(data, _origin(ref, response.name))


def _origin(ref: GsmRef, resolved: str) -> str:
    """Where the value came from, with the version ``latest`` resolved to (for golden-image notes)."""
    version = resolved.rsplit("/", 1)[-1] if resolved else ""
    if not ref.pinned and version.isdigit():
        return f"Secret Manager {ref.name} (version {version})"
    return f"Secret Manager {ref.name}"


# ------------------------------------------------------------- error mapping
def _classify(exc: BaseException, ref: GsmRef, identity: str | None) -> _Failure:
    """Turn any exception from one access into a transient or permanent SecretUnavailable."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as aexc

    if isinstance(exc, _Corrupted):
        return _Failure(SecretUnavailable(
            f"the payload of {ref.name} was corrupted in transit (CRC32C mismatch)",
            "retrying usually helps; if it keeps happening, look for a proxy or TLS-inspecting "
            "middlebox between this machine and Secret Manager", code=R.GSM_CORRUPTED.code,
        ), True, "CRC32C mismatch")
    if isinstance(exc, gexc.RetryError):  # only if someone passes a retry again; classify what it wraps
        if exc.cause is not None:
            return _classify(exc.cause, ref, identity)
        return _transient(ref, "RETRY_ERROR", _first_arg(exc))
    if isinstance(exc, gexc.GoogleAPICallError):
        return _classify_api_error(exc, ref, identity)
    if isinstance(exc, aexc.DefaultCredentialsError):
        return _Failure(_no_credentials(exc), False, "NO_CREDENTIALS")
    if isinstance(exc, aexc.RefreshError):
        return _refresh_failure(exc, ref)
    if isinstance(exc, aexc.TransportError):
        return _transient(ref, "TRANSPORT_ERROR", _first_arg(exc))
    if _is_requests_network_error(exc):
        return _transient(ref, "UNAVAILABLE", _network_detail(exc))
    raise exc


def _classify_api_error(exc: Any, ref: GsmRef, identity: str | None) -> _Failure:
    from google.api_core import exceptions as gexc

    message = _server_message(exc)
    state = _STATE_RE.search(message)
    if state or _rest_status(exc) == "FAILED_PRECONDITION" or isinstance(exc, gexc.FailedPrecondition):
        return _Failure(_not_enabled(ref, state, message), False, "FAILED_PRECONDITION")
    if isinstance(exc, gexc.NotFound):
        return _Failure(SecretUnavailable(
            f"Secret Manager has no {ref.name} ({message})",
            f"check the project, secret id and version: gcloud secrets versions list {ref.secret} "
            f"--project={ref.project}", code=R.GSM_NOT_FOUND.code,
        ), False, "NOT_FOUND")
    if isinstance(exc, gexc.Forbidden):  # gRPC PermissionDenied is a subclass; REST raises Forbidden
        return _Failure(_permission_denied(ref, identity, message, exc), False, "PERMISSION_DENIED")
    if isinstance(exc, gexc.Unauthorized):
        return _Failure(SecretUnavailable(
            f"Secret Manager rejected the credentials used to read {ref.name} ({message})",
            "refresh them: gcloud auth application-default login, or check credentials_file: in the profile", code=R.GSM_UNAUTHENTICATED.code,
        ), False, "UNAUTHENTICATED")
    if isinstance(exc, (gexc.ServiceUnavailable, gexc.GatewayTimeout, gexc.TooManyRequests)):
        status = "RESOURCE_EXHAUSTED" if isinstance(exc, gexc.TooManyRequests) else (
            "DEADLINE_EXCEEDED" if isinstance(exc, gexc.GatewayTimeout) else "UNAVAILABLE")
        return _transient(ref, status, message)
    return _Failure(SecretUnavailable(
        f"Secret Manager refused to return {ref.name}: {type(exc).__name__}: {message}",
        "see the message above; run with the same credentials: "
        f"gcloud secrets versions access {ref.version} --secret={ref.secret} --project={ref.project} >/dev/null", code=R.GSM_REFUSED.code,
    ), False, type(exc).__name__)


def _transient(ref: GsmRef, status: str, detail: str) -> _Failure:
    return _Failure(SecretUnavailable(f"could not read {ref.name}: {status}: {detail}", "", code=R.GSM_UNAVAILABLE.code), True, status)


def _not_enabled(ref: GsmRef, state: re.Match[str] | None, message: str) -> SecretUnavailable:
    """FAILED_PRECONDITION: the version (or what ``latest`` points to) is disabled or destroyed."""
    which = state.group(1) if state else ref.name
    condition = state.group(2).lower() if state else "not enabled"
    number = which.rsplit("/", 1)[-1]
    cause = f"{which} is {condition}, so it cannot be read"
    if not ref.pinned:
        cause += " (latest always means the newest version, even when that one is disabled)"
    if condition == "destroyed":
        fix = "pin another version (a destroyed version never comes back), or add a new version"
    else:
        fix = (f"enable it: gcloud secrets versions enable {number} --secret={ref.secret} --project={ref.project}\n"
               "or pin another, enabled version in the profile")
    return SecretUnavailable(cause if state else f"{cause} ({message})", fix, code=R.GSM_DISABLED.code)


def _permission_denied(ref: GsmRef, identity: str | None, message: str, exc: Any) -> SecretUnavailable:
    """403: which role, on which secret, for whom; or the API is not enabled."""
    if "has not been used in project" in message or getattr(exc, "reason", None) == "SERVICE_DISABLED":
        return SecretUnavailable(
            f"the Secret Manager API is not enabled for the project used to read {ref.name} ({message})",
            f"enable it: gcloud services enable secretmanager.googleapis.com --project={ref.project}", code=R.GSM_PERMISSION.code,
        )
    who = identity or "the identity regauth runs as"
    member = _member(identity) if identity else "serviceAccount:NAME@PROJECT.iam.gserviceaccount.com"
    fix = (
        f"grant {ACCESSOR_ROLE} on {ref.secret_path} to {who}:\n"
        f"gcloud secrets add-iam-policy-binding {ref.secret} --project={ref.project} "
        f"--member={member} --role={ACCESSOR_ROLE}\n"
        "Secret Manager also says 'permission denied' for a secret that does not exist: check the name."
    )
    if not identity:
        fix += "\nTo see which identity that is: gcloud auth list, or the client_email of credentials_file."
    cause = f"permission denied reading {ref.name}" + (f" as {identity}" if identity else "")
    return SecretUnavailable(cause, fix, code=R.GSM_PERMISSION.code)


def _member(identity: str) -> str:
    return ("serviceAccount:" if identity.endswith(".gserviceaccount.com") else "user:") + identity


def _no_credentials(exc: BaseException) -> SecretUnavailable:
    return SecretUnavailable(
        f"no Google credentials found to read Secret Manager ({_first_arg(exc)})",
        "on a workstation: gcloud auth application-default login\n"
        "in CI: set GOOGLE_APPLICATION_CREDENTIALS, or credentials_file: /path/key.json on the secret in the profile",
        code=R.GSM_NO_CREDENTIALS.code,
    )


def _refresh_failure(exc: Any, ref: GsmRef) -> _Failure:
    if getattr(exc, "retryable", False):
        return _transient(ref, "TOKEN_REFRESH", _first_arg(exc))
    return _Failure(SecretUnavailable(
        f"could not get an access token to read {ref.name}: {_first_arg(exc)}", _LOGIN_FIX, code=R.GSM_TOKEN.code,
    ), False, "REFRESH_ERROR")


def _gave_up(ref: GsmRef, last: _Failure | None, tried: int, elapsed: float, options: GsmOptions) -> SecretUnavailable:
    """After the retry budget: say how hard we tried and what failed last."""
    if last is None:  # deadline spent before the first attempt (queued behind others)
        return SecretUnavailable(
            f"no time left to read {ref.name} within {options.timeout_total:g} s",
            "allow more time (timeout_total) or fetch fewer secrets per run", code=R.GSM_UNAVAILABLE.code,
        )
    cause = f"{last.error.cause}; gave up after {tried} attempt(s) in {elapsed:.1f} s"
    if last.error.fix:
        return SecretUnavailable(cause, last.error.fix, code=last.error.code)
    if last.status == "RESOURCE_EXHAUSTED":
        fix = "the Secret Manager access quota is exhausted: retry later, lower concurrency, or ask for more quota"
    else:
        fix = ("Secret Manager or the network to it kept failing: retry later, check "
               "https://status.cloud.google.com and this machine's route to secretmanager.googleapis.com, "
               "or allow more time (timeout_total / attempts)")
    return SecretUnavailable(cause, fix, code=last.error.code or R.GSM_UNAVAILABLE.code)


def _combined(failures: list[SecretUnavailable]) -> SecretUnavailable:
    """One error for the run, listing every secret that failed with its own fix."""
    if len(failures) == 1:
        return failures[0]
    items = []
    for failure in failures:
        item = f"- {failure.cause}"
        if failure.fix:
            item += "\n  fix: " + failure.fix.replace("\n", "\n       ")
        items.append(item)
    listing = "\n".join(items)
    return SecretUnavailable(f"{len(failures)} Secret Manager secrets could not be read:\n{listing}",
                             "apply the fix given under each secret above", code=R.GSM_MANY.code)


def _server_message(exc: Any) -> str:
    """Google's message without the REST client's 'GET url: ' prefix."""
    message = str(getattr(exc, "message", "") or exc)
    if message.startswith(("GET ", "POST ")) and ": " in message:
        message = message.split(": ", 1)[1]
    return message


def _rest_status(exc: Any) -> str | None:
    """REST errors: canonical status from the JSON body (api_core maps every 400 to BadRequest)."""
    response = getattr(exc, "response", None)
    if response is None or not hasattr(response, "json"):
        return None
    try:
        return response.json()["error"]["status"]
    except Exception:  # body not JSON or no status: not a REST Google error
        return None


def _first_arg(exc: BaseException) -> str:
    """google-auth errors often carry (message, cause); show the message only."""
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return type(exc).__name__


def _network_detail(exc: BaseException) -> str:
    """A short reason for a raw requests error (its str() is a long urllib3 repr)."""
    import requests

    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no reply within the per-call timeout"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return f"cannot connect: {errno.group(1).strip()}" if errno else f"cannot connect ({type(exc).__name__})"


def _is_requests_network_error(exc: BaseException) -> bool:
    """REST transport: connection refused / reset / timeouts arrive as raw requests errors."""
    try:
        import requests
    except ImportError:  # pragma: no cover - the REST transport needs requests
        return False
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout))


# ----------------------------------------------------------------- the client
def _make_client(options: GsmOptions, deadline: float) -> tuple[SecretManagerServiceClient, str | None]:
    """One client for the run, plus the identity it acts as (for permission messages)."""
    credentials, identity = _credentials(options, deadline)
    from google.cloud.secretmanager import SecretManagerServiceClient

    if options.transport == "grpc" and options.anonymous:
        import grpc
        from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
            SecretManagerServiceGrpcTransport,
        )

        target = re.sub(r"^http://", "", options.endpoint or "")  # anonymous gRPC = plaintext, for fakes
        channel = grpc.insecure_channel(target)
        return SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel)), identity
    client_options = {"api_endpoint": options.endpoint} if options.endpoint else None
    client = SecretManagerServiceClient(
        credentials=credentials, transport=options.transport, client_options=client_options
    )
    if options.transport == "rest":
        _widen_rest_pool(client, options.concurrency)
    return client, identity


def _credentials(options: GsmOptions, deadline: float) -> tuple[Any, str | None]:
    """Anonymous, a key file, or ADC; refreshed once up front so N threads do not each refresh.

    Refreshing here also turns 'no network to the token endpoint' or 'expired login'
    into one clear error instead of one per secret.
    """
    import google.auth
    from google.auth import exceptions as aexc
    from google.auth.credentials import AnonymousCredentials

    if options.anonymous:
        return AnonymousCredentials(), None
    try:
        with warnings.catch_warnings():  # the end-user-credentials quota-project nag
            warnings.filterwarnings("ignore", message=".*end user credentials.*")
            if options.credentials_file:
                credentials = _load_credentials_file(options.credentials_file)
            else:
                credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except aexc.DefaultCredentialsError as exc:
        raise _no_credentials(exc) from exc
    _refresh(credentials, deadline)
    return credentials, _identity_of(credentials)


_CREDENTIAL_TYPES = ("service_account", "authorized_user", "external_account")


def _load_credentials_file(path: str) -> Any:
    """Load ``credentials_file`` with the loader for its declared type.

    google-auth deprecates the generic ``load_credentials_from_file`` because it
    accepts any credential type, including ones that run commands; we accept the
    three types a build machine uses and say what to do otherwise.
    """
    import json

    def unusable(why: str, fix: str = "") -> SecretUnavailable:
        return SecretUnavailable(
            f"cannot use credentials_file {path}: {why}",
            fix or "point credentials_file: at a service-account key, an authorized-user file or a "
            "workload-identity-federation (external_account) configuration, or remove it to use "
            "Application Default Credentials", code=R.GSM_CREDENTIALS_FILE.code,
        )

    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except OSError as exc:
        raise unusable(exc.strerror or type(exc).__name__) from None
    except ValueError:  # JSON or UTF-8 error; its text could quote the file, so say nothing more
        raise unusable("it is not a JSON credentials file") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind not in _CREDENTIAL_TYPES:
        raise unusable(
            f"its type is {kind!r}, not one of {', '.join(_CREDENTIAL_TYPES)}",
            "for other credential types set GOOGLE_APPLICATION_CREDENTIALS to the file and remove "
            "credentials_file: (Application Default Credentials then load it)",
        )
    try:
        return _credentials_from_info(kind, info)
    except (ValueError, KeyError, TypeError) as exc:  # messages name fields, never key material
        detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else type(exc).__name__
        raise unusable(f"not a usable {kind} file ({detail})") from None


def _credentials_from_info(kind: str, info: dict[str, Any]) -> Any:
    scopes = [CLOUD_PLATFORM_SCOPE]
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(info, scopes=scopes)
    if kind == "authorized_user":
        from google.oauth2 import credentials as user_credentials

        return user_credentials.Credentials.from_authorized_user_info(info, scopes=scopes)
    source = info.get("credential_source") or {}
    if isinstance(source, dict) and "executable" in source:
        from google.auth import (
            pluggable as module,  # google-auth itself requires an opt-in env var
        )
    elif isinstance(source, dict) and str(source.get("environment_id", "")).startswith("aws"):
        from google.auth import aws as module  # type: ignore[no-redef]
    else:
        from google.auth import identity_pool as module  # type: ignore[no-redef]
    return module.Credentials.from_info(info, scopes=scopes)


def _refresh(credentials: Any, deadline: float) -> None:
    """Get the first token within the deadline.

    A rejected login fails the run here, once.  A transient problem (token endpoint
    unreachable) is only logged: the first access refreshes again, inside the
    per-secret retry loop.
    """
    import functools

    import google.auth.transport.requests
    from google.auth import exceptions as aexc

    if getattr(credentials, "valid", False):
        return
    remaining = max(0.1, deadline - time.monotonic())
    request = functools.partial(google.auth.transport.requests.Request(), timeout=min(remaining, 30.0))
    try:
        credentials.refresh(request)
    except aexc.RefreshError as exc:
        if getattr(exc, "retryable", False):
            log.info("token refresh failed (%s); will retry with the first access", _first_arg(exc))
            return
        raise SecretUnavailable(f"could not get a Google access token: {_first_arg(exc)}", _LOGIN_FIX, code=R.GSM_TOKEN.code) from exc
    except aexc.TransportError as exc:
        log.info("token endpoint unreachable (%s); will retry with the first access", _first_arg(exc))


def _identity_of(credentials: Any) -> str | None:
    """The e-mail IAM knows this caller by, when the credentials say (service accounts, users)."""
    for attr in ("service_account_email", "signer_email", "account"):
        value = getattr(credentials, attr, None)
        if isinstance(value, str) and "@" in value:
            return value
    return None


def _widen_rest_pool(client: Any, size: int) -> None:
    """requests keeps 10 connections per host; with more workers it logs 'pool is full' and reconnects."""
    try:
        import requests
        from requests.adapters import HTTPAdapter
    except ImportError:  # pragma: no cover
        return
    session = getattr(client.transport, "_session", None)
    if isinstance(session, requests.Session) and size > 10:
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=size)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
