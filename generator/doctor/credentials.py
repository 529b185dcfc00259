"""Checks on one stored registry credential, shared by every config kind.

Artifact Registry accepts Basic credentials with the username ``_json_key``
(password = the key JSON), ``_json_key_base64`` (password = base64 of the key file)
or ``oauth2accesstoken`` (password = an access token that expires in about an hour).
The classic breakage is the key JSON pasted into a double-quoted TOML/YAML string:
its ``\\n`` escapes become real newlines and the password is no longer JSON.  The key
itself is judged by :func:`generator.core.sakey.check_service_account_key`, the
same check ``regauth render`` runs.  Nothing here ever quotes a password.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from generator.doctor.findings import Finding
from generator.core.hosts import is_google_registry as is_gar_host
from generator.core.sakey import check_service_account_key
from generator.targets.base import BOOT_MASK

GAR_USERNAMES = ("_json_key", "_json_key_base64", "oauth2accesstoken")


@dataclass(frozen=True)
class StoredCredential:
    """One credential entry as a runtime config holds it (values never printed)."""

    file: str
    host: str  # the key it is stored under, as written
    path: str  # where it sits in the file, spelled the file's way
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    auth: str | None = field(default=None, repr=False)  # base64("user:password")
    identitytoken: str | None = field(default=None, repr=False)
    lines: dict[str, int] = field(default_factory=dict)  # field name -> line (and "" -> entry)

    def line(self, name: str) -> int:
        return self.lines.get(name) or self.lines.get("", 0)

    @property
    def present(self) -> bool:
        return any(v for v in (self.username, self.password, self.auth, self.identitytoken))


_FIX_KEY = (
    "store the key file exactly as downloaded: with username _json_key_base64 the password is "
    "`base64 -w0 key.json`; with _json_key it is the file's JSON in a TOML literal string ('''...''') "
    "or a correctly escaped string (regauth render writes it for you)"
)


def boot_note(cred: StoredCredential) -> str:
    """A note when the password is regauth's placeholder for a secret fetched at boot, else "".

    ``regauth render`` previews (rootfs/) show ``<fetched at boot>`` where regauth-apply
    puts a Secret Manager payload on the node; there is nothing to check until then.
    """
    password = cred.password
    if not cred.username and cred.auth:
        decoded = _decode_auth(cred.auth)
        password = decoded[1] if decoded else None
    if password != BOOT_MASK:
        return ""
    where = f"{cred.file}:{cred.line('password')}" if cred.line("password") else cred.file
    return f"{where}: {cred.path}: the password for {cred.host} is fetched at boot (regauth's {BOOT_MASK} placeholder): regauth-apply reads it from Secret Manager and checks the key on the node"


def check_credential(cred: StoredCredential) -> list[Finding]:
    """Every problem with one stored credential; empty when it can work (or is fetched at boot)."""
    out: list[Finding] = []
    if boot_note(cred):
        return out

    def add(code: str, field_name: str, message: str, why: str, fix: str, severity: str = "error") -> None:
        out.append(Finding(code, cred.file, message, why, fix, line=cred.line(field_name), path=cred.path, severity=severity))

    username, password, source = cred.username, cred.password, "password"
    if not username and cred.auth:
        decoded = _decode_auth(cred.auth)
        if decoded is None:
            add("auth-field", "auth", "the auth value is not base64 of \"user:password\"",
                "the runtime cannot decode it, so no credentials are sent and the pull goes anonymous",
                "write auth = base64 of \"USERNAME:PASSWORD\" (printf '%s' 'USER:PASS' | base64 -w0), or use username and password fields")
            return out
        username, password, source = decoded[0], decoded[1], "auth"
    if not username:
        if cred.identitytoken:
            return out
        if password:
            add("username", source, "a password is stored without a username",
                "Basic auth needs both; registries (Artifact Registry included) reject an empty username",
                "add the username (for Artifact Registry: _json_key_base64 or _json_key)")
        return out
    if username == "oauth2accesstoken":
        add("oauth2accesstoken", "username" if source == "password" else source,
            "username oauth2accesstoken stores a short-lived access token",
            "Google access tokens expire after about an hour; the pull works once, then fails with "
            "'failed to fetch oauth token ... 401 Unauthorized'",
            "use a service-account key: username _json_key_base64 and password = `base64 -w0 key.json` "
            "(or let regauth render write it)")
        return out
    if username == "_json_key":
        _check_json_key(password or "", source, add)
    elif username == "_json_key_base64":
        _check_json_key_base64(password or "", source, add)
    elif is_gar_host(cred.host):
        add("username", "username" if source == "password" else source,
            f"username '{username}' is not one Artifact Registry accepts",
            "Artifact Registry only takes _json_key (password = key JSON), _json_key_base64 (password = "
            "base64 of the key file) or oauth2accesstoken; anything else is refused with 401",
            "write username _json_key_base64 and password = `base64 -w0 key.json`")
    return out


def _decode_auth(value: str) -> tuple[str, str] | None:
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep else None


def _check_json_key(password: str, source: str, add) -> None:  # type: ignore[no-untyped-def]
    if not password.strip():
        add("json-key-invalid", source, "username _json_key with an empty password",
            "Artifact Registry expects the service-account key JSON as the password", _FIX_KEY)
        return
    if not password.lstrip().startswith("{") and _looks_like_base64_json(password):
        add("json-key-invalid", source, "the _json_key password is base64, not the key JSON",
            "with _json_key Artifact Registry parses the password as JSON; base64 text is refused with 401",
            "change the username to _json_key_base64 (the password stays as it is)")
        return
    _report_key(password.encode("utf-8"), source, add, "json-key-invalid", "the _json_key password")


def _check_json_key_base64(password: str, source: str, add) -> None:  # type: ignore[no-untyped-def]
    if password.lstrip().startswith("{"):
        add("json-key-base64-invalid", source, "the _json_key_base64 password is the key JSON itself, not its base64",
            "Artifact Registry base64-decodes the password; raw JSON does not decode, so the login fails with 401",
            "either change the username to _json_key, or set the password to `base64 -w0 key.json`")
        return
    try:
        raw = base64.b64decode("".join(password.split()), validate=True)
    except (binascii.Error, ValueError):
        add("json-key-base64-invalid", source, "the _json_key_base64 password is not valid base64",
            "Artifact Registry cannot decode it into a key, so the login fails with 401 "
            "(a truncated copy, or characters added by an editor or a shell)",
            "set the password to the output of `base64 -w0 key.json`")
        return
    _report_key(raw, source, add, "json-key-base64-invalid", "the base64-decoded _json_key_base64 password")


def _looks_like_base64_json(text: str) -> bool:
    try:
        return base64.b64decode("".join(text.split()), validate=True).lstrip().startswith(b"{")
    except (binascii.Error, ValueError):
        return False


def _report_key(raw: bytes, source: str, add, invalid_code: str, label: str) -> None:  # type: ignore[no-untyped-def]
    """Run the render-time key check and turn what it finds into doctor findings."""
    for kf in check_service_account_key(raw):
        if kf.message.startswith(("the key is not", "the key JSON must")):
            add(invalid_code, source, kf.message.replace("the key", label, 1).replace(" at at line", " at line"),
                "Artifact Registry parses the password as the key JSON; anything else is refused with 401 "
                "('failed to fetch oauth token ... 401 Unauthorized')", _FIX_KEY)
        else:
            add("key-invalid", source, f"the service-account key in the password: {kf.message}",
                "Artifact Registry cannot authenticate a key that does not load, so the login fails with 401", _FIX_KEY)
