"""containerd ``certs.d`` layout for mirrors and private TLS (containerd and MicroK8s).

One directory per name containerd resolves: the namespace an image reference names
(``docker.io``) holds the mirrors tried for it; a registry with ``tls`` gets its own
directory holding its CA / client files.  Mirrors are listed in profile order (the
order containerd tries them).  The apply script turns this layout into files,
merging with any ``hosts.toml`` already there; this module only decides the layout.
"""

from __future__ import annotations

from typing import Any

from generator.profile.routes import upstream_server
from generator.secrets.resolve import Credential

MIN_CONTAINERD = (1, 5)  # first release that reads certs.d/*/hosts.toml from CRI's config_path


def routed(creds: list[Credential]) -> bool:
    return any(c.mirror_for or c.tls for c in creds)


def hosts_plan(creds: list[Credential]) -> list[dict[str, Any]]:
    dirs: dict[str, dict[str, Any]] = {}
    for cred in creds:
        if cred.tls is not None:
            entry = dirs.setdefault(cred.host, {"dir": cred.host, "server": f"https://{cred.host}", "mirrors": []})
            entry["tls_host"] = cred.host
    for cred in creds:  # profile order: containerd tries mirrors in file order
        if not cred.mirror_for:
            continue
        ns = cred.mirror_for
        entry = dirs.setdefault(ns, {"dir": ns, "server": upstream_server(ns), "mirrors": []})
        mirror: dict[str, Any] = {"host": cred.host, "url": f"https://{cred.host}{cred.path or ''}"}
        if cred.path:
            mirror["override_path"] = True
        if cred.tls is not None:
            mirror["tls_host"] = cred.host
        entry["mirrors"].append(mirror)
    return [dirs[name] for name in sorted(dirs)]
