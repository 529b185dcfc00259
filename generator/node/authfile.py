"""Docker-style ``auths`` files: Docker config.json, Podman/CRI-O auth.json (and
kubelet's config.json, see kubelet.py)."""

import base64
import json
from typing import List, Optional

from .certsdir import certs_dir_edits
from .documents import _mapping, dump_document, load_document
from .errors import ApplyError
from .files import Context, Outcome, cred_summary, proceed
from .plan import credentials
from .tomltext import toml_string


def basic_auth(username: str, password: str) -> str:
    return base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")


def auths_merge(existing: Optional[str], creds: List[dict], shown: str, helpers_conflict: str) -> str:
    """Docker-style ``auths`` (docker config.json, containers auth.json, kubelet config.json).

    Each of our keys gets ``{"auth": base64(user:pass)}``; every other key, entry and
    setting is kept.  ``helpers_conflict``: "docker" also refuses ``credsStore``
    (Docker then ignores ``auths``), "containers" refuses only ``credHelpers`` for our
    hosts, "" checks nothing (kubelet reads only ``auths``).
    """
    doc = load_document(existing, shown)
    auths = _mapping(doc, "auths", shown)
    helpers = doc.get("credHelpers") if isinstance(doc.get("credHelpers"), dict) else {}
    for cred in creds:
        for key in cred.get("keys") or [cred["host"]]:
            if helpers_conflict and (key in helpers or cred["host"] in helpers):
                raise ApplyError(
                    "%s: credHelpers sends %s to docker-credential-%s, so an auths entry would be ignored; "
                    "remove that credHelpers entry (or drop this target from the profile)" % (shown, cred["host"], helpers.get(key) or helpers.get(cred["host"])), code="node-credential-helper"
                )
            auths[key] = {"auth": basic_auth(cred["username"], cred["password"])}
    if helpers_conflict == "docker" and doc.get("credsStore"):
        raise ApplyError(
            "%s: credsStore is %r, so Docker asks docker-credential-%s for every registry and ignores auths; "
            "remove credsStore (or drop the docker target)" % (shown, doc["credsStore"], doc["credsStore"]), code="node-credential-helper"
        )
    return dump_document(doc, shown).decode("utf-8")


def auths_verify(text: str, creds: List[dict]) -> None:
    auths = json.loads(text)["auths"]
    for cred in creds:
        for key in cred.get("keys") or [cred["host"]]:
            got = base64.b64decode(auths[key]["auth"]).decode("utf-8")
            if got != "%s:%s" % (cred["username"], cred["password"]):
                raise ApplyError("self-check failed: auth for %s does not read back exactly" % key, code="node-self-check")


def prepare_auth_file(step: dict, ctx: Context) -> Outcome:
    """docker (config.json), podman and cri-o (containers auth.json) + certs.d + CRI-O drop-in."""
    units = step.get("units") or []
    out = Outcome(step["kind"], {"policy": step.get("restart", "if-running"), "units": units} if units else None)
    if not proceed(step, ctx, out):
        return out
    creds = credentials(step["registries"], ctx.fetcher)
    out.summary = cred_summary(creds)
    path = step["path"]
    new = auths_merge(ctx.read(path), creds, path, step.get("helpers_conflict", "containers"))
    auths_verify(new, creds)
    # Docker and containers tools read auth files at each pull: no restart for them.
    out.add(ctx, path, new.encode("utf-8"), 0o600, restart=False)
    if step.get("certs_dir"):
        certs_dir_edits(out, ctx, step["certs_dir"], creds)
    dropin = step.get("dropin")
    if dropin:
        text = "# Written by regauth: CRI-O reads pull credentials from this file.\n[crio.image]\nglobal_auth_file = %s\n" % toml_string(path)
        out.add(ctx, dropin, text.encode("utf-8"), 0o644, restart=True)
    if step.get("registries_conf"):
        text = step["registries_conf"]
        out.add(ctx, step["registries_conf_path"], text.encode("utf-8"), 0o644, restart=True)
    return out
