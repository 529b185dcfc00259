"""Issue 17 item 11: Secret Manager retries are visible, one stderr line each; -v adds the rest.

The real client (gRPC and REST) against the loopback fake, which answers UNAVAILABLE
twice and then the key.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.support.fake_gsm import UNAVAILABLE, running_fake_gsm
from tests.support.keys import key_file_bytes
from tests.unit.test_render_gsm import gsm_profile

NAME = "projects/regauth-test/secrets/gar-reader/versions/2"
RETRY = re.compile(r"^regauth: Secret Manager: UNAVAILABLE reading " + re.escape(NAME)
                   + r" \(attempt (\d) of 4 failed\); retrying in \d+\.\d s$")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_each_retry_is_one_stderr_line(tmp_path: Path, sa_key: dict, transport: str) -> None:
    with running_fake_gsm() as gsm:
        gsm.add_secret("regauth-test", "gar-reader", b"v1", key_file_bytes(sa_key))
        gsm.inject("regauth-test", "gar-reader", UNAVAILABLE, times=2)
        endpoint = gsm.rest_endpoint if transport == "rest" else "http://" + gsm.grpc_target
        profile = gsm_profile(tmp_path, "a", endpoint)
        result = run_cli("render", str(profile), "-o", str(tmp_path / "out"), "--gsm-transport", transport,
                         env={"REGAUTH_GSM_ANONYMOUS": "1"})
        assert result.code == 0, result.err
        assert [c.status for c in gsm.calls] == ["UNAVAILABLE", "UNAVAILABLE", "OK"]
    retries = [m.group(1) for m in map(RETRY.match, result.err.splitlines()) if m]
    assert retries == ["1", "2"], result.err
    assert "Secret Manager: read" not in result.err  # success details only with -v


def test_verbose_adds_what_was_read(tmp_path: Path, sa_key: dict) -> None:
    with running_fake_gsm() as gsm:
        gsm.add_secret("regauth-test", "gar-reader", b"v1", key_file_bytes(sa_key))
        gsm.inject("regauth-test", "gar-reader", UNAVAILABLE, times=1)
        profile = gsm_profile(tmp_path, "a", gsm.rest_endpoint)
        result = run_cli("render", str(profile), "-o", str(tmp_path / "out"), "--gsm-transport", "rest", "-v",
                         env={"REGAUTH_GSM_ANONYMOUS": "1"})
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert sum(1 for line in lines if RETRY.match(line)) == 1, result.err
    assert f"regauth: Secret Manager: read {NAME} (attempt 2 of 4)" in lines, result.err
