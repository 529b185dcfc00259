"""What ``regauth verify`` found for each registry (``--json``: ``registries[].code``).

verify writes each result's summary, cause and checks itself (they name the host,
image, status and account it saw); the codes here are the contract scripts match on.
"""

from __future__ import annotations

from generator.messages import entry

OK = entry("verify-ok", "verify", "the registry accepted the credentials (and, with --image, the image is readable)")
SKIPPED_VM_IDENTITY = entry("verify-skipped-vm-identity", "verify", "skipped: a gcp-vm-identity token exists only on the VM")
SKIPPED_AT_BOOT = entry("verify-skipped-at-boot", "verify", "skipped: the secret is fetched on the VM at boot, not here")
NO_REGISTRY = entry("verify-no-registry-for-image", "verify", "the profile has no registry for the host the --image is pulled from")
PROVIDER_NOT_RUN = entry("verify-provider-not-run", "verify", "the credential provider program could not be run (not executable, no interpreter, timed out)")
PROVIDER_FAILED = entry("verify-provider-failed", "verify", "the credential provider exited non-zero (its one-line error is the cause)")
PROVIDER_ANSWER = entry("verify-provider-answer", "verify", "the credential provider's answer is not a CredentialProviderResponse with a username and password")
PROVIDER_NO_AUTH = entry("verify-provider-no-auth", "verify", "the credential provider has no credentials for the image's registry")
NO_CHALLENGE = entry("verify-no-challenge", "verify", "`GET /v2/` did not answer with a usable challenge: not a registry API endpoint, or a proxy answers")
NO_TOKEN = entry("verify-no-token", "verify", "the token server answered 200 without a token")
TOKEN_DENIED = entry("verify-token-denied", "verify", "the token request was denied (403): the credentials are good, the account may not pull")
CREDENTIALS_REFUSED = entry("verify-credentials-refused", "verify", "the registry refused the credentials (wrong, deleted or disabled key or password; the likely cause is named)")
REPOSITORY_NOT_FOUND = entry("verify-repository-not-found", "verify", "credentials accepted; the --image repository does not exist")
TAG_NOT_FOUND = entry("verify-tag-not-found", "verify", "credentials accepted; the repository exists but not the --image tag or digest")
READ_DENIED = entry("verify-read-denied", "verify", "credentials accepted; reading the --image repository was refused (401/403)")
UNEXPECTED = entry("verify-unexpected-answer", "verify", "the manifest request got an answer a registry does not give")
TLS = entry("verify-tls", "verify", "TLS failure: a certificate not trusted here (private CA, intercepting proxy), for another name, or no TLS on the port")
UNREACHABLE = entry("verify-unreachable", "verify", "the registry (or its token server) cannot be reached: DNS, refused, timed out")
