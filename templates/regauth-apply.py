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


# Step kind -> prepare function.  Each runtime's code sits in a marked section that
# registers itself here; regauth ships only the sections a plan's step kinds need
# (generator/applyscript.py), which keeps user-data small (AWS allows 16 KB).
STEPS: dict = {}


# ---------------------------------------------------------------- TOML writing
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\\x7f]')


def _escape(match) -> str:
    ch = match.group(0)
    return _ESCAPES.get(ch) or "\\u%04x" % ord(ch)


def toml_string(value: str, dollar_safe: bool = False) -> str:
    """A TOML basic string holding exactly ``value`` (every control char escaped).

    ``dollar_safe`` also writes every ``$`` as ``\\u0024``: MicroK8s runs sed over its
    containerd template at every start, replacing ``${SNAP}``, ``${SNAP_DATA}``, ...;
    an escaped dollar is invisible to sed and still reads back as ``$``.
    """
    text = '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'
    return text.replace("$", "\\u0024") if dollar_safe else text


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


# --- regauth-apply section: containerd microk8s ---
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


def scan_toml(text: str, keys: bool = False):
    """Yield ``("table", offset, path)`` for every ``[table]`` / ``[[array]]`` header line
    and, with ``keys``, ``("key", offset, path)`` for every ``key = value`` line (dotted
    keys as one path).  regauth's ``doctor`` uses the keys to point at lines.

    Tracks strings (all four kinds), comments and bracket depth so that a ``[``
    inside a multi-line string or array value is never taken for a header.
    """
    i, n, depth, line_start = 0, len(text), 0, True
    while i < n:
        if line_start and depth == 0:
            j = i
            while j < n and text[j] in " \t":
                j += 1
            if j < n and text[j] == "[":
                is_array = text.startswith("[[", j)
                path, end = _parse_key(text, j + (2 if is_array else 1), "]]" if is_array else "]")
                yield ("table", i, path)
                i = end
                line_start = False
                continue
            if keys and j < n and text[j] not in "#\r\n":
                path, end = _parse_key(text, j, "=")
                yield ("key", j, path)
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


