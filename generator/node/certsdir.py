"""Docker / containers ``certs.d`` directories."""

from typing import List

from .files import Context, Outcome


def certs_dir_edits(outcome: Outcome, ctx: Context, certs_dir: str, creds: List[dict], restart: bool = False) -> None:
    """Docker / containers ``certs.d/HOST/{ca.crt,client.cert,client.key}`` (read per pull)."""
    for cred in creds:
        tls = cred.get("tls")
        if not tls:
            continue
        base = "%s/%s/" % (certs_dir.rstrip("/"), cred["host"])
        if "ca" in tls:
            outcome.add(ctx, base + "ca.crt", tls["ca"].encode("ascii"), 0o644, restart)
        if "cert" in tls:
            outcome.add(ctx, base + "client.cert", tls["cert"].encode("ascii"), 0o644, restart)
            outcome.add(ctx, base + "client.key", tls["key"].encode("ascii"), 0o600, restart)
