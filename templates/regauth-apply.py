#!/usr/bin/python3
"""regauth-apply: merge registry credentials into a node's runtime config at first boot.

Shipped verbatim to the VM by regauth (cloud-init write_files or a Packer image) and
run as root.  Only the Python standard library is used: every machine that runs
cloud-init has python3, and nothing else may be assumed on a stock cloud image.

Guarantees (each has a test):
- idempotent: a second run leaves a byte-identical file and restarts nothing;
- atomic: the new file is written beside the old one and renamed over it, so a crash
  leaves either the old or the new config, never a half-written one;
- the original file is kept once as ``FILE.regauth.orig``;
- every other setting in the file survives (checked with tomllib when available);
- the runtime is restarted only when the file changed and the service is running;
- no secret is ever printed; on any failure the runtime config is left untouched.

Boot-time fetch: registries whose password is ``password_from`` a Secret Manager
secret are fetched first, with the VM's own identity (token from the GCE metadata
server, then the Secret Manager REST API); only when every fetch succeeded is any
file touched.  The token travels in a request header inside this process, never in
a process argument; retries are bounded by ``--fetch-timeout``.

Usage: regauth-apply [--plan /etc/regauth/plan.json] [--root DIR] [--no-restart] [--fetch-timeout S]
Exit codes: 0 applied (or already up to date), 1 failed (config untouched), 2 bad plan.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time

PLAN_FORMAT = 1
BEGIN = "# >>> regauth managed: registry auth. Edit the regauth profile, not this block."
END = "# <<< regauth managed"

# Config file version -> the table containerd reads registry auth from.
CONTAINERD_AUTH_TABLE = {
    1: ("plugins", "cri", "registry", "configs"),
    2: ("plugins", "io.containerd.grpc.v1.cri", "registry", "configs"),
    3: ("plugins", "io.containerd.cri.v1.images", "registry", "configs"),
    4: ("plugins", "io.containerd.cri.v1.images", "registry", "configs"),
}


class ApplyError(Exception):
    """A failure to report in one line; never carries a secret."""


def log(message: str) -> None:
    # One greppable line per event for cloud-init-output.log / journalctl.
    print("regauth-apply: " + message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- TOML writing
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\\x7f]')


def _escape(match) -> str:
    ch = match.group(0)
    return _ESCAPES.get(ch) or "\\u%04x" % ord(ch)


def toml_string(value: str) -> str:
    """A TOML basic string holding exactly ``value`` (every control char escaped)."""
    return '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


# ---------------------------------------------------------------- TOML reading
def _skip_string(text: str, i: int) -> int:
    """Return the index just past the string literal starting at ``text[i]``."""
    for delim, escapes in (('"""', True), ("'''", False), ('"', True), ("'", False)):
        if text.startswith(delim, i):
            j = i + len(delim)
            while j < len(text):
                if escapes and text[j] == "\\":
                    j += 2
                    continue
                if text.startswith(delim, j):
                    j += len(delim)
                    # A multi-line string may end with up to two extra quotes.
                    while len(delim) == 3 and j < len(text) and text[j] == delim[0] and text.startswith(delim, j - 2):
                        j += 1
                    return j
                if len(delim) == 1 and text[j] == "\n":
                    raise ApplyError("unterminated string in TOML")
                j += 1
            raise ApplyError("unterminated string in TOML")
    raise AssertionError("not a string")


def _parse_key(text: str, i: int, stop: str) -> tuple[tuple[str, ...], int]:
    """Parse a dotted key starting at ``i`` up to the ``stop`` character."""
    parts: list[str] = []
    while True:
        while text[i] in " \t":
            i += 1
        if text[i] in "\"'":
            end = _skip_string(text, i)
            raw = text[i:end]
            if raw.startswith('"'):
                parts.append(json.loads(re.sub(r"\\U([0-9A-Fa-f]{8})", lambda m: chr(int(m.group(1), 16)), raw)))
            else:
                parts.append(raw[1:-1])
            i = end
        else:
            m = re.compile(r"[A-Za-z0-9_-]+").match(text, i)
            if not m:
                raise ApplyError("unexpected character in TOML key")
            parts.append(m.group(0))
            i = m.end()
        while text[i] in " \t":
            i += 1
        if text[i] == ".":
            i += 1
            continue
        if text.startswith(stop, i):
            return tuple(parts), i + len(stop)
        raise ApplyError("malformed TOML table header")


