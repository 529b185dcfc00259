"""``regauth verify PROFILE [--image REF]``: replay containerd's auth flow per registry.

Why replay rather than trust the config: a key can be well-formed and still be
refused (deleted, disabled, another account, no ``roles/artifactregistry.reader``).
For every registry of the profile, with credentials resolved exactly as ``render``
resolves them (:class:`~generator.secrets.resolve.SecretResolver`):

1. ``GET https://HOST/v2/`` and read the ``WWW-Authenticate`` challenge;
2. the token request containerd makes: OAuth2 password grant (POST), then GET with
   HTTP Basic when the POST answers 400/401/404/405;
3. with ``--image``: ``HEAD /v2/NAME/manifests/REF`` with that token.

Each registry gets OK or FAILED with the likely cause and what to check.  Secrets
never leave: not printed, not in argv, and registry error text is scrubbed of them.
Exit codes: 0 every registry OK, 1 one failed, 2 invalid profile (raised as InvalidInput).
"""

from __future__ import annotations

import argparse
import base64
import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from generator.core.hosts import is_google_registry as is_gar_host
from generator.core.imageref import BadReference, ImageRef, kubelet_match, parse_image
from generator.errors import EXIT_OK, EXIT_RUNTIME, InvalidInput
from generator.messages import Message
from generator.messages import inputs as M
from generator.messages import results as R
from generator.registryclient import (
    Challenge,
    RegistryClient,
    Response,
    Unreachable,
    basic_header,
)
from generator.secrets.resolve import Credential


@dataclass
class Result:
    host: str
    status: str  # ok | failed | skipped
    code: str  # the catalogue's code for this outcome (generator.messages.results)
    summary: str
    cause: str = ""
    checks: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # what was sent and answered (no secrets)

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "status": self.status, "code": self.code, "summary": self.summary, "cause": self.cause, "checks": self.checks, "steps": self.steps}


class _Failed(Exception):
    def __init__(self, code: Message, summary: str, cause: str, checks: list[str]) -> None:
        super().__init__(summary)
        self.code, self.summary, self.cause, self.checks = code.code, summary, cause, checks


def run(args: argparse.Namespace, gsm_settings: object | None = None) -> int:
    from generator.profiles import load_all
    from generator.secrets.resolve import SecretResolver

    image: ImageRef | None = None
    if args.image:
        try:
            image = parse_image(args.image)
        except BadReference as exc:
            raise InvalidInput([M.VERIFY_IMAGE.problem("--image", detail=str(exc))]) from None
    if not args.timeout > 0:
        raise InvalidInput([M.VERIFY_TIMEOUT.problem("--timeout")])
    if args.ca_file and not Path(args.ca_file).is_file():
        raise InvalidInput([M.VERIFY_CA_MISSING.problem(args.ca_file)])
    provider = getattr(args, "provider", None)
    if provider and (args.profile or image is None):
        raise InvalidInput([M.VERIFY_PROVIDER_ARGS.problem("--provider")])
    if not provider and not args.profile:
        raise InvalidInput([M.VERIFY_NOTHING.problem("verify")])
    try:
        client = RegistryClient(timeout=args.timeout, ca_file=args.ca_file)
    except (ssl.SSLError, OSError):
        raise InvalidInput([M.VERIFY_CA_INVALID.problem(args.ca_file or "--ca-file")]) from None
    if provider:
        assert image is not None
        results = [verify_provider(client, provider, getattr(args, "provider_root", None), image, args.timeout)]
        creds: list[Credential] = []
    else:
        profiles, _warnings = load_all([Path(args.profile)])
        creds = SecretResolver(gsm_settings).credentials(profiles[0])
        results = [verify_registry(client, cred, image) for cred in creds]
    if not provider and image is not None and not any(c.host == image.host for c in creds):
        results.append(
            Result(image.host, "failed", R.NO_REGISTRY.code, f"the profile has no registry '{image.host}', the host {image.text} is pulled from",
                   "containerd would find no credential for it and pull anonymously ('failed to fetch anonymous token')",
                   [f"add a registry with host: {image.host} to {args.profile}"])
        )
    ok = all(r.status != "failed" for r in results)
    if args.json:
        print(json.dumps({"profile": str(args.profile or args.provider), "ok": ok, "image": image.text if image else "", "registries": [r.as_dict() for r in results]}, indent=2))
    else:
        _print(args.profile or f"provider {args.provider}", results)
    return EXIT_OK if ok else EXIT_RUNTIME