def table_headers(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """Offsets and key paths of every ``[table]`` / ``[[array]]`` header line."""
    return [(offset, path) for _, offset, path in scan_toml(text)]


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
def needs_hosts(creds: list[dict]) -> bool:
    """Mirrors or TLS: certs.d/*/hosts.toml (and config_path) are needed."""
    return any(c.get("mirror_for") or c.get("tls") for c in creds)


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
    if version == 1 and int(step.get("containerd_major", 1)) >= 2:
        raise ApplyError(
            "the config is version 1 (plugins.cri) but the node runs containerd 2.x, which silently drops "
            "registry settings from a version-1 file; migrate it first (containerd config migrate)"
        )
    prefix = CONTAINERD_AUTH_TABLE[version]
    doomed = {prefix + (c["host"], "auth") for c in creds}
    base, removed = remove_tables(base, doomed)
    for path in removed:
        log("replacing an existing auth table for %s" % path[-2])
    lines = [BEGIN]
    if needs_hosts(creds):
        # Mirrors and TLS live in certs.d/*/hosts.toml, read only when config_path is set;
        # containerd refuses config_path next to registry.mirrors (and 1.x next to configs.*.tls).
        registry = prefix[:-1]
        conflicts = hosts_conflicts(base, version)
        if conflicts:
            raise ApplyError(
                "the config sets %s, which containerd refuses together with config_path (needed for the "
                "profile's mirrors/tls); move them to hosts.toml files, or drop mirror_for/tls from the profile" % ", ".join(conflicts)
            )
        if not config_path_value(base, registry):
            base, placed = set_config_path(base, registry, step["hosts_dir"])
            if not placed:
                lines.append("[" + ".".join(toml_key(k) for k in registry) + "]")
                lines.append("config_path = " + toml_string(step["hosts_dir"]))
    safe = bool(step.get("dollar_safe"))
    for c in sorted(creds, key=lambda c: c["host"]):
        lines.append("[" + ".".join(toml_key(k) for k in prefix + (c["host"], "auth")) + "]")
        lines.append("username = " + toml_string(c["username"], safe))
        lines.append("password = " + toml_string(c["password"], safe))
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


def containerd_verify(existing: str | None, new: str, creds: list[dict], step: dict | None = None, values_only: bool = False) -> None:
    """Prove the result with a real TOML parser: our values exact, nothing else changed
    (except ``config_path``, which hosts.toml needs and which must then be set)."""
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
    if values_only:
        return
    base = strip_managed(existing) if existing is not None else ""
    base, _ = remove_tables(base, {prefix + (c["host"], "auth") for c in creds})
    before = tomllib.loads(base) if base.strip() else {}
    before.setdefault("version", version)
    after.setdefault("version", version)  # a legacy file without `version` reads as 1 and stays without it
    if needs_hosts(creds):
        registry = _dig(after, prefix[:-1])
        if not isinstance(registry, dict) or not registry.get("config_path"):
            raise ApplyError("self-check failed: config_path is not set, so containerd would ignore hosts.toml")
        registry.pop("config_path")
        old = _dig(before, prefix[:-1])
        if isinstance(old, dict):
            old.pop("config_path", None)
    if _prune(before) != _prune(after):
        raise ApplyError("self-check failed: merging would change settings other than registry auth")


# --- regauth-apply section end ---


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
    """Restart ``unit`` if it is running (kept for callers of the one-unit form)."""
    return restart_units({"policy": policy, "units": [unit]}, enabled)


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
    if not payload:
        raise FetchFailure("the secret is empty, so the password would be empty")
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
    if not text:
        raise FetchFailure("the secret is empty (or only a line break), so the password would be empty")
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
        cred = {k: v for k, v in entry.items() if k not in ("password", "password_from")}
        cred["password"] = password
        out.append(cred)
    return out


def _check_key_json(payload: bytes, name: str) -> None:
    try:
        doc = json.loads(payload)
    except ValueError:
        raise FetchFailure("%s is not a service-account key (not JSON)" % name)
    if not isinstance(doc, dict) or doc.get("type") != "service_account" or "private_key" not in doc:
        raise FetchFailure("%s is not a service-account key JSON" % name)


# ---------------------------------------------------------------- two-phase apply
# Every step is *prepared* (credentials fetched, new file contents computed and
# checked) before any step *commits* (writes, restarts), so a profile with several
# targets either changes all of them or none.


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ApplyError("%s is a directory where a file was expected" % path)


def read_text(full: str, shown: str) -> str | None:
    data = read_bytes(full)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApplyError("cannot read %s: it is not UTF-8 text" % shown)


class Edit:
    """One file a step wants, compared with what is on disk now."""

    def __init__(self, root: str, path: str, data: bytes, mode: int, restart: bool = True, backup: bool = True):
        self.path, self.full, self.data, self.mode = path, root + path, data, mode
        self.restart, self.backup = restart, backup  # restart: the runtime reads it only at start
        self.before = read_bytes(self.full)
        self.before_mode = os.stat(self.full).st_mode & 0o7777 if self.before is not None else None

    @property
    def changed(self) -> bool:
        return self.before != self.data or self.before_mode != self.mode


class Outcome:
    """What one plan step will do once every step has been prepared."""

    def __init__(self, label: str, restart: dict | None = None):
        self.label = label
        self.restart = restart  # {"policy", "units", "command"?} or None: nothing to restart
        self.summary = ""
        self.edits: list[Edit] = []
        self.notes: list[str] = []
        self.skipped = ""

    def add(self, ctx: "Context", path: str, data: bytes, mode: int, restart: bool = True) -> None:
        edit = Edit(ctx.root, path, data, mode, restart)
        ctx.pending[edit.full] = edit
        self.edits.append(edit)


class Context:
    """One run: where the node's files are, how to fetch, and what earlier steps will
    write (two targets may merge into one file, e.g. CRI-O's auth file pointed at
    kubelet's config.json: the later merge starts from the earlier one's result)."""

    def __init__(self, root: str, fetcher: "BootFetcher | None", do_restart: bool = True):
        self.root, self.fetcher, self.do_restart = root, fetcher, do_restart
        self.pending: dict[str, Edit] = {}

    def read(self, path: str) -> str | None:
        edit = self.pending.get(self.root + path)
        if edit is not None:
            return edit.data.decode("utf-8")
        return read_text(self.root + path, path)


def commit(outcome: Outcome, do_restart: bool, final: dict | None = None) -> None:
    """Write what changed, then restart; ``final`` (path -> Edit) drops edits a later
    step superseded by merging into the same file."""
    if outcome.skipped:
        log("%s: skipped: %s" % (outcome.label, outcome.skipped))
        return
    changed = [e for e in outcome.edits if e.changed and (final is None or final.get(e.full) is e)]
    if not changed:
        log("%s: %s already up to date (%s)" % (outcome.label, ", ".join(e.path for e in outcome.edits), outcome.summary))
    else:
        for edit in changed:
            if edit.before is not None and edit.backup:
                keep_original(edit.full)
            if edit.before == edit.data:
                os.chmod(edit.full, edit.mode)  # content right, mode wrong (e.g. a 0644 secret file)
            else:
                write_atomic(edit.full, edit.data, edit.mode)
        reread = any(e.restart and e.before != e.data for e in changed)
        what = restart_units(outcome.restart, do_restart) if outcome.restart and reread else "no restart needed"
        log("%s: %s updated (%s); %s" % (outcome.label, ", ".join(e.path for e in changed), outcome.summary, what))
    for note in outcome.notes:
        log("%s: %s" % (outcome.label, note))


def restart_units(spec: dict, enabled: bool) -> str:
    """Restart each unit of ``spec`` that is running (``command`` may replace systemctl)."""
    import subprocess

    units = spec.get("units") or []
    if not enabled or spec.get("policy", "if-running") == "never" or not units:
        return "restart skipped (disabled)"
    try:
        active = [u for u in units if subprocess.run(["systemctl", "is-active", "--quiet", u], check=False).returncode == 0]
    except FileNotFoundError:
        return "restart skipped (no systemctl)"
    if not active:
        return "%s not running; it reads the new config when it starts" % " / ".join(units)
    for unit in active:
        argv = [a.replace("{unit}", unit) for a in spec["command"]] if spec.get("command") else ["systemctl", "restart", unit]
        try:
            result = subprocess.run(argv, check=False, capture_output=True, text=True)
        except FileNotFoundError:
            raise ApplyError("config written but %s is not there to restart %s" % (argv[0], unit))
        if result.returncode != 0:
            raise ApplyError("config written but `%s` failed: %s" % (" ".join(argv), result.stderr.strip()[:300]))
    return "%s restarted" % ", ".join(active)


BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/snap/bin")


def runtime_missing(step: dict, root: str) -> str:
    """'' when the runtime is installed (any binary or marker path exists), else what was looked for."""
    detect = step.get("detect") or {}
    looked = []
    for name in detect.get("binaries", []):
        if any(os.path.exists(root + d + "/" + name) for d in BIN_DIRS):
            return ""
        looked.append(name)
    for path in detect.get("paths", []):
        if os.path.exists(root + path):
            return ""
        looked.append(path)
    return ", ".join(looked)


def proceed(step: dict, ctx: Context, outcome: Outcome) -> bool:
    """Apply ``if_missing`` on a node without the runtime: write anyway, skip, or fail."""
    missing = runtime_missing(step, ctx.root)
    if not missing:
        return True
    policy = step.get("if_missing", "write")
    runtime = step.get("runtime", step.get("kind"))
    if policy == "write":
        outcome.notes.append("%s is not installed yet (no %s); its files are written for when it is" % (runtime, missing))
        return True
    if policy == "skip":
        outcome.skipped = "%s is not installed (no %s; if_missing: skip)" % (runtime, missing)
        return False
    raise ApplyError(
        "%s is not installed on this node (looked for %s); install it before regauth-apply runs, "
        "or set if_missing: skip (or write) for this target in the profile" % (runtime, missing)
    )


def cred_summary(creds: list[dict]) -> str:
    return ", ".join(sorted(c["host"] for c in creds)) or "no registries"


# --- regauth-apply section: k3s rke2 docker podman crio kubelet ---
# ---------------------------------------------------------------- JSON / YAML documents
def load_document(text: str | None, shown: str) -> dict:
    """A JSON (or YAML, when python3-yaml is there) mapping; {} for no/empty file.

    Error messages carry positions only: a parser's own message may quote the line,
    and the line may hold a password.
    """
    if text is None or not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError as exc:
        if text.lstrip().startswith("{"):
            raise ApplyError("%s is not valid JSON (line %d, column %d); fix or remove it" % (shown, exc.lineno, exc.colno))
        try:
            import yaml  # cloud-init depends on PyYAML, so a cloud-init node has it
        except ImportError:
            raise ApplyError("%s is YAML and python3-yaml is not installed, so regauth cannot merge into it; install python3-yaml or rewrite the file as JSON" % shown)
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = " (line %d, column %d)" % (mark.line + 1, mark.column + 1) if mark else ""
            raise ApplyError("%s is not valid YAML%s; fix or remove it" % (shown, where))
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ApplyError("%s does not hold a mapping at the top; fix or remove it" % shown)
    return doc


# Characters JSON writes raw but YAML readers refuse (DEL, C1 controls, BOM, U+FFFE/F:
# "special characters are not allowed" in PyYAML and go-yaml) or read as line breaks
# that fold into a space inside a quoted scalar (NEL, LS, PS).  As \uXXXX escapes
# they mean the same character to JSON and YAML alike.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def dump_document(doc: dict, shown: str) -> bytes:
    """JSON text (also valid YAML): stdlib-only, exact, and stable for byte-identical re-runs."""
    try:
        text = json.dumps(doc, indent=2, ensure_ascii=False)
        return (_YAML_UNSAFE.sub(lambda m: "\\u%04x" % ord(m.group(0)), text) + "\n").encode("utf-8")
    except (TypeError, ValueError):
        raise ApplyError("%s holds values that are not plain YAML data (dates, tags); regauth cannot rewrite it" % shown)


def _mapping(parent: dict, key: str, shown: str) -> dict:
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    if not isinstance(value, dict):
        raise ApplyError("%s: %s is not a mapping; fix or remove it" % (shown, key))
    return value


# --- regauth-apply section end ---


# --- regauth-apply section: docker podman crio kubelet ---
# ---------------------------------------------------------------- Docker-style auths
def basic_auth(username: str, password: str) -> str:
    return base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")


def auths_merge(existing: str | None, creds: list[dict], shown: str, helpers_conflict: str) -> str:
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
                    "remove that credHelpers entry (or drop this target from the profile)" % (shown, cred["host"], helpers.get(key) or helpers.get(cred["host"]))
                )
            auths[key] = {"auth": basic_auth(cred["username"], cred["password"])}
    if helpers_conflict == "docker" and doc.get("credsStore"):
        raise ApplyError(
            "%s: credsStore is %r, so Docker asks docker-credential-%s for every registry and ignores auths; "
            "remove credsStore (or drop the docker target)" % (shown, doc["credsStore"], doc["credsStore"])
        )
    return dump_document(doc, shown).decode("utf-8")


