"""``source: gcp-secret-manager`` with ``fetch: build``: the bridge from profile specs to
:mod:`generator.secrets.gcp_secret_manager` (which imports Google libraries lazily).

Specs are grouped by (credentials file, endpoint) so each group shares one client and
one concurrent fetch; every distinct secret version is fetched once per run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import Problem
from generator.messages import inputs as M
from generator.profile.model import FETCH_MODES, GsmSpec, SecretSpec
from generator.secrets.gcp_secret_manager import GsmOptions, GsmRef, fetch_secrets, validate_options
from generator.secrets.value import SecretValue

if TYPE_CHECKING:
    from generator.profile.checker import Checker

_GSM_NAME_RE = re.compile(r"^projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)$")
_GSM_VERSION_RE = re.compile(r"^([1-9][0-9]*|latest)$")
_GSM_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[0-9]+$")


@dataclass(frozen=True)
class GsmSettings:
    """Run-wide knobs (CLI flags); per-secret ones come from the profile."""

    transport: str = "grpc"
    timeout_total: float = 30.0
    attempts: int = 4
    concurrency: int = 16
    # Only for local emulators and tests: no credentials at all (REGAUTH_GSM_ANONYMOUS=1).
    anonymous: bool = False

    @classmethod
    def from_env(cls, **overrides: object) -> "GsmSettings":
        base = cls(anonymous=os.environ.get("REGAUTH_GSM_ANONYMOUS") == "1")
        values = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**base.__dict__, **values})  # type: ignore[arg-type]


def _endpoint_for(endpoint: str | None, transport: str) -> str | None:
    if endpoint is None:
        return None
    # gRPC wants host[:port]; REST takes the URL.  An https:// URL is a TLS host either way.
    if transport == "grpc" and endpoint.startswith("https://"):
        return endpoint[len("https://") :].rstrip("/")
    return endpoint.rstrip("/")


def fetch_gsm_specs(specs: dict[tuple, SecretSpec], settings: GsmSettings | None = None) -> dict[tuple, SecretValue | Problem]:
    settings = settings or GsmSettings.from_env()
    groups: dict[GsmOptions, dict[tuple, GsmRef]] = {}
    results: dict[tuple, SecretValue | Problem] = {}
    for key, spec in specs.items():
        assert spec.gsm is not None
        creds = spec.gsm.credentials_file
        if creds and not os.path.isabs(creds):
            creds = str(Path(spec.at.file).parent / creds)
        options = GsmOptions(
            credentials_file=creds,
            endpoint=_endpoint_for(spec.gsm.endpoint, settings.transport),
            transport=settings.transport,
            timeout_total=settings.timeout_total,
            attempts=settings.attempts,
            concurrency=settings.concurrency,
            anonymous=settings.anonymous,
        )
        wrong = validate_options(options)
        if wrong:
            results[key] = M.GSM_OPTIONS.problem(spec.at.file, spec.at.path, spec.at.line, spec.at.col, detail="; ".join(wrong))
            continue
        groups.setdefault(options, {})[key] = GsmRef(spec.gsm.project, spec.gsm.secret, spec.gsm.version)
    for options, refs in groups.items():
        fetched = fetch_secrets(list(refs.values()), options)  # raises SecretUnavailable (exit 1)
        for key, ref in refs.items():
            results[key] = fetched[ref]
    return results


def parse_gsm_block(c: Checker, s: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None:
    """The ``secrets:`` block of a ``source: gcp-secret-manager`` secret (its keys checked already), or
    None after reporting to ``c`` why it cannot be used."""
    fetch = c.choice(s, "fetch", p, FETCH_MODES, "build")
    full = c.string(s, "name", p)
    project = c.string(s, "project", p)
    secret = c.string(s, "secret", p)
    version = s.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if full is not None:
        if project or secret or "version" in s:
            c.report(M.GSM_NAME_AND_PARTS, p)
            return None
        m = _GSM_NAME_RE.match(full)
        if not m:
            c.report(M.GSM_BAD_NAME, p + ("name",), name=full)
            return None
        project, secret, version = m.groups()
    else:
        if project is None or secret is None:
            c.report(M.GSM_INCOMPLETE, p)
            return None
        version = version if version is not None else "latest"
    if not isinstance(version, str) or not _GSM_VERSION_RE.match(version):
        c.report(M.GSM_BAD_VERSION, p + ("version",) if "version" in s else p + ("name",), version=version)
        return None
    if not _GSM_ID_RE.match(secret):
        c.report(M.GSM_BAD_SECRET_ID, p, secret=secret)
        return None
    if not _PROJECT_RE.match(project):
        c.report(M.GSM_BAD_PROJECT, p, project=project)
        return None
    if version == "latest" and fetch == "build":
        c.report(M.GSM_LATEST_AT_BUILD, p)
    creds = c.string(s, "credentials_file", p, required=False)
    endpoint = c.string(s, "endpoint", p, required=False)
    if endpoint is not None and not re.match(r"^https?://[^/\s]+/?$", endpoint):
        c.report(M.GSM_BAD_ENDPOINT, p + ("endpoint",), endpoint=endpoint)
        return None
    return SecretSpec(
        name=name,
        source="gcp-secret-manager",
        at=c.at(p),
        gsm=GsmSpec(project=project, secret=secret, version=version, credentials_file=creds, endpoint=endpoint),
        fetch=fetch,
    )
