"""Check tomlparse.py against the toml-test corpus; runs under any Python 3.6+.

    python toml_corpus.py PATH/TO/tomlparse.py CORPUS_DIR

Loads the reader by path (as the node program may be loaded), reads every `valid/**.toml`
and compares with its `.json` tagged expectation, and checks every `invalid/**.toml` is
rejected with TOMLError. Prints one JSON object: {"python", "valid", "invalid", "failures"}.
Files in NOT_TOML_1_0 (valid only in TOML 1.1) must be rejected instead.
Imported by tests/unit/test_node_tomlparse.py too (NOT_TOML_1_0, in-process checks).
"""
import datetime
import importlib.util
import json
import math
import os
import re
import sys

# valid/ files that are TOML 1.1, not 1.0: the reader must REJECT them (tomllib does too).
NOT_TOML_1_0 = {
    "valid/string/escape-esc.toml": "\\e escape: added in TOML 1.1 (toml-lang/toml#790); 1.0 allows "
                                    "only \\b \\t \\n \\f \\r \\\" \\\\ \\u \\U",
}


def load_reader(path):
    spec = importlib.util.spec_from_file_location("tomlparse_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_DT = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})?$")
_D = re.compile(r"(\d{4})-(\d{2})-(\d{2})$")
_T = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def _us(frac):
    return int((frac or "0")[:6].ljust(6, "0"))


def expected_value(tagged):
    """The Python value (and its kind) a tagged toml-test expectation stands for."""
    kind, raw = tagged["type"], tagged["value"]
    if kind == "array":  # older corpus layout
        return [decode_expected(v) for v in raw]
    if kind == "string":
        return raw
    if kind == "integer":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        return {"true": True, "false": False}[raw]
    if kind in ("datetime", "datetime-local"):
        m = _DT.match(raw)
        y, mo, d, h, mi, s, frac, off = m.groups()
        tz = None
        if off and off in "Zz":
            tz = datetime.timezone.utc
        elif off:
            delta = datetime.timedelta(hours=int(off[1:3]), minutes=int(off[4:6]))
            tz = datetime.timezone(-delta if off[0] == "-" else delta)
        return datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), _us(frac), tz)
    if kind == "date-local":
        y, mo, d = _D.match(raw).groups()
        return datetime.date(int(y), int(mo), int(d))
    if kind == "time-local":
        h, mi, s, frac = _T.match(raw).groups()
        return datetime.time(int(h), int(mi), int(s), _us(frac))
    raise ValueError("unknown tag %r" % kind)


def decode_expected(node):
    if isinstance(node, list):
        return [decode_expected(v) for v in node]
    if isinstance(node, dict) and set(node) == {"type", "value"} and isinstance(node["type"], str):
        return expected_value(node)
    return {k: decode_expected(v) for k, v in node.items()}


def same(got, want, where="$"):
    """'' when equal in value and type (datetime kind and offset included), else where they differ."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return "%s: got %s, want a table" % (where, type(got).__name__)
        if set(got) != set(want):
            return "%s: keys %s, want %s" % (where, sorted(got), sorted(want))
        for k in want:
            r = same(got[k], want[k], "%s.%s" % (where, k))
            if r:
                return r
        return ""
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return "%s: got %r, want %d items" % (where, got, len(want))
        for i, (g, w) in enumerate(zip(got, want)):
            r = same(g, w, "%s[%d]" % (where, i))
            if r:
                return r
        return ""
    if type(got) is not type(want):
        return "%s: got %s %r, want %s %r" % (where, type(got).__name__, got, type(want).__name__, want)
    if isinstance(want, float):
        if math.isnan(want):
            return "" if math.isnan(got) else "%s: got %r, want nan" % (where, got)
        # Numeric equality, as toml-test compares floats (its "-0.0" is written "0").
        return "" if got == want else "%s: got %r, want %r" % (where, got, want)
    if isinstance(want, datetime.datetime) and (got.tzinfo is None) != (want.tzinfo is None):
        return "%s: got %r, want %r" % (where, got, want)
    if isinstance(want, datetime.datetime) and want.tzinfo is not None and got.utcoffset() != want.utcoffset():
        return "%s: offset %r, want %r" % (where, got.utcoffset(), want.utcoffset())
    return "" if got == want else "%s: got %r, want %r" % (where, got, want)


def corpus_files(corpus):
    valid, invalid = [], []
    for sub, out in (("valid", valid), ("invalid", invalid)):
        top = os.path.join(corpus, sub)
        for folder, _dirs, files in os.walk(top):
            for name in files:
                if name.endswith(".toml"):
                    out.append(os.path.relpath(os.path.join(folder, name), corpus))
    return sorted(valid), sorted(invalid)


def check(reader, corpus):
    valid, invalid = corpus_files(corpus)
    failures = []
    for rel in valid:
        if rel in NOT_TOML_1_0:
            continue
        with open(os.path.join(corpus, rel), "rb") as f:
            data = f.read()
        with open(os.path.join(corpus, rel[:-5] + ".json"), encoding="utf-8") as f:
            want = decode_expected(json.load(f))
        try:
            problem = same(reader.parse(data).value, want)
        except reader.TOMLError as exc:
            problem = "rejected: %s" % exc
        except Exception as exc:  # a crash is a failure, reported with its type
            problem = "crashed: %s: %s" % (type(exc).__name__, exc)
        if problem:
            failures.append({"file": rel, "problem": problem})
    for rel in invalid + sorted(NOT_TOML_1_0):
        with open(os.path.join(corpus, rel), "rb") as f:
            data = f.read()
        try:
            reader.parse(data)
            problem = "accepted"
        except reader.TOMLError as exc:
            problem = "" if exc.line >= 1 and exc.col >= 1 and exc.reason else "error without position"
        except Exception as exc:
            problem = "crashed: %s: %s" % (type(exc).__name__, exc)
        if problem:
            failures.append({"file": rel, "problem": problem})
    return {"python": "%d.%d.%d" % sys.version_info[:3], "valid": len(valid), "invalid": len(invalid),
            "failures": failures, "not_toml_1_0": len(NOT_TOML_1_0)}


if __name__ == "__main__":
    print(json.dumps(check(load_reader(sys.argv[1]), sys.argv[2]), indent=1, sort_keys=True))
