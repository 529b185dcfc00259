"""Recognise key material pasted where a name belongs, so it is never printed back.

A user who pastes a service-account key (or its base64, or a PEM block) into
``host:``, ``path:`` or ``auth.secret:`` gets an error quoting that field, and CI
logs keep it forever.  :func:`redact` finds key-like spans in any text and replaces
each with a short description; :class:`generator.errors.Problem` and
``RuntimeFailure`` run every message and fix through it, so no caller has to remember.

What counts as key material: a PEM block or header, JSON naming a credential
(``"private_key"``, ``"type": "service_account"``, ...), base64 that decodes to
either, and long high-entropy tokens.  Matching is case-insensitive because some
messages quote a value lower-cased (``host.lower()``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter

KEY_HINT = "this looks like a key: put it in a file and use `source: file`"
KEY_FIX = (
    "save the key as a file next to the profile (chmod 600), e.g. gar-key.json, and write\n"
    "secrets:\n  gar-key:\n    source: file\n    path: gar-key.json\n"
    "then refer to it by name: auth: {type: gcp-service-account, secret: gar-key}"
)

_B64_RUN = r"(?:[A-Za-z0-9+/=\r\n]|\\[nr])*"  # no spaces: they separate the words around it
# A PEM header with its body (to the END line, or as far as base64 goes).
_PEM = re.compile(rf"-----BEGIN[ A-Z0-9]*-----(?:.*?-----END[ A-Z0-9]*-----|{_B64_RUN})", re.S | re.I)
# An END line left without its header (a fragment): the body before it goes too.
_PEM_END = re.compile(r"-----END[ A-Z0-9]*-----", re.I)
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n\\")
# Names only credential JSON carries ("type" only with a credential type as its value).
_JSON_MARKER = re.compile(
    r'\\?"(?:private_key(?:_id)?|client_email|client_secret|refresh_token|client_x509_cert_url|auth_provider_x509_cert_url|token_uri)\\?"\s*:'
    r'|\\?"type\\?"\s*:\s*\\?"(?:service_account|authorized_user|external_account)',
    re.I,
)
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{40,}")
MIN_TOKEN = 40
# Bits per character: 40 random base64 characters average 4.8 (64: 5.2); long names
# and Secret Manager paths stay near 4.2 and rarely mix upper case, lower case and digits.
MIN_ENTROPY = 4.4


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _decodes_to_key(token: str) -> bool:
    padded = token.replace("-", "+").replace("_", "/")
    padded += "=" * (-len(padded) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return False
    text = decoded.decode("latin-1")
    return bool(_PEM.search(text) or _PEM_END.search(text) or _JSON_MARKER.search(text))


def token_looks_random(token: str) -> bool:
    """A long base64-ish token that is a key's base64 or high-entropy (a private key body)."""
    if len(token) < MIN_TOKEN:
        return False
    if _decodes_to_key(token):
        return True
    mixed = any(ch.isupper() for ch in token) and any(ch.islower() for ch in token) and any(ch.isdigit() for ch in token)
    return mixed and _entropy(token) >= MIN_ENTROPY


def looks_like_key(value: object) -> bool:
    """Whether a profile value (a string) is key material rather than a name."""
    return isinstance(value, str) and redact(value)[1]


def _describe(span: str) -> str:
    return f"<{len(span)} characters that look like a key, not shown>"


def redact(text: str) -> tuple[str, bool]:
    """``text`` with every key-like span replaced by a description, and whether any was."""
    if not text or (len(text) < MIN_TOKEN and "-----" not in text and '"' not in text):
        return text, False  # the common case: short messages with nothing to find
    spans: list[tuple[int, int]] = [m.span() for m in _PEM.finditer(text)]
    for m in _PEM_END.finditer(text):
        start = m.start()
        while start > 0 and text[start - 1] in _B64_CHARS:
            start -= 1
        spans.append((start, m.end()))
    markers = list(_JSON_MARKER.finditer(text))
    if markers:
        first, last = markers[0].start(), markers[-1].end()
        start = text.rfind("{", 0, first)
        if start < 0:  # no brace kept (a fragment): from the quote or line the value started at
            start = max(text.rfind("'", 0, first) + 1, text.rfind("\n", 0, first) + 1, 0)
        end = text.rfind("}")
        end = end + 1 if end >= last else _end_of_value(text, last)
        spans.append((start, end))
    spans.extend(m.span() for m in _TOKEN.finditer(text) if token_looks_random(m.group(0)))
    if not spans:
        return text, False
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        while end < len(text) and (text[end] in "\r\n" or text[end : end + 2] in ("\\n", "\\r")):
            end += 1 if text[end] in "\r\n" else 2  # the key file's final newline (or its escape) goes with it
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out.append(text[pos:start])
        out.append(_describe(text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out), True


def _end_of_value(text: str, pos: int) -> int:
    """Where a quoted value that runs past ``pos`` ends: its closing quote, or the text's end."""
    close = text.find("'", pos)
    return close if close >= 0 else len(text)
