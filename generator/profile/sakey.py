"""Service-account key checks, run when the key is available at render time.

The classic breakage is a key whose ``private_key`` newlines were mangled on the way
into a config file: literal ``\\n`` left after decoding, newlines stripped, or CRLF.
``cryptography`` (the library google-auth itself uses to load keys) is lenient about
some of these while OpenSSL and Artifact Registry are not, so we detect each form
explicitly instead of relying on a loader to fail.  ``cryptography`` is imported
lazily: file-source renders that never check a key stay fast.
"""

from __future__ import annotations

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
        hint = ""
        if "Invalid control character" in exc.msg:
            hint = " (a real newline inside a JSON string: its \\n escapes were turned into newlines, e.g. by pasting into a double-quoted TOML/YAML string)"
        return [KeyFinding(f"the key is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{hint}", _FIX_REDOWNLOAD)]
    if not isinstance(info, dict):
        return [KeyFinding("the key JSON must be an object", _FIX_REDOWNLOAD)]
    findings: list[KeyFinding] = []
    if info.get("type") != "service_account":
        findings.append(
            KeyFinding(
                f"the key's \"type\" is {info.get('type')!r}, not \"service_account\" (an OAuth client secret or ADC user credential won't authenticate to Artifact Registry)",
                _FIX_REDOWNLOAD,
            )
        )
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
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        # Skipping the RSA consistency proof (p*q == n ...) saves ~30 ms per key and
        # loses nothing we look for: every mangling above breaks parsing itself.
        key = load_pem_private_key(pk.encode("ascii", "replace"), password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError) as exc:
        return [KeyFinding(f"private_key does not load as a PEM private key ({type(exc).__name__}; truncated or corrupted)", _FIX_REDOWNLOAD)]
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm and friends
        return [KeyFinding(f"private_key does not load ({type(exc).__name__})", _FIX_REDOWNLOAD)]
    if not isinstance(key, rsa.RSAPrivateKey):
        return [KeyFinding("private_key is not an RSA key (Google service-account keys are RSA)", _FIX_REDOWNLOAD)]
    return []
