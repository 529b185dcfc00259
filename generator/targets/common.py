"""What every target shares: option parsing for paths, restart and ``if_missing``,
and the plan entry each registry becomes.

Why one place: every runtime needs the same three decisions (where the file is,
whether to restart, what to do on a node where the runtime is not installed), and
every apply function reads registries the same way (``credentials()`` in the apply
script), so the plan entry shape is defined once here.
"""

from __future__ import annotations

from typing import Any

from generator.messages import inputs as M
from generator.profile.checker import Checker
from generator.secrets.resolve import Credential
from generator.targets.base import BOOT_MASK

RESTART_MODES = ("if-running", "never")
IF_MISSING = ("write", "skip", "fail")


def path_option(c: Checker, m: dict, p: tuple, key: str, default: str) -> str:
    """An absolute path option (a relative one would depend on cloud-init's cwd)."""
    value = c.string(m, key, p) or default
    if not value.startswith("/"):
        c.report(M.PATH_NOT_ABSOLUTE, p + (key,), key=key, default=default)
    elif any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        # NUL cannot be in a path at all; other controls (a newline) are typos that would
        # make a file nobody finds, and break the line-based logs and shell steps.
        c.report(M.PATH_CONTROL, p + (key,), key=key, default=default)
    return value


def if_missing_option(c: Checker, m: dict, p: tuple, default: str = "write", choices: tuple[str, ...] = IF_MISSING) -> str:
    return c.choice(m, "if_missing", p, choices, default)


def if_missing_schema(default: str = "write", choices: tuple[str, ...] = IF_MISSING) -> dict[str, Any]:
    return {
        "enum": list(choices),
        "default": default,
        "description": "When the runtime is not installed on the node: write (the file is read once it is), skip this target, or fail.",
    }


def restart_schema(default: str = "if-running") -> dict[str, Any]:
    return {"enum": list(RESTART_MODES), "default": default, "description": "Restart the runtime after a change, only if it is running; or never."}


def registry_entries(creds: list[Credential], keys: Any = None) -> list[dict[str, Any]]:
    """Plan entries (sorted by host): username, password or its boot fetch, route, TLS.

    ``keys(host) -> list[str]`` gives the names this runtime files credentials under
    (e.g. Docker's ``https://index.docker.io/v1/`` for Docker Hub); default: the host.
    """
    out = []
    for cred in sorted(creds, key=lambda c: c.host):
        entry: dict[str, Any] = {"host": cred.host, "username": cred.username}
        if keys is not None:
            entry["keys"] = list(keys(cred.host))
        if cred.password is not None:
            entry["password"] = cred.password.text()
        elif cred.identity is not None:
            entry["identity"] = cred.identity  # no password anywhere: the node's metadata server mints one
        else:
            assert cred.boot is not None
            entry["password_from"] = cred.boot.plan_entry()
        if cred.mirror_for:
            entry["mirror_for"] = cred.mirror_for
            if cred.path:
                entry["path"] = cred.path
        if cred.tls is not None:
            tls: dict[str, str] = {}
            if cred.tls.ca is not None:
                tls["ca"] = cred.tls.ca.decode("ascii")
            if cred.tls.cert is not None:
                tls["cert"] = cred.tls.cert.decode("ascii")
            if cred.tls.key is not None:
                tls["key"] = cred.tls.key.reveal().decode("ascii")
            entry["tls"] = tls
        out.append(entry)
    return out


def preview_creds(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries as the apply script's ``credentials()`` returns them, boot fetches masked."""
    out = []
    for entry in entries:
        cred = {k: v for k, v in entry.items() if k not in ("password", "password_from")}
        cred["password"] = entry.get("password", BOOT_MASK)
        out.append(cred)
    return out


def hosts_summary(creds: list[Credential]) -> str:
    return ", ".join(sorted(c.host for c in creds)) or "no registries"


def holds_secret(creds: list[Credential]) -> bool:
    return any(c.holds_secret for c in creds)


def mask_boot(entry: dict[str, Any]) -> dict[str, Any]:
    """A plan entry with its boot fetch replaced by a visible placeholder (previews)."""
    if "password_from" not in entry:
        return entry
    out = {k: v for k, v in entry.items() if k != "password_from"}
    out["password"] = BOOT_MASK
    return out


def preview_files(step: Any, note: str) -> list[Any]:
    """What the apply step writes on a node that has none of these files yet.

    Runs the apply script's own prepare function for this step kind (the code a node
    runs) against an empty root; nothing is written, the edits are only collected.
    """
    import tempfile

    from generator.node.files import Context
    from generator.node.main import steps
    from generator.targets.base import NodeFile

    spec = dict(step.spec)
    spec["if_missing"] = "write"
    spec["registries"] = [mask_boot(e) for e in spec["registries"]]
    with tempfile.TemporaryDirectory(prefix="regauth-preview-") as root:
        outcome = steps([spec["kind"]])[spec["kind"]](spec, Context(root, None, False))
    return [
        NodeFile(path=e.path, data=e.data, mode=e.mode, secret=e.mode == 0o600 and step.holds_secret, delivered=False, note=note)
        for e in outcome.edits
    ]
