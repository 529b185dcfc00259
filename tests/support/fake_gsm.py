"""The fake Secret Manager (testbed/fake_gsm.py) plus its pytest glue: the ``fake_gsm``
fixture, which also keeps google-auth and every other Python connection off the network."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from testbed.fake_gsm import *  # noqa: F403 - this module is the fake's test-side name
from testbed.fake_gsm import FakeSecretManager, running_fake_gsm, unused_port


# ------------------------------------------------------------------- pytest glue
def keep_google_auth_off_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop google.auth from probing 169.254.169.254 or using a developer's real ADC.

    ``NO_GCE_CHECK`` is read when ``google.auth.compute_engine._metadata`` is
    imported, so besides the environment we patch the already-imported module.
    The metadata host is pointed at a dead loopback port as a second guard.
    """
    dead = f"127.0.0.1:{unused_port()}"
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("GCE_METADATA_HOST", dead)
    monkeypatch.setenv("GCE_METADATA_IP", dead)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    try:
        from google.auth.compute_engine import _metadata
    except ImportError:  # pragma: no cover - google-auth always has it
        return
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True, raising=False)
    if hasattr(_metadata, "_GCE_METADATA_HOST"):  # read at import; GCE_METADATA_IP is read per call
        monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", dead)


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def forbid_remote_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any Python-level TCP connect that is not to loopback (Google, 169.254.169.254...).

    gRPC's C core opens its own sockets and is not covered; it only dials the
    targets tests give it.
    """
    original = socket.socket.connect

    def guarded(sock: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOOPBACK:
            raise AssertionError(f"test tried to connect to {address!r}; only loopback fakes are allowed")
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def fake_gsm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSecretManager]:
    """A started fake (both transports), nothing but loopback reachable, stopped after the test."""
    keep_google_auth_off_the_network(monkeypatch)
    forbid_remote_connections(monkeypatch)
    with running_fake_gsm() as fake:
        yield fake
