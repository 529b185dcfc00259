"""JSON Schema of profile format v1, for editors (yaml-language-server) and CI linting.

The loader in :mod:`generator.profile.load` is the authority (it explains errors with
positions and fixes); a test keeps this schema and the loader's key lists in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.profile import load
from generator.profile.routes import route_properties
from generator.profile.model import AUTH_TYPES, CLOUDS, COMPRESS_MODES, PROGRAM_SOURCES, DEFAULT_PACKER_SOURCES, FETCH_MODES, GCP_USERNAMES, VM_IDENTITY, VM_IDENTITY_USERNAME

SCHEMA_ID = "https://regauth.dev/schema/profile-v1.json"


def _obj(props: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out


def profile_schema(runtimes: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a profile; ``runtimes`` (the registry of targets) gives each target's part."""
    host = {
        "type": "string",
        "description": "Exact registry host[:port] as in image references; no scheme, path, wildcard or default port (:443, :80).",
        "pattern": r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$|^\[[0-9a-f:.]+\](:[0-9]{1,5})?$",
        "not": {"pattern": r":(443|80)$"},
        "examples": ["europe-docker.pkg.dev", "registry.example.com:5000"],
    }
    secret_file = _obj(
        {"source": {"const": "file"}, "path": {"type": "string", "description": "Key file, relative to this profile's folder (or absolute). Must be mode 0600 and not a symlink."}},
        ("source", "path"),
    )
    secret_env = _obj({"source": {"const": "env"}, "var": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}}, ("source", "var"))
    secret_gsm = _obj(
        {
            "source": {"const": "gcp-secret-manager"},
            "name": {"type": "string", "pattern": "^projects/[^/]+/secrets/[^/]+/versions/([1-9][0-9]*|latest)$"},
            "project": {"type": "string"},
            "secret": {"type": "string"},
            "version": {"type": ["string", "integer"], "description": "A version number (recommended) or latest."},
            "fetch": {"enum": list(FETCH_MODES), "default": "build", "description": "build: fetched when rendering; boot: fetched by the VM at first boot, never stored in user-data."},
            "credentials_file": {"type": "string"},
            "endpoint": {"type": "string"},
        },
        ("source",),
    )
    auth = _obj(
        {
            "type": {
                "enum": list(AUTH_TYPES),
                "description": f"{VM_IDENTITY}: no secret; the node's metadata server gives the VM's access token (username {VM_IDENTITY_USERNAME}), served only by kubelet's credential provider (type: regauth).",
            },
            "secret": {"type": "string", "description": f"Name of an entry under secrets: (none for {VM_IDENTITY})."},
            "username": {
                "type": "string",
                "description": f"gcp-service-account: one of {', '.join(GCP_USERNAMES)} (default _json_key_base64); basic: the user name; {VM_IDENTITY}: {VM_IDENTITY_USERNAME} only.",
            },
        },
        ("type",),
        **{
            "if": {"properties": {"type": {"const": VM_IDENTITY}}},
            "then": {"not": {"required": ["secret"]}, "properties": {"username": {"const": VM_IDENTITY_USERNAME}}},
            "else": {"required": ["secret"]},
        },
    )
    schema = _obj(
        {
            "version": {"const": 1},
            "description": {"type": "string"},
            "targets": _obj({name: module.schema() for name, module in runtimes.items()}, minProperties=1),
            "secrets": {
                "type": "object",
                "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"},
                "additionalProperties": {"oneOf": [secret_file, secret_env, secret_gsm]},
            },
            "output": _obj(
                {
                    "cloud": {"enum": list(CLOUDS), "default": "gce", "description": "Whose user-data size limit to enforce: GCE 256 KiB, AWS 16 KB, Azure 64 KB."},
                    "compress": {"enum": list(COMPRESS_MODES), "default": "auto", "description": "gzip the user-data: auto (only when over the limit), always, never."},
                    "program": {
                        "enum": list(PROGRAM_SOURCES),
                        "default": "user-data",
                        "description": "Where the node programs come from. user-data: they travel in user-data (any image). image: the image was built with out/NAME/packer/, so user-data carries only the plan (a few KB: its credentials are most of it). url: user-data carries the plan and a 2 KB fetcher that downloads the program from program_url at first boot and checks its SHA-256 (any image).",
                    },
                    "program_url": {
                        "type": "string",
                        "pattern": r"^https?://[^\s/@?#]+([/?#]\S*)?$",
                        "description": "With program: url, where the VM fetches regauth-apply at first boot: serve out/NAME/rootfs/usr/local/sbin/regauth-apply there (http or https; no user:password@ or signed-URL signature in it: user-data checks the SHA-256).",
                    },
                    "packer": _obj(
                        {
                            "sources": {
                                "type": "array",
                                "minItems": 1,
                                "uniqueItems": True,
                                "items": {"type": "string", "pattern": load.PACKER_SOURCE_RE.pattern},
                                "default": list(DEFAULT_PACKER_SOURCES),
                                "description": "Sources the snippet's build block lists, written literally (Packer 1.6 takes no variables there).",
                            },
                            "bake_secret": {
                                "type": "boolean",
                                "description": "true: bake a plan holding build-time credentials into the image (passed as a sensitive variable). Unset: don't, and warn; false: don't, silently.",
                            },
                        }
                    ),
                }
            ),
            "refresh": {
                "type": "string",
                "pattern": load.REFRESH_RE.pattern,
                "description": "Re-fetch fetch: boot secrets and re-apply every INTERVAL (30m, 1h, 1d; at least 5m): a systemd timer with jitter on the node. Files change and runtimes restart only when content changed.",
            },
            "registries": {"type": "array", "minItems": 1, "items": _obj({"host": host, "auth": auth, **route_properties()}, ("host", "auth"))},
        },
        ("version", "targets"),
    )
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, "title": "regauth profile v1", **schema}
    assert set(schema["properties"]) == set(load.TOP_KEYS)
    return schema
