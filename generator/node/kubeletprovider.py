"""The kubelet step's part for regauth's own credential provider: the store the provider
answers from, and kubelet's flags where the node's distribution reads them.

The CredentialProviderConfig entry itself is merged by kubelet.provider_merge like any
other provider's.  The provider program (regauth-credential-provider) is delivered by
user-data or the image next to regauth-apply, so this step only checks it is there.
"""

import os

from .credprovider import store_bytes
from .errors import ApplyError
from .files import Context, Outcome
from .kubeletflags import DISTRIBUTIONS, detect, flags, merged


def _mode(ctx: Context, path: str, default: int) -> int:
    """Keep a file's own mode (a k3s config.yaml may hold the join token: 0600)."""
    try:
        return os.stat(ctx.root + path).st_mode & 0o777
    except FileNotFoundError:
        return default


def regauth_provider_edits(out: Outcome, ctx: Context, provider: dict) -> None:
    # Read per request by the provider: no restart.  0600: it may hold passwords.
    out.add(ctx, provider["store"], store_bytes(provider["registries"], provider["cache_seconds"]), 0o600, restart=False)
    distribution = provider.get("kubelet_flags", "none")
    if distribution == "auto":
        distribution = detect(ctx.root)
    if distribution != "none":
        if distribution not in DISTRIBUTIONS:
            raise ApplyError("unknown kubelet_flags %r in the plan; re-render with a matching regauth" % distribution, code="node-plan-invalid")
        path, restart = DISTRIBUTIONS[distribution]
        text = merged(distribution, ctx.read(path), flags(provider["config"], provider["bin_dir"]), path)
        default = 0o600 if distribution in ("k3s", "rke2") else 0o644
        out.add(ctx, path, text.encode("utf-8"), _mode(ctx, path, default), restart=True)
        policy = (out.restart or {}).get("policy", "if-running")
        out.restart = dict(restart, policy=policy)
        out.summary += "; kubelet flags in %s (%s)" % (path, distribution)
    else:
        out.notes.append(
            "kubelet must run with --image-credential-provider-config=%s --image-credential-provider-bin-dir=%s"
            % (provider["config"], provider["bin_dir"])
        )
    binary = "%s/%s" % (provider["bin_dir"].rstrip("/"), provider["entry"]["name"])
    if not os.access(ctx.root + binary, os.X_OK):
        out.notes.append("%s is missing or not executable: kubelet cannot get credentials until it is (it ships with regauth-apply)" % binary)
