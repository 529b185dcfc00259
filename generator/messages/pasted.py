"""What doctor reads from a pasted runtime error (``regauth doctor --error``).

Each reading's title and checks name the host and image found in the text, so
:mod:`generator.doctor.errors_explain` writes them; the codes are a contract
(``--json``: ``explanations[].code``).  A pasted ``regauth-apply: FAILED [code]``
line is explained from the node entries (:mod:`.node`).
"""

from __future__ import annotations

from generator.messages import entry

OAUTH_TOKEN_REJECTED = entry("oauth-token-rejected", "pasted", "`failed to fetch oauth token ... 401`: credentials for the host were found and sent, and refused "
                             "(bad, deleted or disabled key, wrong username magic word, missing IAM)")
ANONYMOUS_TOKEN = entry("anonymous-token", "pasted", "`failed to fetch anonymous token`: no credential matched the host containerd contacted")
X509_UNKNOWN_AUTHORITY = entry("x509-unknown-authority", "pasted", "the registry's TLS certificate is not signed by a CA the node trusts")
X509_WRONG_NAME = entry("x509-wrong-name", "pasted", "the registry's certificate is for a different name than the host contacted")
FORBIDDEN = entry("forbidden", "pasted", "403: the account authenticates but may not pull (IAM `roles/artifactregistry.reader`)")
NOT_FOUND = entry("not-found", "pasted", "no such repository, image or tag")
DNS = entry("dns", "pasted", "the node cannot resolve the registry host")
NETWORK = entry("network", "pasted", "the node cannot reach the registry (connection refused or timed out)")
PLAIN_HTTP = entry("plain-http", "pasted", "the registry speaks plain HTTP but containerd used HTTPS")
RATE_LIMITED = entry("rate-limited", "pasted", "429: the registry (Docker Hub) is rate limiting pulls")
UNAUTHORIZED = entry("unauthorized", "pasted", "401 without saying whether credentials were sent")
BACKOFF = entry("backoff", "pasted", "kubelet is backing off after an earlier pull failure (paste the first error)")
