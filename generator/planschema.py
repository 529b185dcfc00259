"""JSON Schema of plan.json, derived from the node's own step definitions.

``generator/node/plan.py`` defines each step kind's fields once; the node checks every
plan it reads against them, render checks every plan it writes, and this turns the
same table into ``schema/plan-v1.json`` for readers and tools (a test keeps the
committed copy equal and validates rendered plans with it).

    python -m generator.planschema > schema/plan-v1.json
"""

from __future__ import annotations

import json
from typing import Any

from generator.node.plan import _COMMON, PLAN_FORMAT, PROVIDER_FIELDS, REGISTRY_FIELDS, STEP_FIELDS


def _object(fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required = []
    for name, kinds in fields.items():
        props[name.rstrip("?")] = {"type": kinds if isinstance(kinds, str) else list(kinds)}
        if not name.endswith("?"):
            required.append(name)
    props.update(extra)
    return {"type": "object", "additionalProperties": False, "required": required, "properties": props}


def plan_schema() -> dict[str, Any]:
    registry = _object(REGISTRY_FIELDS)
    # identity: regauth's credential provider asks the metadata server; no password at all.
    registry["oneOf"] = [{"required": ["password"]}, {"required": ["password_from"]}, {"required": ["identity"]}]
    provider = _object(PROVIDER_FIELDS, registries={"type": "array", "items": {"$ref": "#/$defs/registry"}})
    steps = []
    for kind, fields in sorted(STEP_FIELDS.items()):
        extra = {"provider": provider} if "provider?" in fields else {}
        step = _object({**_COMMON, **fields}, kind={"const": kind}, registries={"type": "array", "items": {"$ref": "#/$defs/registry"}}, **extra)
        steps.append(step)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://regauth.dev/schema/plan-v{PLAN_FORMAT}.json",
        "title": "regauth plan (/etc/regauth/plan.json): what regauth-apply writes on the node",
        "type": "object",
        "additionalProperties": False,
        "required": ["format", "profile", "steps"],
        "properties": {
            "format": {"const": PLAN_FORMAT},
            "profile": {"type": "string"},
            "steps": {"type": "array", "items": {"oneOf": steps}},
        },
        "$defs": {"registry": registry},
    }


if __name__ == "__main__":
    print(json.dumps(plan_schema(), indent=2))
