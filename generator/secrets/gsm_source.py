"""``source: gcp-secret-manager`` with ``fetch: build``: the bridge from profile specs to
:mod:`generator.secrets.gcp_secret_manager` (which imports Google libraries lazily).

Specs are grouped by (credentials file, endpoint) so each group shares one client and
one concurrent fetch; every distinct secret version is fetched once per run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from generator.errors import Problem
from generator.messages import inputs as M
from generator.profile.model import SecretSpec
from generator.secrets.gcp_secret_manager import GsmOptions, GsmRef, fetch_secrets, validate_options
from generator.secrets.value import SecretValue


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
