"""regauth-credential-provider: kubelet's image credential provider plugin
(``credentialprovider.kubelet.k8s.io/v1``) serving the registries of a regauth profile.

kubelet runs it for every image whose host matches ``matchImages`` in its
CredentialProviderConfig, writes a CredentialProviderRequest (``{"apiVersion",
"kind", "image"}``) on stdin and hands the ``auth`` of the answer to the runtime in
CRI ``PullImage``: no credential ever sits in containerd's (or k3s', MicroK8s')
config.  Where a password comes from, per registry of the store file that the
kubelet step of regauth-apply writes (``/etc/regauth/credential-provider.json``,
0600, root only):

- ``password``: basic / gcp-service-account credentials resolved when rendering;
- ``password_from``: a Secret Manager secret fetched now with the VM's identity
  (bounded retries, CRC32C; bootfetch), cached in a root-only directory for
  ``cache_seconds`` so that kubelet's pulls do not each cost a round trip;
- ``identity: gcp-vm``: keyless Artifact Registry, ``oauth2accesstoken`` + the
  metadata server's access token, cached by kubelet for less than the token lives.

Answers: ``cacheKeyType`` Registry with credentials (they hold for the whole host),
Image with an empty ``auth`` for an image of no served registry (an empty answer
then covers only that image).  Errors: one line on stderr, never a secret; exit 1
(runtime failure: store, metadata server, Secret Manager) or 2 (not a valid request).

Usage: regauth-credential-provider [--root DIR] [--store FILE] < request.json

Start-up cost matters (kubelet runs it per image pull when its cache is cold): the
warm path imports only sys/time/posix (builtins), _json (jsontext) and this module.  The fetch code (bootfetch,
files) is imported when a fetch is needed; no typing, argparse or hashlib, whose
imports alone cost more than the answer (bench/run.py).
"""

import sys
import time

from .errors import ApplyError, failure_line
from .jsontext import dumps, loads

try:  # os's own functions without importing os (~1 ms under -S: stat, posixpath, _collections_abc)
    from posix import _exit, geteuid, lstat
except ImportError:  # not a POSIX system: only where the generator side imports this module
    from os import _exit, geteuid, lstat

API_VERSION = "credentialprovider.kubelet.k8s.io/v1"
STORE = "/etc/regauth/credential-provider.json"
STORE_FORMAT = 1
CACHE_DIR = "/var/cache/regauth-credential-provider"
# Docker Hub: kubelet normalises an image before it asks (nginx and index.docker.io/nginx
# -> docker.io/library/nginx: parsers.ParseImageName), so requests name docker.io; the
# profile and the store key Docker Hub by the host containerd contacts.
DOCKER_HUB = "docker.io"
HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")
HUB_STORE_HOST = "registry-1.docker.io"
# kubelet waits for the plugin; a pull should not hang on a dead metadata server.
FETCH_TIMEOUT = 20.0
# Re-ask before the token expires: kubelet may use a cached answer up to its end.
TOKEN_MARGIN = 300
PROG = "regauth-credential-provider"


class BadRequest(Exception):
    """stdin is not a CredentialProviderRequest kubelet would send."""


