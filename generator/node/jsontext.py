"""JSON for a program whose start-up is the cost: CPython's own C scanner and string
encoder (``_json``, what the ``json`` module uses under the hood) without importing
``json``, which imports ``re`` and with it ``enum``, ``functools`` and more: on Debian's
Python 3.11 that import alone takes longer than a bare interpreter start, and kubelet
runs the credential provider per pull.  Interpreters without ``_json`` fall back to
``json``; tests/unit/test_credential_provider.py checks both give the same results.
"""


def _constant(name: str):
    raise ValueError("JSON does not allow %s" % name)  # NaN / Infinity: as json with strict input


class _Options(object):
    # The attributes _json.make_scanner reads from a JSONDecoder.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo = {}  # type: dict


_WS = " \t\n\r"


def loads(text: str):
    """Like json.loads (ValueError on anything that is not one JSON document)."""
    try:
        from _json import make_scanner
    except ImportError:  # not CPython
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WS))
    try:
        value, end = make_scanner(_Options)(text, start)
    except StopIteration:
        raise ValueError("not JSON at offset %d" % start)
    finally:
        _Options.memo.clear()
    if text[end:].strip(_WS):
        raise ValueError("extra data after JSON at offset %d" % end)
    return value


def dumps(value) -> str:
    """Compact JSON for plain data (dicts with str keys, lists, str, int, bool, None)."""
    try:
        from _json import encode_basestring_ascii as quote
    except ImportError:
        import json

        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(quote(k) + ": " + dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    if isinstance(value, str):
        return quote(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(int(value))
    raise TypeError("cannot write %s as JSON" % type(value).__name__)
