"""kubelet: config.json auths and the image credential provider config."""

import os
from typing import Optional

from .authfile import auths_merge, auths_verify
from .documents import dump_document, load_document
from .errors import ApplyError
from .files import Context, Outcome, cred_summary, proceed
from .plan import credentials


def provider_merge(existing: Optional[str], provider: dict, shown: str) -> str:
    """A CredentialProviderConfig with our provider, keeping the file's other providers."""
    doc = load_document(existing, shown)
    if doc:
        if doc.get("kind") != "CredentialProviderConfig" or doc.get("apiVersion") != "kubelet.config.k8s.io/v1":
            raise ApplyError("%s is %s %s, not kubelet.config.k8s.io/v1 CredentialProviderConfig; move it aside or point credential_provider.config elsewhere" % (shown, doc.get("apiVersion"), doc.get("kind")), code="node-config-shape")
    else:
        doc = {"apiVersion": "kubelet.config.k8s.io/v1", "kind": "CredentialProviderConfig"}
    providers = doc.get("providers") or []
    if not isinstance(providers, list):
        raise ApplyError("%s: providers is not a list; fix or remove it" % shown, code="node-config-shape")
    # The plan's JSON has sorted keys; write kubelet's documented field order instead.
    order = ("name", "apiVersion", "matchImages", "defaultCacheDuration", "args", "env")
    provider = {k: provider[k] for k in sorted(provider, key=lambda k: order.index(k) if k in order else len(order))}
    names = [p.get("name") if isinstance(p, dict) else None for p in providers]
    if provider["name"] in names:
        providers[names.index(provider["name"])] = provider
    else:
        providers.append(provider)
    doc["providers"] = providers
    return dump_document(doc, shown).decode("utf-8")


def prepare_kubelet(step: dict, ctx: Context) -> Outcome:
    out = Outcome("kubelet", {"policy": step.get("restart", "never"), "units": ["kubelet"]})
    if not proceed(step, ctx, out):
        return out
    creds = credentials(step["registries"], ctx.fetcher)
    out.summary = cred_summary(creds) if creds else "credential provider"
    if step.get("config_json") and creds:
        path = step["config_json"]
        new = auths_merge(ctx.read(path), creds, path, "")
        auths_verify(new, creds)
        # kubelet re-reads config.json when its 5-minute credential cache expires.
        out.add(ctx, path, new.encode("utf-8"), 0o600, restart=False)
    provider = step.get("provider")
    if provider:
        path = provider["config"]
        new = provider_merge(ctx.read(path), provider["entry"], path)
        out.add(ctx, path, new.encode("utf-8"), 0o644, restart=True)
    if provider and provider.get("type") == "regauth":
        from .kubeletprovider import regauth_provider_edits  # shipped only for such plans (plan.modules)

        regauth_provider_edits(out, ctx, provider)
    elif provider:
        binary = "%s/%s" % (provider["bin_dir"].rstrip("/"), provider["entry"]["name"])
        if not os.path.exists(ctx.root + binary):
            out.notes.append("%s is not installed: kubelet cannot get credentials until it is (cloud-provider-gcp releases)" % binary)
        out.notes.append(
            "kubelet must run with --image-credential-provider-config=%s --image-credential-provider-bin-dir=%s (kubeadm: KUBELET_EXTRA_ARGS)"
            % (path, provider["bin_dir"])
        )
    return out