def table_headers(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """Offsets and key paths of every ``[table]`` / ``[[array]]`` header line.

    Tracks strings (all four kinds), comments and bracket depth so that a ``[``
    inside a multi-line string or array value is never taken for a header.
    """
    headers: list[tuple[int, tuple[str, ...]]] = []
    i, n, depth, line_start = 0, len(text), 0, True
    while i < n:
        if line_start and depth == 0:
            j = i
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] == "[":
                is_array = text.startswith("[[", j)
                path, end = _parse_key(text, j + (2 if is_array else 1), "]]" if is_array else "]")
                headers.append((i, path))
                i = end
                line_start = False
                continue
        line_start = False
        ch = text[i]
        if ch == "#":
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if ch in "\"'":
            i = _skip_string(text, i)
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "\n":
            line_start = True
        i += 1
    return headers


def top_level_version(text: str, headers: list[tuple[int, tuple[str, ...]]]) -> int | None:
    head = text[: headers[0][0]] if headers else text
    m = re.search(r"^[ \t]*version[ \t]*=[ \t]*([0-9]+)[ \t]*(#.*)?$", head, re.M)
    return int(m.group(1)) if m else None


def strip_managed(text: str) -> str:
    """Remove our previous block, so re-applying starts from the user's own content."""
    start = text.find(BEGIN)
    if start < 0:
        return text
    end = text.find(END, start)
    if end < 0:
        raise ApplyError("found the start of a regauth block but not its end; restore FILE.regauth.orig")
    end = text.find("\n", end)
    end = len(text) if end < 0 else end + 1
    return text[:start] + text[end:]


def remove_tables(text: str, doomed: set[tuple[str, ...]]) -> tuple[str, list[tuple[str, ...]]]:
    """Cut the sections (header to next header) whose path is in ``doomed``."""
    headers = table_headers(text)
    cuts = []
    for idx, (offset, path) in enumerate(headers):
        if path in doomed:
            end = headers[idx + 1][0] if idx + 1 < len(headers) else len(text)
            cuts.append((offset, end, path))
    for offset, end, _ in reversed(cuts):
        text = text[:offset] + text[end:]
    return text, [c[2] for c in cuts]


# ---------------------------------------------------------------- containerd
def containerd_merge(existing: str | None, step: dict, creds: list[dict]) -> str:
    """The new config.toml text for ``existing`` (None: no file yet)."""
    base = strip_managed(existing) if existing is not None else ""
    headers = table_headers(base)
    version = top_level_version(base, headers)
    if version is None:
        if base.strip() and any(p[:1] == ("plugins",) for _, p in headers):
            version = 1  # containerd reads a file without `version` as version 1
        else:
            version = int(step["new_config_version"])
            base = "version = %d\n" % version + base
            headers = table_headers(base)
    if version not in CONTAINERD_AUTH_TABLE:
        raise ApplyError("config version %d is not one regauth knows (1-4)" % version)
    prefix = CONTAINERD_AUTH_TABLE[version]
    doomed = {prefix + (c["host"], "auth") for c in creds}
    base, removed = remove_tables(base, doomed)
    for path in removed:
        log("replacing an existing auth table for %s" % path[-2])
    lines = [BEGIN]
    for c in sorted(creds, key=lambda c: c["host"]):
        lines.append("[" + ".".join(toml_key(k) for k in prefix + (c["host"], "auth")) + "]")
        lines.append("username = " + toml_string(c["username"]))
        lines.append("password = " + toml_string(c["password"]))
    lines.append(END)
    body = base.rstrip("\n")
    return (body + "\n\n" if body else "") + "\n".join(lines) + "\n"


