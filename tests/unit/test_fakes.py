"""Prove the fakes against the real clients, so later tests can trust them.

Every Secret Manager call goes through the real ``SecretManagerServiceClient``
(gRPC and REST) with ``retry=None`` and a short ``timeout`` so the client's 60 s
default retry never runs.  The metadata fake is checked with plain urllib (what a
boot script does) and with google-auth's own Compute Engine credentials.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

os.environ.setdefault("NO_GCE_CHECK", "true")  # before any google.auth import (read at import)

import google_crc32c
import grpc
import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from tests.support import fake_gsm as fg
from tests.support import fake_metadata as fm
from tests.support.fake_gsm import fake_gsm  # noqa: F401  (fixture)
from tests.support.fake_metadata import fake_metadata  # noqa: F401  (fixture)

TRANSPORTS = ("grpc", "rest")


def make_client(fake: fg.FakeSecretManager, transport: str) -> secretmanager.SecretManagerServiceClient:
    """The real client wired to the fake, the way FIELD_NOTES section 6 describes."""
    if transport == "grpc":
        channel = grpc.insecure_channel(fake.grpc_target)
        return secretmanager.SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))
    return secretmanager.SecretManagerServiceClient(
        transport="rest",
        client_options={"api_endpoint": fake.rest_endpoint},
        credentials=AnonymousCredentials(),
    )


@pytest.fixture(params=TRANSPORTS)
def client(request: pytest.FixtureRequest, fake_gsm: fg.FakeSecretManager) -> Iterator[secretmanager.SecretManagerServiceClient]:  # noqa: F811
    c = make_client(fake_gsm, request.param)
    c.transport_name = request.param  # type: ignore[attr-defined]  (for assertions below)
    yield c
    c.transport.close()


def access(client: secretmanager.SecretManagerServiceClient, name: str) -> secretmanager.AccessSecretVersionResponse:
    return client.access_secret_version(name=name, retry=None, timeout=2.0)


def status_of(exc: gexc.GoogleAPICallError) -> str:
    """Canonical status for either transport (REST maps 400 to BadRequest; the body says which)."""
    if exc.grpc_status_code is not None and exc.response is not None and hasattr(exc.response, "code"):
        return exc.grpc_status_code.name  # gRPC
    return exc.response.json()["error"]["status"]  # REST: requests.Response


# ------------------------------------------------------------ Secret Manager fake
def test_pinned_and_latest_versions(client, fake_gsm: fg.FakeSecretManager) -> None:  # noqa: F811
    fake_gsm.add_secret("p", "reg", b"first", b"second")
    one = access(client, "projects/p/secrets/reg/versions/1")
    latest = access(client, "projects/p/secrets/reg/versions/latest")
    assert (one.payload.data, one.name) == (b"first", "projects/p/secrets/reg/versions/1")
    assert (latest.payload.data, latest.name) == (b"second", "projects/p/secrets/reg/versions/2")
    assert latest.payload.data_crc32c == google_crc32c.value(b"second")
    assert [(c.version, c.transport, c.status) for c in fake_gsm.calls] == [
        ("1", client.transport_name, "OK"), ("latest", client.transport_name, "OK")]


def test_project_number_in_resolved_name(fake_gsm: fg.FakeSecretManager) -> None:  # noqa: F811
    fake_gsm.project_numbers["p"] = "123"
    fake_gsm.add_secret("p", "reg", b"x")
    c = make_client(fake_gsm, "rest")
    try:
        assert access(c, "projects/p/secrets/reg/versions/latest").name == "projects/123/secrets/reg/versions/1"
    finally:
        c.transport.close()


@pytest.mark.parametrize(
    "setup, name, expected_cls, status, text",
    [
        (lambda f: None, "projects/p/secrets/none/versions/1", gexc.NotFound, "NOT_FOUND",
         "Secret [projects/p/secrets/none] not found or has no versions."),
        (lambda f: f.add_secret("p", "s", b"x"), "projects/p/secrets/s/versions/7", gexc.NotFound, "NOT_FOUND",
         "Secret Version [projects/p/secrets/s/versions/7] not found."),
        (lambda f: f.inject("p", "s", fg.PERMISSION_DENIED), "projects/p/secrets/s/versions/1", gexc.Forbidden,
         "PERMISSION_DENIED", "Permission 'secretmanager.versions.access' denied for resource"),
        (lambda f: f.inject("p", "s", fg.RESOURCE_EXHAUSTED), "projects/p/secrets/s/versions/1",
         gexc.TooManyRequests, "RESOURCE_EXHAUSTED", "Quota exceeded"),
        (lambda f: f.inject("p", "s", fg.UNAVAILABLE), "projects/p/secrets/s/versions/1",
         gexc.ServiceUnavailable, "UNAVAILABLE", "unavailable"),
    ],
    ids=["secret-missing", "version-missing", "permission", "429", "unavailable"],
)
def test_errors_map_to_google_classes(client, fake_gsm, setup, name, expected_cls, status, text) -> None:  # noqa: F811
    setup(fake_gsm)
    with pytest.raises(expected_cls) as info:
        access(client, name)
    assert text in info.value.message
    assert status_of(info.value) == status
    if client.transport_name == "grpc" and status == "PERMISSION_DENIED":
        assert isinstance(info.value, gexc.PermissionDenied)  # REST gives the parent, Forbidden


@pytest.mark.parametrize("state", [fg.DISABLED, fg.DESTROYED])
def test_disabled_and_destroyed_are_failed_precondition(client, fake_gsm, state) -> None:  # noqa: F811
    fake_gsm.add_secret("p", "s", b"old", b"new")
    fake_gsm.set_state("p", "s", 1, state)
    with pytest.raises(gexc.BadRequest) as info:  # gRPC: FailedPrecondition (a BadRequest); REST: BadRequest
        access(client, "projects/p/secrets/s/versions/1")
    assert status_of(info.value) == "FAILED_PRECONDITION"
    assert f"Secret Version [projects/p/secrets/s/versions/1] is in {state} state." in info.value.message
    assert access(client, "projects/p/secrets/s/versions/2").payload.data == b"new"


def test_latest_is_newest_version_even_if_disabled(client, fake_gsm) -> None:  # noqa: F811
    """Google's documented alias: 'latest' = most recently created, no fallback."""
    fake_gsm.add_secret("p", "s", b"old", b"new")
    fake_gsm.set_state("p", "s", 2, fg.DISABLED)
    with pytest.raises(gexc.BadRequest) as info:
        access(client, "projects/p/secrets/s/versions/latest")
    assert "versions/2] is in DISABLED state" in info.value.message
    fake_gsm.latest_policy = "newest_enabled"
    assert access(client, "projects/p/secrets/s/versions/latest").payload.data == b"old"