def auths_verify(text: str, creds: list[dict]) -> None:
    auths = json.loads(text)["auths"]
    for cred in creds:
        for key in cred.get("keys") or [cred["host"]]:
            got = base64.b64decode(auths[key]["auth"]).decode("utf-8")
            if got != "%s:%s" % (cred["username"], cred["password"]):
                raise ApplyError("self-check failed: auth for %s does not read back exactly" % key)


# --- regauth-apply section end ---


# --- regauth-apply section: k3s rke2 docker podman crio ---
# ---------------------------------------------------------------- certs.d directories
def certs_dir_edits(outcome: Outcome, ctx: Context, certs_dir: str, creds: list[dict], restart: bool = False) -> None:
    """Docker / containers ``certs.d/HOST/{ca.crt,client.cert,client.key}`` (read per pull)."""
    for cred in creds:
        tls = cred.get("tls")
        if not tls:
            continue
        base = "%s/%s/" % (certs_dir.rstrip("/"), cred["host"])
        if "ca" in tls:
            outcome.add(ctx, base + "ca.crt", tls["ca"].encode("ascii"), 0o644, restart)
        if "cert" in tls:
            outcome.add(ctx, base + "client.cert", tls["cert"].encode("ascii"), 0o644, restart)
            outcome.add(ctx, base + "client.key", tls["key"].encode("ascii"), 0o600, restart)


