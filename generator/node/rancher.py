"""k3s / RKE2 ``registries.yaml``."""

import json
from typing import List, Optional

from .certsdir import certs_dir_edits
from .documents import _mapping, dump_document, load_document
from .errors import ApplyError, log
from .files import Context, Outcome, cred_summary, proceed
from .plan import credentials


def registries_yaml_merge(existing: Optional[str], step: dict, creds: List[dict], shown: str) -> str:
    """``configs.HOST.auth`` (+ ``tls``) and ``mirrors.NS.endpoint`` / ``rewrite``, keeping
    every other host, mirror and setting of the file."""
    doc = load_document(existing, shown)
    configs = _mapping(doc, "configs", shown)
    for cred in creds:
        for key in cred.get("keys") or [cred["host"]]:
            entry = _mapping(configs, key, shown)
            entry["auth"] = {"username": cred["username"], "password": cred["password"]}
            tls = cred.get("tls")
            if tls:
                table = _mapping(entry, "tls", shown)
                base = "%s/%s/" % (step["tls_dir"].rstrip("/"), cred["host"])
                if "ca" in tls:
                    table["ca_file"] = base + "ca.crt"
                if "cert" in tls:
                    table["cert_file"] = base + "client.cert"
                    table["key_file"] = base + "client.key"
    if step.get("mirrors"):
        mirrors = _mapping(doc, "mirrors", shown)
        for mirror in step["mirrors"]:
            entry = _mapping(mirrors, mirror["namespace"], shown)
            current = entry.get("endpoint") or []
            if not isinstance(current, list):
                raise ApplyError("%s: mirrors.%s.endpoint is not a list; fix or remove it" % (shown, mirror["namespace"]), code="node-config-shape")
            entry["endpoint"] = list(mirror["endpoints"]) + [e for e in current if e not in mirror["endpoints"]]
            if mirror.get("rewrite"):
                if entry.get("rewrite") not in (None, mirror["rewrite"]):
                    log("%s: replacing the rewrite rules of mirror %s" % (shown, mirror["namespace"]))
                entry["rewrite"] = mirror["rewrite"]
    return dump_document(doc, shown).decode("utf-8")


def prepare_registries_yaml(step: dict, ctx: Context) -> Outcome:
    out = Outcome(step["kind"], {"policy": step.get("restart", "if-running"), "units": step["units"]})
    if not proceed(step, ctx, out):
        return out
    creds = credentials(step["registries"], ctx.fetcher)
    out.summary = cred_summary(creds)
    path = step["path"]
    new = registries_yaml_merge(ctx.read(path), step, creds, path)
    configs = json.loads(new)["configs"]
    for cred in creds:
        for key in cred.get("keys") or [cred["host"]]:
            if configs[key]["auth"] != {"username": cred["username"], "password": cred["password"]}:
                raise ApplyError("self-check failed: auth for %s does not read back exactly" % key, code="node-self-check")
    out.add(ctx, path, new.encode("utf-8"), 0o600)
    certs_dir_edits(out, ctx, step["tls_dir"], creds, restart=True)
    return out