def test_unavailable_n_times_then_ok(client, fake_gsm) -> None:  # noqa: F811
    fake_gsm.add_secret("p", "s", b"v")
    fake_gsm.inject("p", "s", fg.UNAVAILABLE, times=2)
    for _ in range(2):
        with pytest.raises(gexc.ServiceUnavailable):
            access(client, "projects/p/secrets/s/versions/1")
    assert access(client, "projects/p/secrets/s/versions/1").payload.data == b"v"
    assert [c.status for c in fake_gsm.calls_for("p", "s")] == ["UNAVAILABLE", "UNAVAILABLE", "OK"]


def test_unavailable_forever(client, fake_gsm) -> None:  # noqa: F811
    fake_gsm.add_secret("p", "s", b"v")
    fake_gsm.inject("p", "s", fg.UNAVAILABLE)
    for _ in range(5):
        with pytest.raises(gexc.ServiceUnavailable):
            access(client, "projects/p/secrets/s/versions/1")
    assert fake_gsm.fetch_count("p", "s") == 5


def test_bad_and_missing_crc(client, fake_gsm) -> None:  # noqa: F811
    fake_gsm.add_secret("p", "s", b"payload")
    fake_gsm.inject("p", "s", fg.BAD_CRC, times=1)
    fake_gsm.inject("p", "s", fg.NO_CRC, times=1)
    bad = access(client, "projects/p/secrets/s/versions/1").payload
    assert bad.data == b"payload" and bad.data_crc32c != google_crc32c.value(b"payload")  # client did not check
    missing = access(client, "projects/p/secrets/s/versions/1").payload
    assert "data_crc32c" not in missing
    good = access(client, "projects/p/secrets/s/versions/1").payload
    assert good.data_crc32c == google_crc32c.value(b"payload")


def test_latency_does_not_serialize_concurrent_calls(client, fake_gsm) -> None:  # noqa: F811
    fake_gsm.latency = 0.05
    for i in range(10):
        fake_gsm.add_secret("p", f"s{i}", b"v")
    threads = [threading.Thread(target=access, args=(client, f"projects/p/secrets/s{i}/versions/1")) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake_gsm.fetch_count() == 10
    assert fake_gsm.max_in_flight > 1
    assert all(c.end - c.start >= 0.05 for c in fake_gsm.calls)


def test_bearer_token_required_when_configured(fake_gsm) -> None:  # noqa: F811
    """What a boot-time fetch sees: 401 UNAUTHENTICATED without the metadata server's token."""
    fake_gsm.add_secret("p", "s", b"v")
    fake_gsm.require_bearer = lambda tok: tok == "good"
    url = fake_gsm.rest_endpoint + "/v1/projects/p/secrets/s/versions/1:access"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=2)
    assert info.value.code == 401 and json.load(info.value)["error"]["status"] == "UNAUTHENTICATED"
    req = urllib.request.Request(url, headers={"Authorization": "Bearer good"})
    with urllib.request.urlopen(req, timeout=2) as resp:
        assert json.load(resp)["payload"]["dataCrc32c"] == str(google_crc32c.value(b"v"))
    assert [c.bearer for c in fake_gsm.calls] == [None, "good"]


