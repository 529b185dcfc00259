"""Service-account key checks: each mangled form is named."""

from __future__ import annotations

import json

import pytest

from generator.profile.sakey import check_service_account_key


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