# --- regauth-apply section end ---


# --- regauth-apply section: hosts ---
# ---------------------------------------------------------------- containerd hosts.toml (mirrors, TLS)
HOSTS_MARK = "# regauth managed hosts.toml; host entries written by regauth: "


def toml_value(value) -> str:
    """Plain TOML for values read back from a hosts.toml (strings, bools, numbers, arrays, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join("%s = %s" % (toml_key(k), toml_value(v)) for k, v in value.items()) + "}"
    raise ApplyError("hosts.toml holds a value regauth cannot rewrite (%s)" % type(value).__name__)


def _tls_of(creds: list[dict], host: str | None) -> dict:
    for cred in creds:
        if host is not None and cred["host"] == host:
            return cred.get("tls") or {}
    return {}


def hosts_toml(entry: dict, creds: list[dict], existing: str | None, shown: str) -> str:
    """One ``certs.d/NAMESPACE/hosts.toml``: our server/TLS/mirrors first, then what the
    file already had that is not ours (its other ``[host]`` entries and settings)."""
    top: dict = {"server": entry["server"]}
    tls = _tls_of(creds, entry.get("tls_host"))
    if "ca" in tls:
        top["ca"] = "ca.crt"
    if "cert" in tls:
        top["client"] = [["client.cert", "client.key"]]
    ours: dict = {}
    for mirror in entry.get("mirrors", []):
        table: dict = {"capabilities": ["pull", "resolve"]}
        if mirror.get("override_path"):
            table["override_path"] = True
        mtls = _tls_of(creds, mirror.get("tls_host"))
        if "ca" in mtls:
            table["ca"] = "../%s/ca.crt" % mirror["tls_host"]
        if "cert" in mtls:
            table["client"] = [["../%s/client.cert" % mirror["tls_host"], "../%s/client.key" % mirror["tls_host"]]]
        ours[mirror["url"]] = table
    keep_top: dict = {}
    keep_hosts: dict = {}
    if existing is not None and existing.strip():
        previous: list = []
        for line in existing.splitlines():
            if line.startswith(HOSTS_MARK):
                try:
                    previous = json.loads(line[len(HOSTS_MARK):])
                except ValueError:
                    previous = []
        try:
            import tomllib
        except ImportError:
            tomllib = None  # type: ignore[assignment]
        if tomllib is None:
            log("%s: python3 has no tomllib (< 3.11), so the existing file is replaced (kept as .regauth.orig)" % shown)
        else:
            try:
                doc = tomllib.loads(existing)
            except tomllib.TOMLDecodeError:
                raise ApplyError("%s is not valid TOML; fix or remove it" % shown)
            for key, value in doc.items():
                if key == "host" and isinstance(value, dict):
                    for url, table in value.items():
                        if url not in ours and url not in previous:
                            keep_hosts[url] = table
                elif key not in top:
                    keep_top[key] = value
    lines = [HOSTS_MARK + json.dumps(sorted(ours))]
    for key, value in list(top.items()) + list(keep_top.items()):
        lines.append("%s = %s" % (toml_key(key), toml_value(value)))
    for url, table in list(ours.items()) + list(keep_hosts.items()):
        lines.append("")
        lines.append("[host.%s]" % toml_string(url))
        for key, value in table.items():
            lines.append("  %s = %s" % (toml_key(key), toml_value(value)))
    return "\n".join(lines) + "\n"


def hosts_edits(outcome: Outcome, ctx: Context, certs_dir: str, step: dict, creds: list[dict]) -> None:
    """Every certs.d file of the plan: hosts.toml per namespace, CA / client files per host.
    containerd reads hosts.toml at each pull, so none of these needs a restart."""
    for entry in step.get("hosts", []):
        base = "%s/%s/" % (certs_dir.rstrip("/"), entry["dir"])
        tls = _tls_of(creds, entry.get("tls_host"))
        if "ca" in tls:
            outcome.add(ctx, base + "ca.crt", tls["ca"].encode("ascii"), 0o644, restart=False)
        if "cert" in tls:
            outcome.add(ctx, base + "client.cert", tls["cert"].encode("ascii"), 0o644, restart=False)
            outcome.add(ctx, base + "client.key", tls["key"].encode("ascii"), 0o600, restart=False)
        path = base + "hosts.toml"
        text = hosts_toml(entry, creds, ctx.read(path), path)
        try:
            import tomllib

            tomllib.loads(text)
        except ImportError:
            pass
        except ValueError:
            raise ApplyError("self-check failed: %s would not parse" % path)
        outcome.add(ctx, path, text.encode("utf-8"), 0o644, restart=False)


def _section(text: str, path: tuple) -> tuple[int, int] | None:
    """Start and end offsets of the ``[path]`` table section, or None."""
    headers = table_headers(text)
    for idx, (offset, hpath) in enumerate(headers):
        if hpath == path:
            return offset, headers[idx + 1][0] if idx + 1 < len(headers) else len(text)
    return None


_CONFIG_PATH_LINE = re.compile(r"^([ \t]*)config_path[ \t]*=[ \t]*(\"[^\"\n]*\"|'[^'\n]*')[ \t]*(#.*)?$", re.M)


def config_path_value(text: str, registry: tuple) -> str | None:
    """The ``config_path`` set in the ``[...registry]`` table itself (None: not set there)."""
    where = _section(text, registry)
    if where is None:
        return None
    m = _CONFIG_PATH_LINE.search(text, where[0], where[1])
    if not m:
        return None
    raw = m.group(2)
    return json.loads(raw) if raw.startswith('"') else raw[1:-1]


def set_config_path(text: str, registry: tuple, value: str) -> tuple[str, bool]:
    """Set ``config_path`` inside an existing ``[...registry]`` table; False if there is none."""
    where = _section(text, registry)
    if where is None:
        return text, False
    line = "config_path = %s  # set by regauth: hosts.toml (certs.d) directory" % toml_string(value)
    m = _CONFIG_PATH_LINE.search(text, where[0], where[1])
    if m:
        return text[: m.start()] + m.group(1) + line + text[m.end():], True
    eol = text.find("\n", where[0])
    eol = len(text) if eol < 0 else eol + 1
    indent = "  " if text[where[0]:eol].startswith((" ", "\t")) else ""
    prefix = text[:eol] if text[:eol].endswith("\n") else text[:eol] + "\n"
    return prefix + indent + line + "\n" + text[eol:], True


def hosts_conflicts(text: str, version: int) -> list[str]:
    """Settings containerd refuses next to ``config_path`` (FIELD_NOTES section 2)."""
    registry = CONTAINERD_AUTH_TABLE[version][:-1]
    found = []
    for _, path in table_headers(text):
        if path[: len(registry) + 1] == registry + ("mirrors",) and len(path) > len(registry) + 1:
            found.append("registry.mirrors.%s" % path[len(registry) + 1])
        if version <= 2 and path[: len(registry) + 1] == registry + ("configs",) and path[-1] == "tls":
            found.append("registry.configs.%s.tls" % path[len(registry) + 1])
    try:
        import tomllib

        tree = _dig(tomllib.loads(text), registry) if text.strip() else None
    except (ImportError, ValueError):
        tree = None
    if isinstance(tree, dict):
        for name in (tree.get("mirrors") or {}):
            if "registry.mirrors.%s" % name not in found:
                found.append("registry.mirrors.%s" % name)
    return found


def effective_certs_dir(text: str, step: dict) -> str:
    """First directory of the config's ``config_path`` with placeholders (MicroK8s) resolved."""
    version = top_level_version(text, table_headers(text)) or 1
    value = config_path_value(text, CONTAINERD_AUTH_TABLE[version][:-1]) or step["hosts_dir"]
    first = value.split(":")[0]
    for placeholder, real in sorted((step.get("placeholders") or {}).items()):
        first = first.replace(placeholder, real)
    if not first.startswith("/") or "${" in first:
        raise ApplyError("config_path %r is not an absolute directory regauth can write hosts.toml into" % value)
    return first