def test_servers_are_stopped_on_exit() -> None:
    with fg.running_fake_gsm() as fake:
        ports = (fake.grpc_port, fake.rest_port)
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_inject_rejects_unknown_fault() -> None:
    with pytest.raises(ValueError):
        fg.FakeSecretManager().inject("p", "s", "explode")


# ----------------------------------------------------------------- metadata fake
def get(server: fm.FakeMetadataServer, path: str, flavor: bool = True, timeout: float = 2.0) -> tuple[int, bytes, dict]:
    headers = {"Metadata-Flavor": "Google"} if flavor else {}
    req = urllib.request.Request(server.url + fm.ROOT + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_metadata_token_email_project(fake_metadata: fm.FakeMetadataServer) -> None:  # noqa: F811
    status, body, headers = get(fake_metadata, fm.TOKEN_PATH)
    token = json.loads(body)
    assert status == 200 and headers["Metadata-Flavor"] == "Google"
    assert set(token) == {"access_token", "expires_in", "token_type"} and token["token_type"] == "Bearer"
    assert fake_metadata.state.token_is_valid(token["access_token"])
    assert get(fake_metadata, fm.EMAIL_PATH)[1].decode() == fake_metadata.state.email
    assert get(fake_metadata, "project/project-id")[1] == b"fake-project"
    assert len(fake_metadata.state.requests_to("/token")) == 1


def test_metadata_requires_flavor_header(fake_metadata) -> None:  # noqa: F811
    status, body, _ = get(fake_metadata, fm.TOKEN_PATH, flavor=False)
    assert status == 403 and b"Metadata-Flavor" in body
    assert fake_metadata.state.tokens_issued == []


def test_metadata_tree_listing_and_recursive(fake_metadata) -> None:  # noqa: F811
    fake_metadata.state.set("instance/attributes/user-data", "#cloud-config\n")
    assert get(fake_metadata, "instance/attributes/user-data")[1] == b"#cloud-config\n"
    assert b"user-data\n" in get(fake_metadata, "instance/attributes/")[1]
    assert json.loads(get(fake_metadata, "instance/attributes/?recursive=True")[1]) == {"user-data": "#cloud-config\n"}
    assert get(fake_metadata, "instance/nope")[0] == 404


@pytest.mark.parametrize("mode", [fm.ERROR_500, fm.GARBAGE])
def test_metadata_500_and_garbage(fake_metadata, mode) -> None:  # noqa: F811
    fake_metadata.state.set_fault(mode, times=1, path_contains="token")
    status, body, _ = get(fake_metadata, fm.TOKEN_PATH)
    assert status == (500 if mode == fm.ERROR_500 else 200)
    with pytest.raises(ValueError):
        json.loads(body)
    assert get(fake_metadata, fm.TOKEN_PATH)[0] == 200  # fault used up


def test_metadata_down_slow_and_restart(fake_metadata) -> None:  # noqa: F811
    state = fake_metadata.state
    state.set_fault(fm.DOWN, times=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        get(fake_metadata, fm.TOKEN_PATH)
    assert state.requests[-1].status == 0
    state.slow_seconds = 0.3
    state.set_fault(fm.SLOW, times=1)
    with pytest.raises((TimeoutError, urllib.error.URLError, socket.timeout)):
        get(fake_metadata, fm.TOKEN_PATH, timeout=0.1)
    port = fake_metadata.port
    fake_metadata.stop()
    with pytest.raises(urllib.error.URLError):  # connection refused
        get(fake_metadata, fm.TOKEN_PATH)
    fake_metadata.restart()
    assert fake_metadata.port == port and get(fake_metadata, fm.TOKEN_PATH)[0] == 200


def test_google_auth_compute_credentials_use_the_fake(fake_metadata, monkeypatch) -> None:  # noqa: F811
    """google-auth's own Compute Engine credentials accept the fake's answers."""
    import google.auth.transport.requests
    from google.auth import compute_engine
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", fake_metadata.host_port)
    creds = compute_engine.Credentials()
    creds.refresh(google.auth.transport.requests.Request())
    assert creds.token in fake_metadata.state.tokens_issued
    assert creds.service_account_email == fake_metadata.state.email
    assert all(r.headers.get("metadata-flavor") == "Google" for r in fake_metadata.state.requests)
