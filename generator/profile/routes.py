"""Per-registry routing: mirrors (``mirror_for`` + ``path``) and TLS files (``tls``).

Why these fields live on the registry entry and not on a target: the same facts
("europe-docker.pkg.dev/v2/PROJECT/REPO serves docker.io images", "this registry's
certificate is signed by our CA") hold for every runtime; each target only decides
how to spell them (containerd ``certs.d/NS/hosts.toml``, k3s ``mirrors``/``rewrite``/
``tls``, Docker and Podman ``certs.d`` directories).  Credentials always stay keyed
by ``host``: behind a mirror, the host containerd contacts is the mirror's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from generator.messages import inputs as M
from generator.profile.checker import Checker, kind_of
from generator.core.hosts import host_problem
from generator.profile.model import TlsSpec

TLS_KEYS = ("ca_file", "cert_file", "key_file")
DOCKER_HUB = "docker.io"
# Names that all mean Docker Hub; image references say docker.io (or nothing).
_HUB_ALIASES = ("docker.io", "registry-1.docker.io", "index.docker.io")
_PATH_RE = re.compile(r"^/v2(/[a-z0-9]+(?:[._-][a-z0-9]+)*)+$")


def namespace_of(mirror_for: str) -> str:
    """The registry name as image references spell it (``registry-1.docker.io`` -> ``docker.io``)."""
    return DOCKER_HUB if mirror_for in _HUB_ALIASES else mirror_for


def upstream_server(namespace: str) -> str:
    """The URL containerd contacts for ``namespace`` when no mirror answers."""
    return "https://registry-1.docker.io" if namespace == DOCKER_HUB else f"https://{namespace}"


def check_route(c: Checker, m: dict, p: tuple, base: Path) -> tuple[str | None, str | None, TlsSpec | None]:
    """Validate ``mirror_for``, ``path`` and ``tls`` of one registry entry."""
    host = m.get("host")
    mirror_for = None
    if "mirror_for" in m:
        raw = m["mirror_for"]
        problem = None if raw in _HUB_ALIASES else host_problem(raw)
        if problem:
            c.report(M.MIRROR_HOST, p + ("mirror_for",), text=problem[0].replace("containerd keys credentials by", "mirrors are keyed by"), fix=problem[1].replace("host:", "mirror_for:"))
        elif raw == host or (isinstance(host, str) and namespace_of(raw) == namespace_of(host)):
            c.report(M.MIRROR_SELF, p + ("mirror_for",), host=raw)
        else:
            mirror_for = namespace_of(raw)
    path = None
    if "path" in m:
        raw_path = m["path"]
        if not isinstance(raw_path, str) or not raw_path:
            c.report(M.MIRROR_PATH_TYPE, p + ("path",), kind=kind_of(raw_path))
        elif "mirror_for" not in m:
            c.report(M.MIRROR_PATH_NO_MIRROR, p + ("path",))
        elif raw_path.startswith(("http://", "https://")) or "//" in raw_path:
            c.report(M.MIRROR_PATH_URL, p + ("path",), given=raw_path)
        elif not raw_path.startswith("/v2/"):
            c.report(M.MIRROR_PATH_V2, p + ("path",), given=raw_path, want=f"/v2{raw_path if raw_path.startswith('/') else '/' + raw_path}")
        elif raw_path.endswith("/"):
            c.report(M.MIRROR_PATH_SLASH, p + ("path",), want=raw_path.rstrip("/"))
        elif not _PATH_RE.match(raw_path):
            c.report(M.MIRROR_PATH_INVALID, p + ("path",), given=raw_path)
        else:
            path = raw_path
    tls = _check_tls(c, m["tls"], p + ("tls",), base) if "tls" in m else None
    return mirror_for, path, tls


def _check_tls(c: Checker, value: Any, p: tuple, base: Path) -> TlsSpec | None:
    m = c.mapping(value, p, "tls", "tls:\n  ca_file: certs/registry-ca.pem")
    if m is None:
        return None
    c.keys(m, TLS_KEYS, p)
    if not m:
        c.report(M.TLS_EMPTY, p)
        return None
    if ("cert_file" in m) != ("key_file" in m):
        have, need = ("cert_file", "key_file") if "cert_file" in m else ("key_file", "cert_file")
        c.report(M.TLS_PAIR, p, have=have, need=need)
        return None
    files: dict[str, Path] = {}
    for key in TLS_KEYS:
        if key not in m:
            continue
        raw = c.string(m, key, p)
        if raw is None:
            return None
        candidate = Path(raw)
        if not candidate.is_absolute():
            resolved = Path(os.path.normpath(base / candidate))
            if not os.path.normpath(resolved.absolute()).startswith(os.path.normpath(base.absolute()) + os.sep):
                c.report(M.TLS_OUTSIDE, p + (key,), given=raw)
                return None
            candidate = resolved
        files[key] = candidate
    return TlsSpec(at=c.at(p), **files)


def route_properties() -> dict[str, Any]:
    """JSON Schema of the routing fields of a registry entry (for schema.py)."""
    file = {"type": "string", "description": "File on the machine running regauth, relative to this profile's folder (or absolute)."}
    return {
        "mirror_for": {
            "type": "string",
            "description": "This host is a mirror of that registry, as image references name it (docker.io). Credentials stay keyed by host (the mirror contacted).",
            "examples": ["docker.io", "ghcr.io"],
        },
        "path": {
            "type": "string",
            "pattern": _PATH_RE.pattern,
            "description": "Mirror path prefix used as is (containerd override_path; k3s rewrite), e.g. an Artifact Registry remote repository: /v2/PROJECT/REPO.",
        },
        "tls": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "ca_file": {**file, "description": "PEM CA certificate that signed the registry's certificate (private CA)."},
                "cert_file": {**file, "description": "PEM client certificate (mutual TLS); needs key_file."},
                "key_file": {**file, "description": "PEM key of the client certificate; mode 0600, not a symlink."},
            },
            "dependentRequired": {"cert_file": ["key_file"], "key_file": ["cert_file"]},
        },
    }
