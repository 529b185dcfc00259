"""Service-account key checks: each mangled form is named."""

from __future__ import annotations

import json

import pytest

from generator.core.sakey import check_service_account_key


def _dump(key: dict) -> bytes:
    return json.dumps(key).encode()


def test_good_key_has_no_findings(sa_key: dict) -> None:
    assert check_service_account_key(_dump(sa_key)) == ()


def test_google_auth_agrees_the_good_key_loads(sa_key: dict) -> None:
    from google.oauth2 import service_account

    service_account.Credentials.from_service_account_info(sa_key)


@pytest.mark.parametrize(
    ("mangle", "expected"),
    [
        (lambda k: {**k, "private_key": k["private_key"].replace("\n", "\\n")}, "literal backslash-n"),
        (lambda k: {**k, "private_key": k["private_key"].replace("\n", "")}, "newlines stripped"),
        (lambda k: {**k, "private_key": k["private_key"].replace("\n", "\r\n")}, "CRLF"),
        (lambda k: {**k, "private_key": k["private_key"][:200]}, "missing BEGIN or END"),
        (lambda k: {**k, "private_key": k["private_key"][:300] + k["private_key"][-30:]}, "does not load"),
        (lambda k: {**k, "type": "authorized_user"}, "not \"service_account\""),
        (lambda k: {kk: v for kk, v in k.items() if kk != "client_email"}, "no \"client_email\""),
    ],
)
def test_mangled_keys_are_named(sa_key: dict, mangle, expected: str) -> None:
    findings = check_service_account_key(_dump(mangle(sa_key)))
    text = " ".join(f.message for f in findings)
    assert expected in text
    assert "BEGIN PRIVATE KEY-----\nMII" not in text  # never quotes the key


def test_newlines_turned_real_inside_json_string(sa_key: dict) -> None:
    raw = _dump(sa_key).replace(b"\\n", b"\n")
    [finding] = check_service_account_key(raw)
    assert "not valid JSON" in finding.message and "real newline" in finding.message


def test_der_check_agrees_with_google_auth_on_good_and_damaged_keys(sa_key: dict) -> None:
    """Our dependency-free check must accept exactly what google-auth's loader accepts."""
    import base64
    import random

    from google.oauth2 import service_account

    from generator.core.sakey import rsa_private_key_problem

    pem = sa_key["private_key"]
    body = "".join(pem.strip().splitlines()[1:-1])
    der = base64.b64decode(body)
    assert rsa_private_key_problem(der) is None
    rng = random.Random(7)
    for _ in range(40):
        damaged = bytearray(der)
        i = rng.randrange(len(damaged))
        damaged[i] ^= 1 << rng.randrange(8)
        ours_ok = rsa_private_key_problem(bytes(damaged)) is None
        b64 = base64.b64encode(bytes(damaged)).decode()
        lines = "\n".join(b64[j : j + 64] for j in range(0, len(b64), 64))
        info = {**sa_key, "private_key": f"-----BEGIN PRIVATE KEY-----\n{lines}\n-----END PRIVATE KEY-----\n"}
        try:
            service_account.Credentials.from_service_account_info(info)
            theirs_ok = True
        except Exception:
            theirs_ok = False
        # A flipped bit google-auth still loads must be one that changes no number we check
        # (e.g. in a length-neutral spot it also tolerates); never the other way round.
        assert not (ours_ok and not theirs_ok), f"byte {i}"
    assert rsa_private_key_problem(der[:-10]) is not None
