"""What a pasted error says about the files doctor read (``--error`` together with paths).

containerd's wording tells whether credentials were sent: ``failed to fetch oauth
token ... 401`` = a credential for the exact host was found, sent and rejected;
``failed to fetch anonymous token`` = none matched, none were sent.  Each reading is
matched against the findings: the credential that was sent (and what is wrong with
it), or the reason none was sent (or the contradiction, which points at a runtime
that was not restarted or reads another file).
"""

from __future__ import annotations

from generator.doctor.errors_explain import Reading
from generator.doctor.findings import FileReport, Finding

# Findings that make a sent credential fail (the registry answers 401).
CREDENTIAL_CODES = ("json-key-invalid", "json-key-base64-invalid", "key-invalid", "oauth2accesstoken", "username", "auth-field")
# Findings that make the runtime send nothing (the pull goes anonymous).
UNSENT_CODES = ("image-host", "host-key", "wrong-table", "ignored-key", "syntax", "config-path-conflict", "config-version-1")


def _where(report: FileReport, host: str) -> str:
    line = report.hosts.get(host, 0)
    return f"{report.file}:{line}" if line else report.file


def _about(finding: Finding, host: str) -> bool:
    return host in finding.path or host in finding.message


def connect(reading: Reading, reports: list[FileReport]) -> list[str]:
    """Lines tying the error's reading to the files' findings (empty when there is nothing to tie)."""
    host = reading.host or (reading.image.host if reading.image else "")
    codes = {e.code for e in reading.explanations}
    if not host or not reports or not codes & {"oauth-token-rejected", "anonymous-token"}:
        return []
    holding = [r for r in reports if host in r.hosts]
    lines: list[str] = []
    if "oauth-token-rejected" in codes:
        lines.append(f"credentials for {host} were sent and rejected; in the files checked:")
        for r in holding:
            bad = [f for f in r.findings if f.code in CREDENTIAL_CODES and _about(f, host)]
            if bad:
                for f in bad[:3]:
                    lines.append(f"  {f.file}:{f.line}: [{f.code}] explains the rejection: {f.message}")
            elif host in r.boot_hosts:
                lines.append(f"  {_where(r, host)}: the key is fetched at boot; check it with regauth verify PROFILE")
            else:
                lines.append(f"  {_where(r, host)}: holds a well-formed credential for {host}: the registry refused the key itself "
                             "(deleted or disabled key or account, or no roles/artifactregistry.reader): regauth verify PROFILE replays it")
        if not holding:
            lines.append(f"  none holds a credential for {host}, yet one was sent: the runtime read it elsewhere (kubelet's config.json or "
                         "credential provider, an imagePullSecret, or a file doctor was not given)")
    if "anonymous-token" in codes:
        lines.append(f"no credentials for {host} were sent; in the files checked:")
        unsent = [f for r in reports for f in r.findings if f.code in UNSENT_CODES and (f.code == "image-host" or _about(f, host))]
        for f in unsent[:5]:
            lines.append(f"  {f.file}:{f.line}: [{f.code}] explains it: {f.message}")
        if not unsent:
            for r in holding:
                lines.append(f"  {_where(r, host)}: has a credential for {host}, yet none was sent: the runtime was not restarted "
                             "since it was written, or the runtime that pulled reads another file (MicroK8s: its containerd-template.toml)")
            if not holding:
                lines.append(f"  none holds a credential for {host}: add one to the file the runtime reads (regauth doctor NODE --image IMAGE names it)")
    return lines