def image_host(image: str) -> str:
    """The registry host[:port] an image reference pulls from (Docker's rules: the first
    component is a host only with a '.' or ':' in it, or ``localhost``)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def read_request(data: bytes) -> str:
    """The image of a v1 CredentialProviderRequest."""
    try:
        doc = loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("stdin is not JSON; kubelet sends a CredentialProviderRequest")
    if not isinstance(doc, dict) or doc.get("kind") != "CredentialProviderRequest":
        raise BadRequest("stdin is not a CredentialProviderRequest")
    if doc.get("apiVersion") != API_VERSION:
        raise BadRequest("request apiVersion %r is not %s; set apiVersion: %s in the CredentialProviderConfig" % (doc.get("apiVersion"), API_VERSION, API_VERSION))
    image = doc.get("image")
    if not isinstance(image, str) or not image:
        raise BadRequest("the request has no image")
    return image


def response(auth: dict, key_type: str, seconds: int) -> dict:
    # Always explicit: "0s" tells kubelet not to cache (a token about to expire), where an
    # omitted duration would mean the config's defaultCacheDuration.
    return {"apiVersion": API_VERSION, "kind": "CredentialProviderResponse", "cacheKeyType": key_type,
            "cacheDuration": "%ds" % max(0, seconds), "auth": auth}


def store_bytes(registries: list, cache_seconds: int) -> bytes:
    """The store regauth-apply writes (and load_store reads): every served registry with
    its password, its Secret Manager source or its VM identity; stable bytes, so a
    re-run with the same plan changes nothing."""
    import json  # regauth-apply's side: pretty and sorted, for people reading the node

    doc = {"format": STORE_FORMAT, "cache_seconds": int(cache_seconds), "registries": registries}
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def load_store(path: str) -> dict:
    try:
        with open(path, "rb") as handle:
            doc = loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        raise ApplyError("%s does not exist; run regauth-apply (it writes the file from the plan)" % path, code="node-provider-store")
    except PermissionError:
        raise ApplyError("permission denied reading %s; kubelet runs providers as root" % path, code="node-provider-store")
    except (UnicodeDecodeError, ValueError):
        raise ApplyError("%s is not JSON; re-run regauth-apply to rewrite it" % path, code="node-provider-store")
    if not isinstance(doc, dict) or doc.get("format") != STORE_FORMAT or not isinstance(doc.get("registries"), list):
        raise ApplyError("%s is not a format-%d regauth provider store; re-run regauth-apply from a matching plan" % (path, STORE_FORMAT), code="node-provider-store")
    return doc


def _cache_file(root: str, entry: dict) -> str:
    """One file per registry and secret version (names are [A-Za-z0-9_-] and '/', host
    and transform included, so two registries sharing a secret never share an entry)."""
    source = entry["password_from"]
    key = "%s_%s_%s" % (entry["host"], source.get("gcp_secret_manager"), source.get("transform"))
    return "%s%s/%s.json" % (root, CACHE_DIR, "".join(c if c.isalnum() or c in "-." else "_" for c in key))


def _cached(path: str, ttl: int):  # -> (password, seconds left) or None
    """(password, seconds left) from a fresh cache file, else None.  The file must be
    root-only: a cache anyone else could write would let them pick our credentials."""
    try:
        st = lstat(path)
        if st.st_uid != geteuid() or st.st_mode & 0o077 or st.st_mode & 0o170000 != 0o100000:  # a plain file (no link)
            return None
        with open(path, "rb") as handle:
            doc = loads(handle.read().decode("utf-8"))
        left = int(doc["fetched"] + ttl - time.time())
        if left > 0 and isinstance(doc.get("password"), str):
            return doc["password"], left
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _store_cache(path: str, password: str) -> None:
    import os

    from .files import write_atomic

    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    write_atomic(path, dumps({"fetched": int(time.time()), "password": password}).encode("utf-8"), 0o600)


def _from_secret_manager(root: str, entry: dict, ttl: int, fetcher=None):  # -> (password, seconds)
    path = _cache_file(root, entry)
    hit = _cached(path, ttl)
    if hit is not None:
        return hit
    password = (fetcher or _fetcher()).password(entry["password_from"])  # fetched and checked as regauth-apply does
    try:
        _store_cache(path, password)
    except OSError:
        pass  # an unwritable cache costs a fetch per pull, not the pull itself
    return password, ttl


def _fetcher():
    from .bootfetch import BootFetcher

    # Retries are silent: kubelet shows a plugin's stderr as its error, which is one line.
    return BootFetcher(time.monotonic() + FETCH_TIMEOUT, report=lambda message: None)


def _from_vm_identity(fetcher=None):  # -> (token, seconds)
    token, expires_in = (fetcher or _fetcher()).token_info()
    # kubelet may reuse the answer for cacheDuration: end it well before the token does.
    life = expires_in - TOKEN_MARGIN if expires_in > 2 * TOKEN_MARGIN else expires_in // 2
    return token, max(0, life)


def answer(image: str, store: dict, root: str = "", fetcher=None) -> dict:
    """The CredentialProviderResponse for ``image``.  The ``auth`` key is the host as the
    image names it: kubelet looks the answer up with the image it sent (a ``docker.io``
    key matches ``docker.io/library/nginx``, ``registry-1.docker.io`` would not) and
    passes the credentials to the runtime without a server address, so containerd uses
    them for the host it contacts."""
    host = image_host(image)
    wanted = HUB_STORE_HOST if host in HUB_NAMES else host
    entry = next((e for e in store["registries"] if isinstance(e, dict) and e.get("host") == wanted), None)
    if entry is None:
        return response({}, "Image", int(store.get("cache_seconds", 0)))
    ttl = int(store.get("cache_seconds", 300))
    if "password" in entry:
        password, seconds = entry["password"], ttl
    elif "password_from" in entry:
        password, seconds = _from_secret_manager(root, entry, ttl, fetcher)
    elif entry.get("identity") == "gcp-vm":
        password, seconds = _from_vm_identity(fetcher)
    else:
        raise ApplyError("%s has no usable entry for %s; re-run regauth-apply from a matching plan" % (STORE, host), code="node-provider-store")
    return response({host: {"username": entry["username"], "password": password}}, "Registry", seconds)


def options(argv: list) -> dict:
    """``--root DIR`` / ``--store FILE`` (also ``--opt=value``); kubelet passes only the
    config's ``args``, so anything else is a config mistake worth one clear line."""
    found = {"--root": "", "--store": ""}
    i = 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        if name not in found or (not eq and i + 1 >= len(argv)):
            raise BadRequest("usage: %s [--root DIR] [--store FILE] < CredentialProviderRequest (got %r)" % (PROG, argv[i]))
        if not eq:
            i += 1
            value = argv[i]
        found[name] = value
        i += 1
    return found


def main(argv=None) -> int:
    """Run as kubelet runs it (``argv`` None): answer, flush, and end the process without
    the interpreter's teardown (module and garbage finalisation: about 1.2 ms of a
    10 ms answer, bench/run.py), which has nothing left to do here."""
    code = answer_request(argv)
    if argv is not None:
        return code
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # kubelet closed the pipe: it has no answer
        code = code or 1
    _exit(code)


def answer_request(argv=None) -> int:
    try:
        opts = options(sys.argv[1:] if argv is None else argv)
        root = opts["--root"].rstrip("/")
        image = read_request(sys.stdin.buffer.read())
        doc = answer(image, load_store(opts["--store"] or root + STORE), root)
    except BadRequest as exc:
        print("%s: %s" % (PROG, exc), file=sys.stderr)
        return 2
    except ApplyError as exc:
        print("%s: %s" % (PROG, failure_line(str(exc), exc.code)), file=sys.stderr)
        return 1
    except OSError as exc:
        print("%s: %s on %s" % (PROG, exc.strerror, exc.filename), file=sys.stderr)
        return 1
    sys.stdout.write(dumps(doc) + "\n")
    return 0