# --- regauth-apply section end ---


# --- regauth-apply section: containerd ---
# ---------------------------------------------------------------- containerd
def prepare_containerd(step: dict, ctx: Context) -> Outcome:
    out = Outcome("containerd", {"policy": step.get("restart", "if-running"), "units": [step.get("unit", "containerd")]})
    if not proceed(step, ctx, out):
        return out
    creds = credentials(step["registries"], ctx.fetcher)
    out.summary = cred_summary(creds)
    existing = ctx.read(step["path"])
    new = containerd_merge(existing, step, creds)
    containerd_verify(existing, new, creds, step)
    out.add(ctx, step["path"], new.encode("utf-8"), 0o600)
    if needs_hosts(creds):
        hosts_edits(out, ctx, effective_certs_dir(new, step), step, creds)
    return out


STEPS["containerd"] = prepare_containerd
# --- regauth-apply section end ---


# --- regauth-apply section: microk8s ---
# ---------------------------------------------------------------- MicroK8s
_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def snap_render(template: str) -> str:
    """What the snap's sed does at every start, with every ``${NAME}`` replaced (worst case)."""
    return _PLACEHOLDER.sub("/rendered", template)


def wait_for(full: str, seconds: float, shown: str) -> bool:
    deadline = time.monotonic() + max(0.0, seconds)
    if os.path.exists(full):
        return True
    if seconds > 0:
        log("waiting up to %ds for %s (MicroK8s still installing?)" % (seconds, shown))
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        if os.path.exists(full):
            return True
    return os.path.exists(full)