def _print(profile: str, results: list[Result]) -> None:
    print(f"regauth verify: {profile}")
    width = max((len(r.host) for r in results), default=0)
    for r in results:
        print(f"  {r.status.upper():<7} {r.host:<{width}}  [{r.code}] {r.summary}")
        pad = " " * 10
        if r.cause:
            print(f"{pad}cause: {r.cause}")
        for check in r.checks:
            print(f"{pad}check: {check}")
    good = sum(r.status == "ok" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    print(f"{good} of {len(results)} registr{'y' if len(results) == 1 else 'ies'} OK" + (f", {skipped} skipped" if skipped else ""))


def verify_provider(client: RegistryClient, program: str, root: str | None, image: ImageRef, timeout: float) -> Result:
    """What kubelet does, then what containerd does: run the credential provider with a
    v1 CredentialProviderRequest for ``image``, take the ``auth`` entry that matches it
    (kubelet's glob rules), and replay the token exchange with those credentials."""
    import subprocess

    from generator.secrets.value import SecretValue

    request = {"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest", "image": image.text}
    argv = [program] + (["--root", root] if root else [])
    try:
        proc = subprocess.run(argv, input=json.dumps(request).encode(), capture_output=True, timeout=max(timeout, 30), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Result(image.host, "failed", R.PROVIDER_NOT_RUN.code, f"could not run {program}", type(exc).__name__, ["is it executable (chmod 755) and its #! interpreter installed?"])
    if proc.returncode != 0:
        # The provider's stderr is one line by contract and never a secret.
        return Result(image.host, "failed", R.PROVIDER_FAILED.code, f"{program} exited {proc.returncode}", proc.stderr.decode("utf-8", "replace").strip()[:500], ["run it by hand with the same request to see the error"])
    try:
        answer = json.loads(proc.stdout)
        matches = [(k, v) for k, v in (answer.get("auth") or {}).items() if kubelet_match(k, image)]
    except (ValueError, AttributeError):
        return Result(image.host, "failed", R.PROVIDER_ANSWER.code, f"{program} did not answer with a CredentialProviderResponse", "", ["it must print one JSON document on stdout"])
    if not matches:
        return Result(image.host, "failed", R.PROVIDER_NO_AUTH.code, f"the provider has no credentials for {image.registry} (empty auth)", "kubelet would pull anonymously",
                      ["check the provider's registries (regauth: the profile's registries and matchImages)"])  # fmt: skip
    key, entry = matches[0]
    password = entry.get("password") if isinstance(entry, dict) else None
    if not isinstance(password, str) or not isinstance(entry.get("username"), str):
        return Result(image.host, "failed", R.PROVIDER_ANSWER.code, f"the provider's auth entry for {key} has no username/password", "", [])
    cred = Credential(image.host, entry["username"], "provider answer", password=SecretValue(password.encode("utf-8"), f"{program} answer"))
    result = verify_registry(client, cred, image)
    result.steps.insert(0, f"provider {program}: auth for {key} (username {entry['username']}, cacheKeyType {answer.get('cacheKeyType')}, cacheDuration {answer.get('cacheDuration')})")
    return result


def verify_registry(client: RegistryClient, cred: Credential, image: ImageRef | None) -> Result:
    """containerd's flow for one registry; never raises for registry or network trouble."""
    if cred.identity is not None:
        return Result(cred.host, "skipped", R.SKIPPED_VM_IDENTITY.code, "gcp-vm-identity: the token exists only on the VM (its metadata server); nothing to verify here",
                      checks=["on the VM: regauth-credential-provider answers for an image of this host"])
    if cred.password is None:
        return Result(cred.host, "skipped", R.SKIPPED_AT_BOOT.code, f"secret '{cred.secret_name}' is fetched on the VM at boot; nothing to verify here",
                      checks=["run regauth verify with a profile whose secret uses fetch: build, or check on the VM"])
    password = cred.password.text()
    steps: list[str] = []
    try:
        summary = _flow(client, cred, password, image if image is not None and image.host == cred.host else None, steps)
    except _Failed as failed:
        return Result(cred.host, "failed", failed.code, _scrub(failed.summary, password), _scrub(failed.cause, password), failed.checks, steps)
    return Result(cred.host, "ok", R.OK.code, summary, steps=steps)


def _flow(client: RegistryClient, cred: Credential, password: str, image: ImageRef | None, steps: list[str]) -> str:
    host = cred.host
    try:
        resp, challenge = client.ping(host)
    except Unreachable as exc:
        raise _unreachable(host, exc) from None
    steps.append(f"GET https://{host}/v2/ -> {resp.status}" + (f" ({challenge.scheme} challenge)" if challenge.scheme else ""))
    scope = f"repository:{image.repository}:pull" if image else challenge.params.get("scope", "")
    authorization = ""
    how = ""
    if resp.status == 200:
        how = "the registry needs no credentials for /v2/ (anonymous access)"
    elif resp.status == 401 and challenge.scheme == "bearer" and challenge.params.get("realm"):
        token, how = _token(client, cred, password, challenge, scope, steps)
        authorization = f"Bearer {token}"
    elif resp.status == 401 and challenge.scheme == "basic":
        authorization = basic_header(cred.username, password)
        try:
            again = client.request("GET", f"https://{host}/v2/", {"Authorization": authorization})
        except Unreachable as exc:
            raise _unreachable(host, exc) from None
        steps.append(f"GET https://{host}/v2/ with Basic -> {again.status}")
        if again.status != 200:
            raise _rejected(cred, password, [("GET with Basic", again.status)], again)
        how = f"Basic auth accepted as {cred.username}"
    else:
        raise _Failed(R.NO_CHALLENGE, f"GET https://{host}/v2/ answered {resp.status} without a usable challenge",
                      "this is not a registry API endpoint, or a proxy/load balancer answers instead",
                      [f"curl -sv https://{host}/v2/ shows what answers"])
    if image is None:
        return how + ("" if scope else "; no repository checked (pass --image to check pull permission)")
    try:
        m = client.manifest(host, image.repository, image.reference, authorization)
    except Unreachable as exc:
        raise _unreachable(host, exc) from None
    steps.append(f"HEAD https://{host}/v2/{image.repository}/manifests/{image.reference} -> {m.status}")
    if m.status == 200:
        digest = m.headers.get("docker-content-digest", "")
        return f"{how}; {image.repository}:{image.reference} readable" + (f" ({digest})" if digest else "")
    tags = None
    if m.status == 404:  # repository missing, or only the tag? The tag list tells (registries answer NAME_UNKNOWN).
        try:
            tags = client.request("GET", f"https://{host}/v2/{image.repository}/tags/list?n=20", {"Authorization": authorization} if authorization else {})
            steps.append(f"GET https://{host}/v2/{image.repository}/tags/list -> {tags.status}")
        except Unreachable:
            tags = None
    raise _manifest_failure(cred, image, m, tags)


def _token(client: RegistryClient, cred: Credential, password: str, challenge: Challenge, scope: str, steps: list[str]) -> tuple[str, str]:
    realm = challenge.params["realm"]
    try:
        resp, tried = client.token(challenge, cred.username, password, scope)
    except Unreachable as exc:
        raise _unreachable(realm.split("://", 1)[-1].split("/", 1)[0], exc, token=True) from None
    names = {"POST": "POST (OAuth2 password grant)", "GET": "GET (Basic)"}
    for method, status in tried:
        steps.append(f"{names[method]} {realm} scope={scope or '-'} -> {status}")
    if resp.status == 200:
        doc = resp.json()
        token = doc.get("token") or doc.get("access_token")
        if isinstance(token, str) and token:
            return token, f"token via {names[tried[-1][0]]} as {cred.username}"
        raise _Failed(R.NO_TOKEN, "the token server answered 200 without a token", "the realm is not a registry token endpoint", [f"the challenge's realm: {realm}"])
    raise _rejected(cred, password, tried, resp)


def _rejected(cred: Credential, password: str, tried: list[tuple[str, int]], resp: Response) -> _Failed:
    """The registry refused the credentials: name the likely cause."""
    shown = ", then ".join(f"{'GET with Basic' if m == 'GET' else m} {s}" for m, s in tried)
    detail = _registry_message(resp)
    # A service-account key (Artifact Registry, or a registry that takes GAR's usernames) gets key advice.
    gar = is_gar_host(cred.host) or cred.username in ("_json_key", "_json_key_base64")
    email = _client_email(cred.username, password)
    who = f" ({email})" if email else ""
    hint = _password_shape_hint(cred.username, password)
    if resp.status == 403:
        cause = (f"the credentials were accepted but the account{who} may not pull"
                 + (": it lacks roles/artifactregistry.reader on the repository or project" if gar else ""))
        checks = [_iam_check(email)] if gar else ["the account's pull permission on the registry"]
        return _Failed(R.TOKEN_DENIED, f"token request denied: {shown}{detail}", cause, checks)
    if hint:
        cause = hint
    elif gar:
        cause = (f"the registry rejected the key{who}. It is well-formed (regauth checked it loads), so it is the wrong key, "
                 "a deleted or disabled key, a disabled service account, or (Artifact Registry answers 401 for this too) "
                 "an account without roles/artifactregistry.reader")
    else:
        cause = "the registry rejected the username/password"
    checks = []
    if gar and email:
        checks += [f"gcloud iam service-accounts keys list --iam-account={email} (the key's private_key_id must be listed, not disabled)",
                   f"gcloud iam service-accounts describe {email} (not disabled)", _iam_check(email)]
    elif gar:
        checks.append("the secret holds the service-account key JSON as downloaded (gcloud iam service-accounts keys create)")
    else:
        checks.append("log in by hand with the same user and password (docker login / skopeo login) to confirm")
    return _Failed(R.CREDENTIALS_REFUSED, f"credentials refused: {shown}{detail}", cause, checks)


def _manifest_failure(cred: Credential, image: ImageRef, m: Response, tags: Response | None) -> _Failed:
    gar = is_gar_host(cred.host)
    code = m.error_code()
    name = f"{image.repository}:{image.reference}"
    if m.status == 404:
        if tags is not None and tags.status == 404:
            code = tags.error_code() or code
        if code == "NAME_UNKNOWN" or tags is None or tags.status != 200:
            what = "repository" if code == "NAME_UNKNOWN" or (tags is not None and tags.status == 404) else "repository, image or tag"
            return _Failed(R.REPOSITORY_NOT_FOUND, f"credentials accepted; {name}: {what} not found (404{', ' + code if code else ''})",
                           f"the {what} does not exist at {cred.host}",
                           [f"the image path: {cred.host}/PROJECT/REPOSITORY/IMAGE (gcloud artifacts docker images list {cred.host}/PROJECT/REPOSITORY)"
                            if gar else f"the repository name {image.repository} at {cred.host}"])
        listed = tags.json().get("tags") if tags is not None else None
        some = f" (it has: {', '.join(str(t) for t in listed[:5])}{', ...' if len(listed) > 5 else ''})" if isinstance(listed, list) and listed else ""
        return _Failed(R.TAG_NOT_FOUND, f"credentials accepted; {name}: tag or digest not found (404{', ' + code if code else ''})", f"the repository exists but has no '{image.reference}'{some}",
                       [f"gcloud artifacts docker tags list {cred.host}/{image.repository}" if gar else "the tag exists (skopeo list-tags)"])
    if m.status in (401, 403):
        cause = ("the account may not read this repository: grant roles/artifactregistry.reader on the repository or project"
                 if gar else f"the token does not grant pull on {image.repository}")
        return _Failed(R.READ_DENIED, f"credentials accepted; reading {name} refused ({m.status}{', ' + code if code else ''})", cause,
                       [_iam_check("")] if gar else ["the account's permissions on the repository"])
    return _Failed(R.UNEXPECTED, f"manifest request for {name} answered {m.status}", "an unexpected registry answer", [f"curl -sv -X HEAD https://{cred.host}/v2/{image.repository}/manifests/{image.reference}"])


def _unreachable(host: str, exc: Unreachable, token: bool = False) -> _Failed:
    what = "the token server " if token else ""
    if exc.kind == "tls":
        return _Failed(R.TLS, f"TLS failure talking to {what}{host}: {exc.detail}",
                       "the certificate is not trusted here (private CA or TLS-intercepting proxy), names another host, or the port is not TLS",
                       [("--ca-file CA.pem (or SSL_CERT_FILE) for a private CA; the node must trust it too "
                        "(update-ca-certificates, or ca = ... in containerd's hosts.toml)")])
    causes = {
        "refused": ("nothing listens there: the registry is down or the port is wrong", [f"the host and port in the profile: {host}"]),
        "timeout": ("no answer within the timeout: firewall, proxy or a registry that hangs", ["egress rules and HTTPS_PROXY", "--timeout S for a slow link"]),
        "dns": ("the name does not resolve from this machine", ["the host name in the profile", "DNS / /etc/hosts"]),
        "network": ("the network path failed", ["connectivity to the registry"]),
    }
    cause, checks = causes.get(exc.kind, causes["network"])
    return _Failed(R.UNREACHABLE, f"cannot reach {what}{host}: {exc.detail}", cause, checks)


def _iam_check(email: str) -> str:
    member = f"serviceAccount:{email}" if email else "serviceAccount:EMAIL"
    return f"gcloud artifacts repositories add-iam-policy-binding REPOSITORY --location=LOCATION --member={member} --role=roles/artifactregistry.reader"


def _client_email(username: str, password: str) -> str:
    """The key's account (an identity, not a secret) to name in checks."""
    raw: bytes | None = None
    if username == "_json_key":
        raw = password.encode()
    elif username == "_json_key_base64":
        try:
            raw = base64.b64decode(password, validate=True)
        except ValueError:
            raw = None
    if raw is None:
        return ""
    try:
        info = json.loads(raw)
    except ValueError:
        return ""
    email = info.get("client_email") if isinstance(info, dict) else None
    return email if isinstance(email, str) and "@" in email and len(email) < 200 else ""


def _password_shape_hint(username: str, password: str) -> str:
    """A username/password pairing Artifact Registry cannot accept, named without quoting it."""
    stripped = password.lstrip()
    if username == "_json_key_base64" and stripped.startswith("{"):
        return "the password is key JSON but the username is _json_key_base64 (which expects its base64): use _json_key, or base64 the key"
    if username == "_json_key" and not stripped.startswith("{"):
        try:
            if base64.b64decode(stripped, validate=True).lstrip().startswith(b"{"):
                return "the password is base64 of the key but the username is _json_key (which expects the JSON): use _json_key_base64"
        except ValueError:
            pass
        return "the username is _json_key but the password is not key JSON"
    if username == "oauth2accesstoken":
        return "oauth2accesstoken passwords are access tokens that expire after about an hour"
    return ""


def _registry_message(resp: Response) -> str:
    errors = resp.json().get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        text = " ".join(str(errors[0].get(k) or "") for k in ("code", "message")).strip()
        return f": {text[:200]}" if text else ""
    return ""


def _scrub(text: str, password: str) -> str:
    """Belt and braces: a registry echoing the secret must not make us print it."""
    if not password:
        return text
    for secret in {password, base64.b64encode(password.encode()).decode(), password.strip()}:
        if len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    return text