def _dig(tree: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _prune(tree):
    if isinstance(tree, dict):
        pruned = {k: _prune(v) for k, v in tree.items()}
        return {k: v for k, v in pruned.items() if v != {}}
    return tree


def containerd_verify(existing: str | None, new: str, creds: list[dict]) -> None:
    """Prove the result with a real TOML parser: our values exact, nothing else changed."""
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        log("python3 has no tomllib (< 3.11); skipping the parser check")
        return
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ApplyError("the merged config would not parse (%s); the existing file defines registry auth in a form regauth cannot replace" % exc)
    version = after.get("version", 1)
    prefix = CONTAINERD_AUTH_TABLE.get(version)
    if prefix is None:
        raise ApplyError("unexpected config version after merge")
    for c in creds:
        got = _dig(after, prefix + (c["host"], "auth"))
        if not isinstance(got, dict) or got.get("username") != c["username"] or got.get("password") != c["password"]:
            raise ApplyError("self-check failed: auth for %s does not read back exactly" % c["host"])
        del _dig(after, prefix + (c["host"],))["auth"]
    base = strip_managed(existing) if existing is not None else ""
    base, _ = remove_tables(base, {prefix + (c["host"], "auth") for c in creds})
    before = tomllib.loads(base) if base.strip() else {}
    before.setdefault("version", version)
    if _prune(before) != _prune(after):
        raise ApplyError("self-check failed: merging would change settings other than registry auth")


# ---------------------------------------------------------------- file writing
def write_atomic(path: str, data: bytes, mode: int) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    tmp = os.path.join(directory, ".%s.regauth-tmp" % os.path.basename(path))
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def keep_original(path: str) -> None:
    backup = path + ".regauth.orig"
    if os.path.exists(path) and not os.path.exists(backup):
        with open(path, "rb") as handle:
            write_atomic(backup, handle.read(), 0o600)


def restart(unit: str, policy: str, enabled: bool) -> str:
    import subprocess  # imported where used: regauth imports this module to preview results

    if not enabled or policy == "never":
        return "restart skipped (disabled)"
    try:
        active = subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0
    except FileNotFoundError:
        return "restart skipped (no systemctl)"
    if not active:
        return "%s not running; it reads the new config when it starts" % unit
    result = subprocess.run(["systemctl", "restart", unit], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise ApplyError("config written but `systemctl restart %s` failed: %s" % (unit, result.stderr.strip()[:300]))
    return "%s restarted" % unit


# ---------------------------------------------------------------- secrets
SECRET_MANAGER = "https://secretmanager.googleapis.com"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
EMAIL_PATH = "/computeMetadata/v1/instance/service-accounts/default/email"


class FetchFailure(ApplyError):
    """Retrying will not help (403, 404, bad payload)."""


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli), the checksum Secret Manager sends; zlib.crc32 is a different CRC."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _metadata_base() -> str:
    # GCE_METADATA_HOST is the override Google's own client libraries honour.
    return "http://" + os.environ.get("GCE_METADATA_HOST", "metadata.google.internal")


def _http_json(request, timeout: float) -> dict:
    import urllib.request

    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read(1024 * 1024)
    try:
        doc = json.loads(body)
    except ValueError:
        raise FetchFailure("%s answered with something that is not JSON" % request.host)
    if not isinstance(doc, dict):
        raise FetchFailure("%s answered with unexpected JSON" % request.host)
    return doc


def _vm_identity(timeout: float) -> str:
    import urllib.request

    try:
        req = urllib.request.Request(_metadata_base() + EMAIL_PATH, headers={"Metadata-Flavor": "Google"})
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.read(512).decode("utf-8", "replace").strip() or "the VM's service account"
    except Exception:
        return "the VM's service account"


class BootFetcher:
    """Fetches each named secret once per run, retrying transient failures until a deadline."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.cache: dict[tuple[str, str], bytes] = {}

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    def _retrying(self, what: str, fn):
        import urllib.error  # only boot-time fetches need urllib; keep plain applies lean

        delay = 0.5
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(max(0.5, min(10.0, self._left())))
            except FetchFailure:
                raise
            except urllib.error.HTTPError as exc:
                if exc.code not in (429, 500, 502, 503, 504):
                    raise
                reason = "HTTP %d" % exc.code
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = type(getattr(exc, "reason", exc)).__name__
            if self._left() <= delay:
                raise ApplyError("%s failed after %d attempts (%s); gave up at the --fetch-timeout deadline" % (what, attempt, reason))
            log("%s: attempt %d failed (%s); retrying in %.1fs" % (what, attempt, reason, delay))
            time.sleep(delay)
            import random

            delay = min(delay * 2, 8.0) * (0.8 + 0.4 * random.random())

    def token(self) -> str:
        import urllib.request

        def get(timeout: float) -> str:
            req = urllib.request.Request(_metadata_base() + TOKEN_PATH, headers={"Metadata-Flavor": "Google"})
            doc = _http_json(req, timeout)
            token = doc.get("access_token")
            if not isinstance(token, str) or not token:
                raise FetchFailure("the metadata server returned no access_token")
            return token

        return self._retrying("metadata token", get)

    def fetch(self, name: str, endpoint: str | None) -> bytes:
        key = (name, endpoint or SECRET_MANAGER)
        if key in self.cache:
            return self.cache[key]
        import urllib.error
        import urllib.request

        token = self.token()
        url = (endpoint or SECRET_MANAGER).rstrip("/") + "/v1/" + name + ":access"

        def get(timeout: float) -> bytes:
            req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
            try:
                doc = _http_json(req, timeout)
            except urllib.error.HTTPError as exc:
                if exc.code == 403:
                    raise FetchFailure(
                        "permission denied on %s: grant roles/secretmanager.secretAccessor on %s to %s, and give the VM the cloud-platform scope"
                        % (name, name.split("/versions/")[0], _vm_identity(2.0))
                    )
                if exc.code == 404:
                    raise FetchFailure("secret %s not found (check project, secret id and version)" % name)
                if exc.code == 400:
                    raise FetchFailure("Secret Manager refused %s (HTTP 400: a disabled or destroyed version?)" % name)
                raise
            payload = doc.get("payload")
            if not isinstance(payload, dict) or not isinstance(payload.get("data"), str):
                raise FetchFailure("Secret Manager answered without a payload for %s" % name)
            try:
                data = base64.b64decode(payload["data"], validate=True)
            except ValueError:
                raise FetchFailure("the payload of %s is not base64" % name)
            want = payload.get("dataCrc32c")
            if want is not None and str(want) != str(crc32c(data)):
                raise FetchFailure("the payload of %s failed its CRC32C check (corrupted in transit)" % name)
            return data

        data = self._retrying("fetch %s" % name, get)
        self.cache[key] = data
        return data


def password_from_payload(payload: bytes, transform: str) -> str:
    """Mirror of generator.secrets.resolve.password_from_payload (a test keeps them equal)."""
    if transform == "base64":
        return base64.b64encode(payload).decode("ascii")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise FetchFailure("the secret is not UTF-8 text, so it cannot be a password")
    if "\x00" in text:
        raise FetchFailure("the secret contains a NUL character")
    if transform == "strip-newline":
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
    return text


def credentials(entries: list[dict], fetcher: "BootFetcher | None" = None) -> list[dict]:
    """username/password pairs: resolved at render time, or fetched now (boot mode)."""
    out = []
    for entry in entries:
        if "password" in entry:
            password = entry["password"]
        elif "password_from" in entry and fetcher is not None:
            source = entry["password_from"]
            payload = fetcher.fetch(source["gcp_secret_manager"], source.get("endpoint"))
            password = password_from_payload(payload, source["transform"])
            if source.get("check") == "service-account-key":
                _check_key_json(payload, source["gcp_secret_manager"])
        else:
            raise ApplyError("registry %s has no password in the plan" % entry.get("host"))
        out.append({"host": entry["host"], "username": entry["username"], "password": password})
    return out


def _check_key_json(payload: bytes, name: str) -> None:
    try:
        doc = json.loads(payload)
    except ValueError:
        raise FetchFailure("%s is not a service-account key (not JSON)" % name)
    if not isinstance(doc, dict) or doc.get("type") != "service_account" or "private_key" not in doc:
        raise FetchFailure("%s is not a service-account key JSON" % name)


# ---------------------------------------------------------------- steps
def apply_containerd(step: dict, root: str, do_restart: bool, fetcher: BootFetcher) -> None:
    path = root + step["path"]
    creds = credentials(step["registries"], fetcher)
    try:
        with open(path, encoding="utf-8") as handle:
            existing = handle.read()
    except FileNotFoundError:
        existing = None
    except (UnicodeDecodeError, OSError) as exc:
        raise ApplyError("cannot read %s: %s" % (step["path"], type(exc).__name__))
    new = containerd_merge(existing, step, creds)
    containerd_verify(existing, new, creds)
    hosts = ", ".join(sorted(c["host"] for c in creds))
    if existing == new:
        log("containerd: %s already up to date (%s)" % (step["path"], hosts))
        return
    keep_original(path)
    write_atomic(path, new.encode("utf-8"), 0o600)
    outcome = restart(step.get("unit", "containerd"), step.get("restart", "if-running"), do_restart)
    log("containerd: %s updated (%s); %s" % (step["path"], hosts, outcome))


STEPS = {"containerd": apply_containerd}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import fcntl

    parser = argparse.ArgumentParser(prog="regauth-apply", description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", default=None, help="plan file (default: ROOT/etc/regauth/plan.json)")
    parser.add_argument("--root", default="", help="apply under this directory instead of / (tests, chroots)")
    parser.add_argument("--no-restart", action="store_true", help="never restart services")
    parser.add_argument("--fetch-timeout", type=float, default=120.0, metavar="S", help="give up boot-time fetches after S seconds (default 120)")
    args = parser.parse_args(argv)
    root = args.root.rstrip("/")
    plan_path = args.plan or root + "/etc/regauth/plan.json"
    started = time.monotonic()
    try:
        with open(plan_path, encoding="utf-8") as handle:
            plan = json.load(handle)
    except (OSError, ValueError) as exc:
        log("cannot read plan %s: %s" % (plan_path, type(exc).__name__))
        return 2
    if plan.get("format") != PLAN_FORMAT:
        log("plan format %r is not %d; re-render with a matching regauth" % (plan.get("format"), PLAN_FORMAT))
        return 2
    lock_dir = root + "/run/lock" if os.path.isdir(root + "/run/lock") else os.path.dirname(os.path.abspath(plan_path))
    with open(os.path.join(lock_dir, "regauth-apply.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # cloud-init and the boot unit may race
        fetcher = BootFetcher(time.monotonic() + args.fetch_timeout)
        try:
            for step in plan["steps"]:
                handler = STEPS.get(step.get("kind"))
                if handler is None:
                    log("unknown step kind %r; re-render with a matching regauth" % step.get("kind"))
                    return 2
                handler(step, root, not args.no_restart, fetcher)
        except ApplyError as exc:
            log("FAILED: %s; the runtime config was left unchanged" % exc)
            return 1
        except OSError as exc:
            log("FAILED: %s on %s; the runtime config was left unchanged" % (exc.strerror, exc.filename))
            return 1
    log("done in %d ms (profile %s)" % ((time.monotonic() - started) * 1000, plan.get("profile", "?")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