def prepare_microk8s(step: dict, ctx: Context) -> Outcome:
    out = Outcome("microk8s", {"policy": step.get("restart", "if-running"), "units": step["units"], "command": step["restart_command"]})
    path = step["path"]
    if not wait_for(ctx.root + path, float(step.get("wait", 0)), path):
        if step.get("if_missing") == "skip":
            out.skipped = "%s does not exist (MicroK8s not installed; if_missing: skip)" % path
            return out
        raise ApplyError(
            "%s did not appear within %ss: install MicroK8s before regauth-apply runs (snap install microk8s --classic "
            "earlier in runcmd), raise wait_for_template, or set if_missing: skip" % (path, step.get("wait", 0))
        )
    creds = credentials(step["registries"], ctx.fetcher)
    out.summary = cred_summary(creds)
    existing = ctx.read(path)
    new = containerd_merge(existing, step, creds)
    containerd_verify(existing, new, creds, step)
    # The snap seds ${SNAP}, ${SNAP_DATA}, ... over the template at every start: prove
    # that our values survive any such substitution (they hold no '$' at all).
    containerd_verify(None, snap_render(new), creds, None, values_only=True)
    out.add(ctx, path, new.encode("utf-8"), 0o600)
    if needs_hosts(creds):
        hosts_edits(out, ctx, effective_certs_dir(new, step), step, creds)
    return out


