"""Service-account key checks, run when the key is available at render time.

The classic breakage is a key whose ``private_key`` newlines were mangled on the way
into a config file: literal ``\\n`` left after decoding, newlines stripped, or CRLF.
``cryptography`` (the library google-auth itself uses to load keys) is lenient about
some of these while OpenSSL and Artifact Registry are not, so we detect each form
explicitly instead of relying on a loader to fail.

The key itself is checked by walking its DER (PKCS#8 wrapping PKCS#1, the form
gcloud writes, or bare PKCS#1) and proving ``n == p * q``: the same structure and
consistency google-auth's loader demands, without importing ``cryptography`` (~45 ms,
a third of a cold render).  A test keeps this check and google-auth in agreement.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class KeyFinding:
    message: str
    fix: str


_FIX_REDOWNLOAD = (
    "use the key file exactly as downloaded (gcloud iam service-accounts keys create KEY.json "
    "--iam-account=NAME@PROJECT.iam.gserviceaccount.com), with source: file; never paste it into YAML or TOML"
)


_KNOWN_TYPES = ("authorized_user", "external_account", "external_account_authorized_user", "impersonated_service_account", "gdch_service_account")


_INSTEAD = (
    "create a service-account key for the VMs (gcloud iam service-accounts keys create KEY.json "
    "--iam-account=NAME@PROJECT.iam.gserviceaccount.com), grant it roles/artifactregistry.reader, "
    "and point path: at KEY.json (Artifact Registry's _json_key usernames take only service-account keys)"
)
#: Credential files people point at by mistake: what each is, and what to use instead.
_OTHER_CREDENTIALS = {
    "authorized_user": ("gcloud application-default credentials of a user (from `gcloud auth application-default login`)", _INSTEAD),
    "external_account": ("a workload identity federation config (it holds no key)", _INSTEAD),
    "external_account_authorized_user": ("a workforce identity federation user credential", _INSTEAD),
    "impersonated_service_account": ("an impersonation config (`gcloud auth application-default login --impersonate-service-account`)", _INSTEAD),
}


def _base64_of_json(text: str) -> dict | None:
    """The key JSON when ``text`` is its base64 (one line or wrapped), else None."""
    compact = "".join(text.split())
    if not compact or len(compact) % 4:
        return None
    try:
        info = json.loads(base64.b64decode(compact, validate=True))
    except ValueError:  # binascii.Error, JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return info if isinstance(info, dict) else None


def _already_encoded(info: dict) -> KeyFinding:
    """A key file that was base64-encoded before regauth saw it: decode it, then check it."""
    inner = _check_key(json.dumps(info).encode("utf-8"))
    verdict = "decoded, it is a usable key" if not inner else f"decoded, it still has a problem: {inner[0].message}"
    return KeyFinding(
        "the key file is base64-encoded; regauth encodes the key itself (username _json_key_base64 sends the base64 "
        f"of the file), so it needs the JSON as downloaded ({verdict})",
        "decode it into the file regauth reads: base64 -d KEY.b64 > KEY.json && chmod 600 KEY.json, and point path: at KEY.json"
        + ("" if not inner else f"; then: {inner[0].fix}"),
    )


@lru_cache(maxsize=64)
def check_service_account_key(raw: bytes) -> tuple[KeyFinding, ...]:
    return tuple(_check_key(raw))


def _check_key(raw: bytes) -> list[KeyFinding]:
    """Every problem with a service-account key file's bytes; empty when it is usable.

    Messages never quote the key: only field names and the kind of damage.  Cached
    (in memory, per run) because a fleet of profiles shares a handful of keys.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [KeyFinding("the key is not UTF-8 text (is this the JSON key file?)", _FIX_REDOWNLOAD)]
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        decoded = _base64_of_json(text)
        if decoded is not None:
            return [_already_encoded(decoded)]
        hint = ""
        if "Invalid control character" in exc.msg:
            hint = " (a real newline inside a JSON string: its \\n escapes were turned into newlines, e.g. by pasting into a double-quoted TOML/YAML string)"
        # json's msg for control characters already ends in "at" ("Invalid control character at").
        what = exc.msg.removesuffix(" at")
        return [KeyFinding(f"the key is not valid JSON: {what} at line {exc.lineno} column {exc.colno}{hint}", _FIX_REDOWNLOAD)]
    if not isinstance(info, dict):
        return [KeyFinding("the key JSON must be an object", _FIX_REDOWNLOAD)]
    findings: list[KeyFinding] = []
    kind = info.get("type")
    if kind in _OTHER_CREDENTIALS:
        # A credential of another kind: its missing key fields say nothing more.
        what, instead = _OTHER_CREDENTIALS[kind]
        return [KeyFinding(f"this is {what}: its \"type\" is '{kind}', not \"service_account\", so it is not a service-account key", instead)]
    if kind != "service_account":
        # Name only the credential types we know: any other value is key content, and a
        # pasted secret in the wrong field must not end up in a log.
        shown = repr(kind) if kind in _KNOWN_TYPES else ("missing" if kind is None else "not a credential type")
        findings.append(
            KeyFinding(
                f"the key's \"type\" is {shown}, not \"service_account\" (an OAuth client secret or ADC user credential won't authenticate to Artifact Registry)",
                _FIX_REDOWNLOAD,
            )
        )
        if "private_key" not in info:
            return findings  # some other JSON (an OAuth client secret, ...): its missing fields say nothing more
    for fieldname in ("client_email", "private_key", "private_key_id"):
        if not isinstance(info.get(fieldname), str) or not info.get(fieldname):
            findings.append(KeyFinding(f"the key has no \"{fieldname}\"", _FIX_REDOWNLOAD))
    pk = info.get("private_key")
    if isinstance(pk, str) and pk:
        findings.extend(_check_private_key(pk))
    return findings


