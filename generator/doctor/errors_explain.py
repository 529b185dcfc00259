"""``regauth doctor --error "TEXT"``: what a pasted containerd / crictl / kubelet error means.

The same 401 reads very differently depending on two words: containerd says
``failed to fetch oauth token`` when it *had* credentials for the host and sent them
(they were refused), and ``failed to fetch anonymous token`` when *no* credential
matched the host it contacted (the config key is wrong or not loaded).  Each rule
below is one such reading, with what to check next; several can match one text
(kubelet wraps containerd's message), most specific first.  A pasted node program
line (``regauth-apply: FAILED [code] ...``) is read by its code from the catalogue.
Every reading's code is an entry of :mod:`generator.messages` (kinds "pasted", "node").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from generator.core.imageref import BadReference, ImageRef, parse_image
from generator.messages import lookup


@dataclass(frozen=True)
class Explanation:
    code: str
    title: str  # one line: what happened
    meaning: str  # why, in the runtime's terms
    checks: tuple[str, ...]  # what to look at next, most likely first

    def __post_init__(self) -> None:
        entry = lookup(self.code)
        assert entry is not None and entry.kind in ("pasted", "node"), self.code

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "title": self.title, "meaning": self.meaning, "checks": list(self.checks)}


@dataclass
class Reading:
    """Everything understood from one pasted error."""

    explanations: list[Explanation] = field(default_factory=list)
    host: str = ""  # the registry host the runtime talked to
    image: ImageRef | None = None
    status: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "recognised": bool(self.explanations),
            "host": self.host,
            "image": self.image.text if self.image else "",
            "status": self.status,
            "explanations": [e.as_dict() for e in self.explanations],
        }


@dataclass(frozen=True)
class _Rule:
    code: str
    pattern: re.Pattern[str]
    build: object  # Callable[[Reading], Explanation]


def _host(r: Reading) -> str:
    return r.host or "the registry host"


def _oauth_rejected(r: Reading) -> Explanation:
    status = f" {r.status}" if r.status else ""
    gar = ".pkg.dev" in r.host or "gcr.io" in r.host
    checks = [
        f"regauth verify PROFILE --image {r.image.text if r.image else 'IMAGE'}: replays the token request with your key and names the cause",
        f"regauth doctor /etc: checks the stored password for {_host(r)} (mangled JSON, base64 of the wrong thing, wrong username)",
        "the username is exactly _json_key (password = key JSON) or _json_key_base64 (password = base64 -w0 of the key file)",
    ]
    if gar:
        checks += [
            "the key still exists and is enabled: gcloud iam service-accounts keys list --iam-account=EMAIL (client_email in the key)",
            "the service account is not disabled or deleted: gcloud iam service-accounts describe EMAIL",
            "it may pull: roles/artifactregistry.reader on the repository or project (Artifact Registry can answer 401 or 403 for this)",
        ]
    checks.append("an access token (oauth2accesstoken) expires after about an hour: use a key instead")
    return Explanation(
        "oauth-token-rejected",
        f"credentials for {_host(r)} were found and sent, and the registry refused them{status}",
        "'failed to fetch oauth token' means containerd had a credential for exactly this host, exchanged it for a "
        "token, and the token server said no. The host key matched; the credential itself (or the account's access) is wrong.",
        tuple(checks),
    )


def _anonymous(r: Reading) -> Explanation:
    return Explanation(
        "anonymous-token",
        f"no credentials matched {_host(r)}: containerd pulled anonymously and was refused",
        "'failed to fetch anonymous token' means containerd found no credential for the exact host it contacted, so it "
        "asked for an anonymous token, which a private registry refuses (401/403).",
        (
            (f"the credential key is exactly '{_host(r)}' (port included): no wildcard (*.pkg.dev), no https://, no path; "
            "Docker Hub is registry-1.docker.io"),
            ("regauth doctor /etc --image IMAGE finds a key that does not match, a table containerd does not read for the "
            "file's version, or a misspelled key"),
            ("the table matches the config version: version 2 -> plugins.\"io.containerd.grpc.v1.cri\", version 3 -> "
            "plugins.\"io.containerd.cri.v1.images\""),
            "containerd was restarted after config.toml changed (systemctl restart containerd; k3s and MicroK8s: restart the service)",
            "behind a mirror, the credential key is the mirror's host, not the image's",
        ),
    )


def _x509(r: Reading) -> Explanation:
    return Explanation(
        "x509-unknown-authority",
        f"the TLS certificate of {_host(r)} is not signed by a CA this node trusts",
        "TLS fails before any credential is used; this is not an auth problem.",
        (
            ("a TLS-intercepting proxy or a private registry: install its CA on the node "
            "(/usr/local/share/ca-certificates + update-ca-certificates) and restart containerd"),
            f"or per registry: /etc/containerd/certs.d/{r.host or 'HOST'}/hosts.toml with ca = \"/path/ca.crt\" (config_path must be set)",
            "regauth verify PROFILE --ca-file CA.pem reproduces it from your machine",
        ),
    )


def _x509_name(r: Reading) -> Explanation:
    return Explanation(
        "x509-wrong-name",
        "the registry's certificate is for a different name than the host contacted",
        "the image reference (or a mirror endpoint) names a host the certificate does not cover.",
        ("use the host name the certificate was issued for in the image reference or the mirror endpoint",
         "check the proxy: a corporate proxy may answer with its own certificate"),
    )


def _forbidden(r: Reading) -> Explanation:
    return Explanation(
        "forbidden",
        f"{_host(r)} accepted who you are but refused the pull (403)",
        "the credentials authenticate, but the account lacks permission on this repository.",
        (
            ("grant roles/artifactregistry.reader on the repository (or project) to the key's service account: "
            "gcloud artifacts repositories add-iam-policy-binding REPO --location=LOCATION "
            "--member=serviceAccount:EMAIL --role=roles/artifactregistry.reader"),
            "the repository is in the project you think (the path is HOST/PROJECT/REPOSITORY/IMAGE)",
            "VPC Service Controls or an organisation policy can also deny: check the audit log",
        ),
    )


def _not_found(r: Reading) -> Explanation:
    return Explanation(
        "not-found",
        "the registry has no such repository, image or tag",
        "authentication worked (or was not needed); the name does not exist where the runtime looked.",
        (
            (f"the image path and tag are exact{(': ' + r.image.text) if r.image else ''} "
            "(gcloud artifacts docker images list HOST/PROJECT/REPOSITORY --include-tags)"),
            "the location prefix matches the repository (europe-docker.pkg.dev vs europe-west1-docker.pkg.dev)",
            "an image built for another architecture only: 'no match for platform in manifest'",
        ),
    )


def _dns(r: Reading) -> Explanation:
    return Explanation("dns", f"the node cannot resolve {_host(r)}", "the pull fails before any TLS or auth.",
                       ("check the host name for typos", "check /etc/resolv.conf and the node's DNS (private Google access / Cloud DNS)"))


def _network(r: Reading) -> Explanation:
    return Explanation(
        "network",
        f"the node cannot reach {_host(r)} (connection refused or timed out)",
        "no credential is involved yet: the connection itself fails.",
        ("firewall / egress rules, NAT or Private Google Access for *.pkg.dev",
         "HTTPS_PROXY/NO_PROXY in containerd's environment (systemctl show containerd -p Environment)",
         "the registry is up and the port is right"),
    )


def _plain_http(r: Reading) -> Explanation:
    return Explanation(
        "plain-http",
        f"{_host(r)} speaks plain HTTP but containerd used HTTPS",
        "containerd uses HTTPS for every host except localhost/127.0.0.1 unless told otherwise.",
        ((f"/etc/containerd/certs.d/{r.host or 'HOST'}/hosts.toml with server = \"http://{r.host or 'HOST'}\" (and config_path set), "
         "or (1.x, no config_path) a mirror endpoint \"http://...\""),),
    )


def _rate_limited(r: Reading) -> Explanation:
    return Explanation("rate-limited", f"{_host(r)} is rate limiting pulls (429 Too Many Requests)", "Docker Hub limits anonymous and free pulls.",
                       ("add Docker Hub credentials under registry-1.docker.io, or use a mirror / Artifact Registry remote repository",))


def _basic_401(r: Reading) -> Explanation:
    return Explanation(
        "unauthorized",
        f"{_host(r)} answered 401 Unauthorized",
        "the registry wants credentials it did not get or did not accept; the text does not say whether containerd sent any.",
        ("regauth doctor /etc --image IMAGE: is there a credential under the exact host?",
         "regauth verify PROFILE --image IMAGE: are the credentials accepted?"),
    )


def _backoff(r: Reading) -> Explanation:
    return Explanation(
        "backoff",
        "kubelet is backing off after an earlier pull failure",
        "ImagePullBackOff / 'Back-off pulling image' only repeats an earlier error; it does not say which.",
        ("kubectl describe pod POD: the Events show the first 'Failed to pull image' message; paste that one",),
    )


_RULES: tuple[_Rule, ...] = tuple(
    _Rule(code, re.compile(rx, re.IGNORECASE | re.DOTALL), build)
    for code, rx, build in (
        ("oauth-token-rejected", r"failed to fetch oauth token", _oauth_rejected),
        ("anonymous-token", r"failed to fetch anonymous token|unauthenticated request", _anonymous),
        ("x509-unknown-authority", r"x509: certificate signed by unknown authority|certificate verify failed|unknown certificate authority", _x509),
        ("x509-wrong-name", r"x509: certificate is valid for|certificate is not valid for any names|hostname mismatch", _x509_name),
        ("forbidden", r"\b403\b|forbidden|permission \S* ?denied|denied: permission|artifactregistry\.repositories\.downloadArtifacts", _forbidden),
        ("not-found", r"\b404\b|not found|manifest unknown|name unknown|repository does not exist", _not_found),
        ("dns", r"no such host|name or service not known|temporary failure in name resolution|server misbehaving", _dns),
        ("network", r"connection refused|i/o timeout|context deadline exceeded|no route to host|network is unreachable|TLS handshake timeout", _network),
        ("plain-http", r"server gave HTTP response to HTTPS client", _plain_http),
        ("rate-limited", r"\b429\b|toomanyrequests|too many requests", _rate_limited),
        ("unauthorized", r"\b401\b|unauthorized", _basic_401),
        ("backoff", r"ImagePullBackOff|Back-off pulling image|ErrImagePull", _backoff),
    )
)
# Rules that make a vaguer one redundant when both match.
_SUPERSEDES = {
    "oauth-token-rejected": ("unauthorized", "forbidden", "backoff"),
    "anonymous-token": ("unauthorized", "forbidden", "backoff"),
    "forbidden": ("backoff",),
    "not-found": ("backoff", "unauthorized"),
    "x509-unknown-authority": ("backoff",),
    "network": ("backoff",),
    "dns": ("backoff", "network"),
}

_IMAGE_RE = re.compile(r'(?:image|reference)\s+\\?"([^"\\\s]+)\\?"|pulling image \\?"?([^"\\\s]+)', re.IGNORECASE)
_TOKEN_URL_RE = re.compile(r"(?:GET|POST) request to https?://([^/\s\"]+)/|https?://([^/\s\"]+)/v2/", re.IGNORECASE)
_SERVICE_RE = re.compile(r"service=([A-Za-z0-9.\-]+(?:(?::|%3[Aa])[0-9]+)?)")
_STATUS_RE = re.compile(r"\b(40[0-9]|429|50[0-9])\s+[A-Z][a-z]+")


# The node programs' failure line: regauth-apply: FAILED [node-...] cause (generator/node/main.py),
# or regauth-credential-provider: FAILED [node-...] cause (generator/node/credprovider.py).
_NODE_FAILED_RE = re.compile(r"regauth-(?:apply|credential-provider): FAILED \[([a-z0-9-]+)\]:? ?([^\n]*)")


def _node_failures(text: str) -> list[Explanation]:
    """One reading per pasted ``regauth-apply: FAILED [code]`` line whose code the catalogue knows."""
    out = []
    for m in _NODE_FAILED_RE.finditer(text):
        entry = lookup(m.group(1))
        if entry is None or entry.kind != "node":
            continue
        cause = m.group(2).strip()
        out.append(Explanation(entry.code, entry.title + (f" ({cause})" if cause else ""), entry.text, (entry.fix,)))
    return out


def explain(text: str) -> Reading:
    """Every reading of ``text`` that applies, most specific first."""
    reading = Reading()
    reading.explanations.extend(_node_failures(text))
    m = _IMAGE_RE.search(text)
    if m:
        try:
            reading.image = parse_image(m.group(1) or m.group(2))
        except BadReference:
            pass
    service = _SERVICE_RE.search(text)
    url = _TOKEN_URL_RE.search(text)
    if service:
        reading.host = service.group(1).replace("%3A", ":").replace("%3a", ":")
    elif url:
        reading.host = url.group(1) or url.group(2) or ""
    elif reading.image is not None:
        reading.host = reading.image.host
    status = _STATUS_RE.search(text)
    if status:
        reading.status = int(status.group(1))
    matched = [rule for rule in _RULES if rule.pattern.search(text)]
    codes = {rule.code for rule in matched}
    dropped = {d for c in codes for d in _SUPERSEDES.get(c, ())}
    for rule in matched:
        if rule.code not in dropped:
            reading.explanations.append(rule.build(reading))  # type: ignore[operator]
    return reading


def render(reading: Reading) -> str:
    if not reading.explanations:
        return ("regauth doctor: this error text is not one regauth recognises.\n"
                "  check: regauth doctor /etc --image IMAGE (the node's configs), and regauth verify PROFILE --image IMAGE (the credentials)")
    lines = []
    facts = [f"host {reading.host}" if reading.host else "", f"image {reading.image.text}" if reading.image else "",
             f"HTTP {reading.status}" if reading.status else ""]
    if any(facts):
        lines.append("read from the error: " + ", ".join(f for f in facts if f))
    for e in reading.explanations:
        lines.append(f"[{e.code}] {e.title}")
        lines.append(f"  why: {e.meaning}")
        for check in e.checks:
            lines.append(f"  check: {check}")
    return "\n".join(lines)