STEPS["microk8s"] = prepare_microk8s
# --- regauth-apply section end ---


# --- regauth-apply section: k3s rke2 ---
# ---------------------------------------------------------------- k3s / RKE2 registries.yaml
def registries_yaml_merge(existing: str | None, step: dict, creds: list[dict], shown: str) -> str:
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
                raise ApplyError("%s: mirrors.%s.endpoint is not a list; fix or remove it" % (shown, mirror["namespace"]))
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
                raise ApplyError("self-check failed: auth for %s does not read back exactly" % key)
    out.add(ctx, path, new.encode("utf-8"), 0o600)
    certs_dir_edits(out, ctx, step["tls_dir"], creds, restart=True)
    return out


STEPS["k3s"] = STEPS["rke2"] = prepare_registries_yaml
# --- regauth-apply section end ---


# --- regauth-apply section: docker podman crio ---
# ---------------------------------------------------------------- Docker, Podman, CRI-O
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


STEPS["docker"] = STEPS["podman"] = STEPS["crio"] = prepare_auth_file
# --- regauth-apply section end ---


# --- regauth-apply section: kubelet ---
# ---------------------------------------------------------------- kubelet
def provider_merge(existing: str | None, provider: dict, shown: str) -> str:
    """A CredentialProviderConfig with our provider, keeping the file's other providers."""
    doc = load_document(existing, shown)
    if doc:
        if doc.get("kind") != "CredentialProviderConfig" or doc.get("apiVersion") != "kubelet.config.k8s.io/v1":
            raise ApplyError("%s is %s %s, not kubelet.config.k8s.io/v1 CredentialProviderConfig; move it aside or point credential_provider.config elsewhere" % (shown, doc.get("apiVersion"), doc.get("kind")))
    else:
        doc = {"apiVersion": "kubelet.config.k8s.io/v1", "kind": "CredentialProviderConfig"}
    providers = doc.get("providers") or []
    if not isinstance(providers, list):
        raise ApplyError("%s: providers is not a list; fix or remove it" % shown)
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
        binary = "%s/%s" % (provider["bin_dir"].rstrip("/"), provider["entry"]["name"])
        if not os.path.exists(ctx.root + binary):
            out.notes.append("%s is not installed: kubelet cannot get credentials until it is (cloud-provider-gcp releases)" % binary)
        out.notes.append(
            "kubelet must run with --image-credential-provider-config=%s --image-credential-provider-bin-dir=%s (kubeadm: KUBELET_EXTRA_ARGS)"
            % (path, provider["bin_dir"])
        )
    return out


STEPS["kubelet"] = prepare_kubelet
# --- regauth-apply section end ---


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
        ctx = Context(root, fetcher, not args.no_restart)
        unknown = [step.get("kind") for step in plan["steps"] if step.get("kind") not in STEPS]
        if unknown:
            log("unknown step kind %r; re-render with a matching regauth" % unknown[0])
            return 2
        try:
            outcomes = [STEPS[step["kind"]](step, ctx) for step in plan["steps"]]
        except ApplyError as exc:
            log("FAILED: %s; the runtime config was left unchanged" % exc)
            return 1
        except OSError as exc:
            log("FAILED: %s on %s; the runtime config was left unchanged" % (exc.strerror, exc.filename))
            return 1
        try:
            for outcome in outcomes:
                commit(outcome, ctx.do_restart, ctx.pending)
        except ApplyError as exc:
            log("FAILED: %s" % exc)
            return 1
        except OSError as exc:
            log("FAILED: %s on %s while writing" % (exc.strerror, exc.filename))
            return 1
    log("done in %d ms (profile %s)" % ((time.monotonic() - started) * 1000, plan.get("profile", "?")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
