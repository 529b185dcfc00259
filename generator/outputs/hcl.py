"""HCL (native syntax) string literals, the serializer for every value we put in HCL.

Why not ``json.dumps``: JSON's escapes are not HCL's.  JSON writes backspace and
form feed as ``\\b`` / ``\\f``, which HCL rejects, and knows nothing of HCL's
template sequences: in HCL a literal ``${`` must be written ``$${`` and ``%{`` as
``%%{``, or Packer evaluates it.

HCL also NFC-normalises every string literal after decoding escapes (checked with
Packer 1.6.6: ``"e\\u0301"`` evaluates to ``"é"``), so a string that is not in NFC
cannot be written as an HCL literal at all.  :func:`hcl_string` refuses such input
instead of letting Packer change it silently; callers with arbitrary bytes (the
baked plan) pass base64.
"""

from __future__ import annotations

import re
import unicodedata

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029]')


def _escape_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    # C0/C1 controls, DEL and the Unicode line/paragraph separators: never raw in a
    # one-line literal (they would be invisible or end the line for some readers).
    if code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029):
        return f"\\u{code:04x}"
    return ch


def hcl_string(value: str) -> str:
    """``value`` as a double-quoted HCL literal that evaluates to exactly ``value``.

    Raises ValueError for text HCL cannot carry unchanged (not NFC, or a lone surrogate).
    """
    if not unicodedata.is_normalized("NFC", value):
        raise ValueError("HCL normalises string literals to NFC; this value would change (pass it base64-encoded)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the value holds a lone surrogate, which is not UTF-8 text") from None
    # One regex pass (only the characters _escape_char changes): the baked plan is
    # tens of KB of base64, which a per-character join made the slowest part of a render.
    body = _NEEDS_ESCAPE.sub(lambda m: _escape_char(m.group(0)), value)
    # Template sequences: no escape above produces '$', '%' or '{', so doubling after
    # escaping is safe; "$$${" decodes as "$" + "${" (the scanner matches "$${" there).
    return '"' + body.replace("${", "$${").replace("%{", "%%{") + '"'


def hcl_list(values: list[str] | tuple[str, ...]) -> str:
    """A one-line HCL tuple of strings, as ``packer fmt`` leaves it."""
    return "[" + ", ".join(hcl_string(v) for v in values) + "]"
