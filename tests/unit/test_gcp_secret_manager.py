"""The build-time Secret Manager source, driven through the real client against the fake.

Each behaviour runs over gRPC and REST.  Retry tests count attempts at the fake
instead of timing them; backoff is shrunk to milliseconds so the whole file stays fast.
Nothing contacts Google or the metadata server: the ``fake_gsm`` fixture blocks
non-loopback connects and google.auth's GCE probe.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("NO_GCE_CHECK", "true")  # before any google.auth import (read at import)

import google_crc32c
import pytest

from generator.errors import SecretUnavailable
from generator.secrets import gcp_secret_manager as gsm
from generator.secrets.gcp_secret_manager import (
    GsmOptions,
    GsmRef,
    fetch_secrets,
    parse_gsm_ref,
)
from tests.support import fake_gsm as fg
from tests.support.fake_gsm import fake_gsm  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = b"hunter2-s3cr3t-PAYLOAD"  # must never appear in any message or log
P = "regauth-test"


@pytest.fixture(params=["grpc", "rest"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


def options(fake: fg.FakeSecretManager, transport: str, **overrides: object) -> GsmOptions:
    """Anonymous access to the fake, millisecond backoff."""
    endpoint = fake.grpc_target if transport == "grpc" else fake.rest_endpoint
    base: dict[str, object] = dict(endpoint=endpoint, transport=transport, anonymous=True,
                                   backoff_initial=0.002, backoff_max=0.01, timeout_total=5.0, call_timeout=2.0)
    base.update(overrides)
    return GsmOptions(**base)  # type: ignore[arg-type]


def ref(secret: str, version: str = "1") -> GsmRef:
    return GsmRef(P, secret, version)


def failure(fake: fg.FakeSecretManager, transport: str, refs: list[GsmRef], **kw: object) -> SecretUnavailable:
    with pytest.raises(SecretUnavailable) as info:
        fetch_secrets(refs, options(fake, transport, **kw))
    assert_no_payload(info.value)
    return info.value


def assert_no_payload(err: BaseException) -> None:
    text = err.render() if isinstance(err, SecretUnavailable) else str(err)
    text += repr(err)
    assert PAYLOAD.decode() not in text
    assert str(google_crc32c.value(PAYLOAD)) not in text


# --------------------------------------------------------------------- success
def test_pinned_and_latest(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "reg", b"v1", PAYLOAD)
    got = fetch_secrets([ref("reg", "1"), ref("reg", "latest")], options(fake_gsm, transport))
    assert got[ref("reg", "1")].reveal() == b"v1"
    latest = got[ref("reg", "latest")]
    assert latest.reveal() == PAYLOAD
    assert "(version 2)" in latest.origin  # what latest resolved to, for golden-image notes
    assert PAYLOAD.decode() not in repr(latest) + str(got)
    assert {c.transport for c in fake_gsm.calls} == {transport}


def test_empty_input_needs_no_client() -> None:
    assert fetch_secrets([], GsmOptions(endpoint="http://127.0.0.1:9", anonymous=True)) == {}


def test_missing_crc_is_accepted(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "s", b"x")
    fake_gsm.inject(P, "s", fg.NO_CRC)
    assert fetch_secrets([ref("s")], options(fake_gsm, transport))[ref("s")].reveal() == b"x"


# ------------------------------------------------------------ permanent errors
def test_not_found_names_the_version(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "s", PAYLOAD)
    err = failure(fake_gsm, transport, [ref("s", "9")])
    assert f"projects/{P}/secrets/s/versions/9" in err.cause
    assert "gcloud secrets versions list s" in err.fix
    assert fake_gsm.fetch_count() == 1  # not retried


def test_permission_denied_says_role_and_secret(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "s", PAYLOAD)
    fake_gsm.inject(P, "s", fg.PERMISSION_DENIED)
    err = failure(fake_gsm, transport, [ref("s")])
    assert "permission denied" in err.cause
    assert f"roles/secretmanager.secretAccessor on projects/{P}/secrets/s" in err.fix
    assert "gcloud secrets add-iam-policy-binding s" in err.fix
    assert fake_gsm.fetch_count() == 1


def test_permission_denied_names_the_identity_when_known(tmp_path: Path) -> None:
    """The identity comes from the credentials (here a generated service-account key file)."""
    key_file = _service_account_key(tmp_path, "builder@ci-proj.iam.gserviceaccount.com")
    from google.api_core import exceptions as gexc

    identity = gsm._identity_of(gsm._load_credentials_file(str(key_file)))
    assert identity == "builder@ci-proj.iam.gserviceaccount.com"
    err = gsm._classify(gexc.PermissionDenied("Permission 'secretmanager.versions.access' denied"), ref("s"), identity)
    assert not err.transient
    assert err.error.cause.endswith(f"as {identity}")
    assert f"--member=serviceAccount:{identity}" in err.error.fix


@pytest.mark.parametrize("state, words", [(fg.DISABLED, "enable it"), (fg.DESTROYED, "destroyed version never")])
def test_disabled_or_destroyed_version(fake_gsm, transport, state, words) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "s", PAYLOAD, b"new")
    fake_gsm.set_state(P, "s", 1, state)
    err = failure(fake_gsm, transport, [ref("s", "1")])
    assert f"projects/{P}/secrets/s/versions/1 is {state.lower()}" in err.cause
    assert words in err.fix
    assert fake_gsm.fetch_count() == 1


def test_latest_pointing_at_disabled_version(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "s", b"old", PAYLOAD)
    fake_gsm.set_state(P, "s", 2, fg.DISABLED)
    err = failure(fake_gsm, transport, [ref("s", "latest")])
    assert "versions/2 is disabled" in err.cause and "latest always means the newest" in err.cause
    assert "gcloud secrets versions enable 2 --secret=s" in err.fix


def test_all_failures_reported_together(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "ok", b"x")
    fake_gsm.inject(P, "denied", fg.PERMISSION_DENIED)
    err = failure(fake_gsm, transport, [ref("ok"), ref("missing"), ref("denied")])
    assert err.cause.startswith("2 Secret Manager secrets could not be read")
    assert "secrets/missing/versions/1" in err.cause and "secrets/denied/versions/1" in err.cause
    assert "roles/secretmanager.secretAccessor" in err.cause  # each item keeps its fix


# -------------------------------------------------------------------- retries
def test_unavailable_then_success(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "s", PAYLOAD)
    fake_gsm.inject(P, "s", fg.UNAVAILABLE, times=2)
    assert fetch_secrets([ref("s")], options(fake_gsm, transport))[ref("s")].reveal() == PAYLOAD
    assert [c.status for c in fake_gsm.calls] == ["UNAVAILABLE", "UNAVAILABLE", "OK"]


def test_unavailable_forever_fails_after_the_attempt_budget(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "s", PAYLOAD)
    fake_gsm.inject(P, "s", fg.UNAVAILABLE)
    err = failure(fake_gsm, transport, [ref("s")], attempts=3)
    assert fake_gsm.fetch_count() == 3
    assert "UNAVAILABLE" in err.cause and "gave up after 3 attempt(s)" in err.cause
    assert "retry later" in err.fix


def test_total_deadline_caps_attempts(fake_gsm, transport) -> None:  # noqa: F811
    """10 attempts allowed, but each call takes 0.2 s and the budget is 0.3 s: at most 2 calls."""
    fake_gsm.add_secret(P, "s", PAYLOAD)
    fake_gsm.set_latency(P, "s", 0.2)
    fake_gsm.inject(P, "s", fg.UNAVAILABLE)
    err = failure(fake_gsm, transport, [ref("s")], attempts=10, timeout_total=0.3)
    assert 1 <= fake_gsm.fetch_count() <= 2
    assert "gave up after" in err.cause


def test_per_call_timeout_is_retried_as_deadline(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "s", PAYLOAD)
    fake_gsm.set_latency(P, "s", 0.3)
    err = failure(fake_gsm, transport, [ref("s")], attempts=2, call_timeout=0.05)
    assert fake_gsm.fetch_count() == 2
    assert "DEADLINE_EXCEEDED" in err.cause or "per-call timeout" in err.cause


def test_server_down_is_transient(transport, monkeypatch) -> None:
    fg.keep_google_auth_off_the_network(monkeypatch)
    port = fg.unused_port()
    endpoint = f"127.0.0.1:{port}" if transport == "grpc" else f"http://127.0.0.1:{port}"
    opts = GsmOptions(endpoint=endpoint, transport=transport, anonymous=True, attempts=2, backoff_initial=0.002)
    with pytest.raises(SecretUnavailable) as info:
        fetch_secrets([ref("s")], opts)
    assert "gave up after 2 attempt(s)" in info.value.cause
    assert "connect" in info.value.cause.lower()


def test_429_retried_then_quota_advice(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "s", PAYLOAD)
    fake_gsm.inject(P, "s", fg.RESOURCE_EXHAUSTED, times=1)
    assert fetch_secrets([ref("s")], options(fake_gsm, transport))[ref("s")].reveal() == PAYLOAD
    assert fake_gsm.fetch_count() == 2
    fake_gsm.clear_calls()
    fake_gsm.inject(P, "s", fg.RESOURCE_EXHAUSTED)
    err = failure(fake_gsm, transport, [ref("s")], attempts=2)
    assert fake_gsm.fetch_count() == 2
    assert "RESOURCE_EXHAUSTED" in err.cause and "quota" in err.fix


def test_crc_mismatch_retried_then_reported(fake_gsm, transport, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.DEBUG, logger="generator")
    fake_gsm.add_secret(P, "s", PAYLOAD)
    fake_gsm.inject(P, "s", fg.BAD_CRC, times=1)
    assert fetch_secrets([ref("s")], options(fake_gsm, transport))[ref("s")].reveal() == PAYLOAD
    assert fake_gsm.fetch_count() == 2
    fake_gsm.inject(P, "s", fg.BAD_CRC)
    err = failure(fake_gsm, transport, [ref("s")], attempts=3)
    assert "corrupted in transit" in err.cause and "CRC32C" in err.cause
    assert fake_gsm.fetch_count() == 2 + 3
    assert PAYLOAD.decode() not in caplog.text and str(google_crc32c.value(PAYLOAD)) not in caplog.text


# ------------------------------------------------------ dedupe and concurrency
def test_dedupe_fetches_each_secret_once(fake_gsm, transport) -> None:  # noqa: F811
    fake_gsm.add_secret(P, "a", b"A")
    fake_gsm.add_secret(P, "b", b"B")
    refs = [ref("a"), ref("b"), parse_gsm_ref(f"projects/{P}/secrets/a/versions/1"), ref("a"),
            parse_gsm_ref({"project": P, "secret": "b", "version": 1})]
    got = fetch_secrets(refs, options(fake_gsm, transport))
    assert fake_gsm.fetch_count() == 2
    assert {r: v.reveal() for r, v in got.items()} == {ref("a"): b"A", ref("b"): b"B"}


def test_distinct_secrets_fetched_concurrently(fake_gsm, transport, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.WARNING)
    fake_gsm.latency = 0.05
    for i in range(40):
        fake_gsm.add_secret(P, f"s{i}", f"v{i}".encode())
    got = fetch_secrets([ref(f"s{i}") for i in range(40)], options(fake_gsm, transport))
    assert len(got) == 40 and got[ref("s39")].reveal() == b"v39"
    assert fake_gsm.fetch_count() == 40
    assert fake_gsm.max_in_flight > 1
    assert "pool is full" not in caplog.text  # REST: requests' pool widened to the worker count


# ------------------------------------------------------------------ credentials
def test_no_credentials_says_how_to_log_in(monkeypatch, tmp_path) -> None:
    fg.keep_google_auth_off_the_network(monkeypatch)
    fg.forbid_remote_connections(monkeypatch)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud ADC file there
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(SecretUnavailable) as info:
        fetch_secrets([ref("s")], GsmOptions())
    assert "no Google credentials" in info.value.cause
    assert "gcloud auth application-default login" in info.value.fix and "credentials_file" in info.value.fix


@pytest.mark.parametrize("content, words", [
    (None, "No such file"),
    ("not json " + PAYLOAD.decode(), "not a JSON credentials file"),
    ('{"type": "impersonated_service_account"}', "GOOGLE_APPLICATION_CREDENTIALS"),
    ('{"type": "service_account", "private_key": "' + PAYLOAD.decode() + '"}', "not a usable service_account"),
])
def test_bad_credentials_file_is_named(monkeypatch, tmp_path, content, words) -> None:
    fg.keep_google_auth_off_the_network(monkeypatch)
    fg.forbid_remote_connections(monkeypatch)
    path = tmp_path / "creds.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SecretUnavailable) as info:
        fetch_secrets([ref("s")], GsmOptions(credentials_file=str(path)))
    assert str(path) in info.value.cause
    assert words in info.value.render()
    assert_no_payload(info.value)


def test_rejected_login_fails_once_before_fetching(monkeypatch) -> None:
    """A non-retryable token refresh failure stops the run with the login fix, without N retries."""
    fg.keep_google_auth_off_the_network(monkeypatch)
    import google.auth
    from google.auth import credentials as gcreds
    from google.auth import exceptions as aexc

    class Expired(gcreds.Credentials):
        refreshes = 0

        def refresh(self, request: object) -> None:
            Expired.refreshes += 1
            raise aexc.RefreshError("invalid_grant: Token has been expired or revoked.")

    monkeypatch.setattr(google.auth, "default", lambda **kw: (Expired(), "p"))
    with pytest.raises(SecretUnavailable) as info:
        fetch_secrets([ref("a"), ref("b")], GsmOptions())
    assert "expired or revoked" in info.value.cause and "application-default login" in info.value.fix
    assert Expired.refreshes == 1


# ------------------------------------------------------- parsing and options
@pytest.mark.parametrize("spec, expected", [
    ("projects/my-proj/secrets/gar-key/versions/3", GsmRef("my-proj", "gar-key", "3")),
    ("projects/123456/secrets/k/versions/latest", GsmRef("123456", "k", "latest")),
    ({"project": "my-proj", "secret": "k"}, GsmRef("my-proj", "k", "latest")),
    ({"project": "my-proj", "secret": "k", "version": 7}, GsmRef("my-proj", "k", "7")),
    ({"name": "projects/my-proj/secrets/k/versions/2"}, GsmRef("my-proj", "k", "2")),
])
def test_parse_gsm_ref(spec, expected) -> None:
    got = parse_gsm_ref(spec)
    assert got == expected
    assert got.name == f"projects/{expected.project}/secrets/{expected.secret}/versions/{expected.version}"


@pytest.mark.parametrize("spec, words", [
    ("my-proj/k/3", "resource name"),
    ("projects/my-proj/secrets/k/versions/0", "version number"),
    ("projects/my-proj/secrets/k/versions/v1", "version number"),
    ("projects/My_Proj/secrets/k/versions/1", "project id"),
    ("projects/my-proj/secrets/bad.id/versions/1", "secret id"),
    ({"project": "my-proj"}, "needs project and secret"),
    ({"name": "projects/my-proj/secrets/k/versions/1", "version": 2}, "not both"),
    ({"project": "my-proj", "secret": "k", "version": True}, "version number"),
    (42, "resource name or a mapping"),
])
def test_parse_gsm_ref_rejects(spec, words) -> None:
    with pytest.raises(ValueError, match=words):
        parse_gsm_ref(spec)


@pytest.mark.parametrize("opts, words", [
    (GsmOptions(transport="http"), "grpc or rest"),
    (GsmOptions(endpoint="http://127.0.0.1:1"), "plain http"),
    (GsmOptions(anonymous=True), "only makes sense with an endpoint"),
    (GsmOptions(attempts=0), "attempts"),
])
def test_unusable_options_are_value_errors(opts, words) -> None:
    with pytest.raises(ValueError, match=words):
        fetch_secrets([ref("s")], opts)


# -------------------------------------------------------------------- imports
def test_module_imports_no_google_library() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import generator.secrets.gcp_secret_manager"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=True,
    )
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert "generator.secrets.gcp_secret_manager" in imported
    assert not [m for m in imported if m.split(".")[0] in ("google", "grpc", "google_crc32c", "requests")]


# --------------------------------------------------------------------- helpers
def _service_account_key(tmp_path: Path, email: str) -> Path:
    """A syntactically valid service-account key file (freshly generated, never used on the network)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "ci-proj", "private_key_id": "0" * 40, "private_key": pem,
            "client_email": email, "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}
    path = tmp_path / "key.json"
    path.write_text(json.dumps(info))
    return path