def _check_private_key(pk: str) -> list[KeyFinding]:
    if "\\n" in pk:
        return [KeyFinding("private_key contains literal backslash-n sequences instead of newlines (the key was escaped twice)", _FIX_REDOWNLOAD)]
    if "\r" in pk:
        return [KeyFinding("private_key has Windows line endings (CRLF); the key file was converted by an editor or git", _FIX_REDOWNLOAD)]
    if "-----BEGIN" not in pk or "-----END" not in pk:
        return [KeyFinding("private_key is not a PEM block (missing BEGIN or END line: truncated?)", _FIX_REDOWNLOAD)]
    body = pk.split("-----BEGIN", 1)[1]
    if "\n" not in body.strip():
        return [KeyFinding("private_key has had its newlines stripped (the PEM block is on one line)", _FIX_REDOWNLOAD)]
    try:
        # body is " PRIVATE KEY-----\n<base64>\n-----END PRIVATE KEY-----\n"
        der = base64.b64decode("".join(body.split("-----", 2)[1].split()), validate=True)
    except (ValueError, IndexError):
        return [KeyFinding("private_key does not load: its PEM body is not valid base64 (truncated or corrupted)", _FIX_REDOWNLOAD)]
    problem = rsa_private_key_problem(der)
    if problem:
        return [KeyFinding(f"private_key does not load as an RSA key ({problem}; truncated or corrupted)", _FIX_REDOWNLOAD)]
    return []


_RSA_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption


def _der(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """The value of the DER element with ``tag`` at ``pos``, and the position after it."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x}")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("DER value runs past the end")
    return data[pos : pos + length], pos + length


def rsa_private_key_problem(der: bytes) -> str | None:
    """None when ``der`` is a consistent RSA private key (PKCS#8 or PKCS#1), else what is wrong."""
    try:
        outer, end = _der(der, 0, 0x30)
        if end != len(der):
            return "trailing data after the key"
        first, pos = _der(outer, 0, 0x02)
        if outer[pos] == 0x30:  # PKCS#8: version, AlgorithmIdentifier, OCTET STRING(PKCS#1)
            algorithm, pos = _der(outer, pos, 0x30)
            oid, _ = _der(algorithm, 0, 0x06)
            if oid != _RSA_OID:
                return "not an RSA key"
            inner, _ = _der(outer, pos, 0x04)
            outer, end = _der(inner, 0, 0x30)
            first, pos = _der(outer, 0, 0x02)
        numbers = []
        for _ in range(8):  # n, e, d, p, q, dp, dq, qinv
            value, pos = _der(outer, pos, 0x02)
            numbers.append(int.from_bytes(value, "big"))
        n, e, d, p, q, dp, dq, qinv = numbers
    except (ValueError, IndexError) as exc:
        return f"malformed DER: {exc}"
    if n.bit_length() < 1024:
        return "modulus shorter than 1024 bits"
    if p * q != n or dp != d % (p - 1) or dq != d % (q - 1) or (q * qinv) % p != 1:
        return "its numbers are inconsistent"
    return None
