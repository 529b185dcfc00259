"""Registry host checks: containerd looks credentials up by the exact host it contacts.

There is no globbing, no scheme and no path in that lookup (containerd's
``registry.configs`` keys, k3s ``registries.yaml`` keys, Docker ``auths`` keys), so a
host that is not exactly ``name[:port]`` silently never matches and pulls go
anonymous.  Every message names the hosts to write instead.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from generator.core.keylike import looks_like_key

# Artifact Registry multi-region and common regional Docker hosts, for suggestions.
GAR_EXAMPLES = (
    "europe-docker.pkg.dev",
    "us-docker.pkg.dev",
    "asia-docker.pkg.dev",
    "europe-west1-docker.pkg.dev",
    "us-central1-docker.pkg.dev",
)

# An image reference names a port only when written (europe-docker.pkg.dev/P/R/I has
# none), and containerd's default endpoint https://HOST adds none, so HOST:443 and
# HOST:80 match no pull.
DEFAULT_PORTS = ("443", "80")

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?:{_LABEL})(?:\.{_LABEL})*(?::(?P<port>[0-9]{{1,5}}))?$")
_IPV6_RE = re.compile(r"^\[[0-9a-f:.]+\](?::(?P<port>[0-9]{1,5}))?$")


class HostProblem(NamedTuple):
    """What is wrong with a registry host, what to write instead, and which mistake it is
    (``kind``: the last part of its catalogue code, e.g. ``wildcard`` -> ``registry-host-wildcard``)."""

    text: str
    fix: str
    kind: str


# Every kind host_problem returns, in the order it checks them.
HOST_MISTAKES = ("empty", "key", "spaces", "scheme", "wildcard", "path", "upper-case", "docker-io", "invalid", "port-range", "default-port")


def host_problem(host: object) -> HostProblem | None:
    """Return ``(what is wrong, what to write instead, kind)`` or None when the host is exact."""
    if not isinstance(host, str) or not host:
        return HostProblem("the registry host must be a non-empty string", "write the exact host, e.g. host: europe-docker.pkg.dev", "empty")
    if looks_like_key(host):  # quoted here as a description only (see generator.errors.Problem)
        return HostProblem(f"'{host}' is not a registry host", "write the exact host from your image references, e.g. host: europe-docker.pkg.dev", "key")
    stripped = host.strip()
    if stripped != host:
        return HostProblem("the host has leading or trailing spaces", f"write host: {stripped}", "spaces")
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$", host)
    if m:
        rest = m.group(2).split("/", 1)[0]
        return HostProblem(
            f"'{host}' has a scheme ({m.group(1)}://); containerd keys credentials by bare host, so this entry never matches",
            f"write host: {rest.lower()}",
            "scheme",
        )
    if "*" in host or "?" in host:
        suggestion = _wildcard_suggestion(host)
        return HostProblem(
            f"'{host}' is a wildcard; containerd matches the exact host it contacts (no globbing), "
            "so this credential is never used and pulls fail with 'failed to fetch anonymous token'",
            f"write one registry per host you pull from, e.g. {suggestion}",
            "wildcard",
        )
    if "/" in host:
        bare = host.split("/", 1)[0]
        return HostProblem(
            f"'{host}' has a path; credentials are keyed by host only (the path is part of the image name, not the registry)",
            f"write host: {bare.lower()} (and keep /{host.split('/', 1)[1]} in your image references)",
            "path",
        )
    if host != host.lower():
        return HostProblem(
            f"'{host}' has upper-case letters; hosts are matched as written and image references use lower case",
            f"write host: {host.lower()}",
            "upper-case",
        )
    if host in ("docker.io", "index.docker.io"):
        return HostProblem(
            f"'{host}' is not the host containerd contacts for Docker Hub",
            "write host: registry-1.docker.io",
            "docker-io",
        )
    if not (_HOST_RE.match(host) or _IPV6_RE.match(host)):
        return HostProblem(f"'{host}' is not a valid host[:port]", "write a DNS name or IP, optionally with :port, e.g. registry.example.com:5000", "invalid")
    m2 = _HOST_RE.match(host) or _IPV6_RE.match(host)
    port = m2.group("port") if m2 else None
    if port and not (0 < int(port) < 65536):
        return HostProblem(f"port {port} is out of range", "use a port between 1 and 65535", "port-range")
    if port in DEFAULT_PORTS:
        bare = host[: -len(port) - 1]
        return HostProblem(
            f"'{host}' names the default port {port}; containerd looks credentials up by the host as written in the image "
            f"reference ({bare}/PROJECT/IMAGE carries no port) and contacts https://{bare}, so this entry never matches",
            f"write host: {bare} (as in your image references)",
            "default-port",
        )
    return None


def is_google_registry(host: str) -> bool:
    """Artifact Registry (``*-docker.pkg.dev``, ``*.pkg.dev``) or Container Registry
    (``gcr.io``, ``*.gcr.io``): the registries that accept a Google access token."""
    name = host.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()  # also a URL-ish key from a node's file
    return name.endswith(".pkg.dev") or name == "gcr.io" or name.endswith(".gcr.io")


def _wildcard_suggestion(host: str) -> str:
    if "pkg.dev" in host:
        return "host: " + ", host: ".join(GAR_EXAMPLES[:3]) + " (the region of your Artifact Registry repository)"
    if "gcr.io" in host:
        return "host: gcr.io, host: eu.gcr.io, host: us.gcr.io"
    concrete = host.replace("*.", "").replace("*", "")
    return f"host: registry.{concrete.strip('.')}" if concrete else "host: registry.example.com"
