"""JSON (and YAML, when PyYAML is there) documents: load a mapping, dump stable JSON."""

import json
import re
from typing import Optional

from .errors import ApplyError


def load_document(text: Optional[str], shown: str) -> dict:
    """A JSON (or YAML, when python3-yaml is there) mapping; {} for no/empty file.

    Error messages carry positions only: a parser's own message may quote the line,
    and the line may hold a password.
    """
    if text is None or not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        if text.lstrip().startswith("{"):
            raise ApplyError("%s is not valid JSON (line %d, column %d); fix or remove it" % (shown, exc.lineno, exc.colno), code="node-config-syntax")
        try:
            import yaml  # cloud-init depends on PyYAML, so a cloud-init node has it
        except ImportError:
            raise ApplyError("%s is YAML and python3-yaml is not installed, so regauth cannot merge into it; install python3-yaml or rewrite the file as JSON" % shown, code="node-cannot-merge")
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = " (line %d, column %d)" % (mark.line + 1, mark.column + 1) if mark else ""
            raise ApplyError("%s is not valid YAML%s; fix or remove it" % (shown, where), code="node-config-syntax")
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ApplyError("%s does not hold a mapping at the top; fix or remove it" % shown, code="node-config-shape")
    return doc


# Characters JSON writes raw but YAML readers refuse (DEL, C1 controls, BOM, U+FFFE/F:
# "special characters are not allowed" in PyYAML and go-yaml) or read as line breaks
# that fold into a space inside a quoted scalar (NEL, LS, PS).  As \uXXXX escapes
# they mean the same character to JSON and YAML alike.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def dump_document(doc: dict, shown: str) -> bytes:
    """JSON text (also valid YAML): stdlib-only, exact, and stable for byte-identical re-runs."""
    try:
        text = json.dumps(doc, indent=2, ensure_ascii=False)
        return (_YAML_UNSAFE.sub(lambda m: "\\u%04x" % ord(m.group(0)), text) + "\n").encode("utf-8")
    except (TypeError, ValueError):
        raise ApplyError("%s holds values that are not plain YAML data (dates, tags); regauth cannot rewrite it" % shown, code="node-cannot-merge")


def _mapping(parent: dict, key: str, shown: str) -> dict:
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    if not isinstance(value, dict):
        raise ApplyError("%s: %s is not a mapping; fix or remove it" % (shown, key), code="node-config-shape")
    return value
