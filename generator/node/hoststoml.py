"""containerd ``certs.d/NAMESPACE/hosts.toml`` files (mirrors, TLS)."""

import json
from typing import List, Optional

from .errors import ApplyError
from .files import Context, Outcome
from .tomlparse import TOMLError, loads
from .tomltext import toml_key, toml_string, toml_value


HOSTS_MARK = "# regauth managed hosts.toml; host entries written by regauth: "


def _tls_of(creds: List[dict], host: Optional[str]) -> dict:
    for cred in creds:
        if host is not None and cred["host"] == host:
            return cred.get("tls") or {}
    return {}


def hosts_toml(entry: dict, creds: List[dict], existing: Optional[str], shown: str) -> str:
    """One ``certs.d/NAMESPACE/hosts.toml``: our server/TLS/mirrors first, then what the
    file already had that is not ours (its other ``[host]`` entries and settings)."""
    top: dict = {"server": entry["server"]}
    tls = _tls_of(creds, entry.get("tls_host"))
    if "ca" in tls:
        top["ca"] = "ca.crt"
    if "cert" in tls:
        top["client"] = [["client.cert", "client.key"]]
    ours: dict = {}
    for mirror in entry.get("mirrors", []):
        table: dict = {"capabilities": ["pull", "resolve"]}
        if mirror.get("override_path"):
            table["override_path"] = True
        mtls = _tls_of(creds, mirror.get("tls_host"))
        if "ca" in mtls:
            table["ca"] = "../%s/ca.crt" % mirror["tls_host"]
        if "cert" in mtls:
            table["client"] = [["../%s/client.cert" % mirror["tls_host"], "../%s/client.key" % mirror["tls_host"]]]
        ours[mirror["url"]] = table
    keep_top: dict = {}
    keep_hosts: dict = {}
    if existing is not None and existing.strip():
        previous: list = []
        for line in existing.splitlines():
            if line.startswith(HOSTS_MARK):
                try:
                    previous = json.loads(line[len(HOSTS_MARK):])
                except ValueError:
                    previous = []
        try:
            doc = loads(existing)  # the node's own reader: the same on every Python
        except TOMLError as exc:
            raise ApplyError("%s:%d: not valid TOML (%s); fix or remove it" % (shown, exc.line, exc.reason), code="node-config-syntax")
        for key, value in doc.items():
            if key == "host" and isinstance(value, dict):
                for url, table in value.items():
                    if url not in ours and url not in previous:
                        keep_hosts[url] = table
            elif key not in top:
                keep_top[key] = value
    lines = [HOSTS_MARK + json.dumps(sorted(ours))]
    for key, value in list(top.items()) + list(keep_top.items()):
        lines.append("%s = %s" % (toml_key(key), toml_value(value)))
    for url, table in list(ours.items()) + list(keep_hosts.items()):
        lines.append("")
        lines.append("[host.%s]" % toml_string(url))
        for key, value in table.items():
            lines.append("  %s = %s" % (toml_key(key), toml_value(value)))
    return "\n".join(lines) + "\n"


def hosts_edits(outcome: Outcome, ctx: Context, certs_dir: str, step: dict, creds: List[dict]) -> None:
    """Every certs.d file of the plan: hosts.toml per namespace, CA / client files per host.
    containerd reads hosts.toml at each pull, so none of these needs a restart."""
    for entry in step.get("hosts", []):
        base = "%s/%s/" % (certs_dir.rstrip("/"), entry["dir"])
        tls = _tls_of(creds, entry.get("tls_host"))
        if "ca" in tls:
            outcome.add(ctx, base + "ca.crt", tls["ca"].encode("ascii"), 0o644, restart=False)
        if "cert" in tls:
            outcome.add(ctx, base + "client.cert", tls["cert"].encode("ascii"), 0o644, restart=False)
            outcome.add(ctx, base + "client.key", tls["key"].encode("ascii"), 0o600, restart=False)
        path = base + "hosts.toml"
        text = hosts_toml(entry, creds, ctx.read(path), path)
        try:
            loads(text)
        except TOMLError as exc:
            raise ApplyError("self-check failed: %s would not parse (line %d: %s)" % (path, exc.line, exc.reason), code="node-self-check")
        outcome.add(ctx, path, text.encode("utf-8"), 0o644, restart=False)
