"""Validate user-data with the *real* ``cloud-init schema`` of a given cloud-init release.

Why the real tool: cloud-init's JSON schema, its YAML loader and its quirks (22.4 does
not flag unknown top-level keys, 25.1 does; both want ``permissions`` as a string) are
the consumer we must satisfy, and they differ by release. The unpacked Debian .debs and
their venvs come from ``scripts/deps/cloudinit.sh``.

Why we split the input ourselves: ``cloud-init schema --config-file`` reads one YAML
document. It does not understand gzip or multipart MIME, which we emit for large or
merged user-data, so each ``#cloud-config`` part is extracted and checked on its own.

Why a private mount namespace: run as root, 25.1's ``schema`` writes
``/run/cloud-init/instance-data*.json``. A tmpfs over ``/run`` in a throw-away mount
namespace keeps the host's ``/run`` clean.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import os
import subprocess
import tempfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KNOWN_VERSIONS = ("22.4", "25.1")
GZIP_MAGIC = b"\x1f\x8b"
CLOUD_CONFIG_TYPES = ("text/cloud-config", "text/cloud-config-jsonp")
SCHEMA_TIMEOUT_S = 60


def cache_dir() -> Path:
    """``$REGAUTH_CACHE`` or ``<repo>/.cache`` (the deps script uses the same rule)."""
    return Path(os.environ.get("REGAUTH_CACHE") or REPO / ".cache")


def cloudinit_dir(version: str) -> Path:
    """Where ``scripts/deps/cloudinit.sh`` unpacked cloud-init ``version`` (e.g. ``22.4``)."""
    return cache_dir() / "cloud-init" / version


def available_versions() -> list[str]:
    """Versions whose unpacked .deb and venv are complete, oldest first."""
    base = cache_dir() / "cloud-init"
    if not base.is_dir():
        return []
    found = [p.name for p in base.iterdir() if (p / ".complete").is_file()]
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))


def full_version(version: str) -> str:
    """The Debian package version behind ``version`` (e.g. ``22.4.2-1+deb12u4``)."""
    return (cloudinit_dir(version) / "VERSION").read_text().strip()


@dataclass(frozen=True)
class UserDataPart:
    """One part of user-data after gzip/MIME unwrapping."""

    label: str  # where it came from, for messages: "user-data", "part 2 (text/cloud-config)"
    content_type: str  # MIME type, or the type implied by the first line
    payload: bytes

    @property
    def is_cloud_config(self) -> bool:
        return self.content_type in CLOUD_CONFIG_TYPES or self.payload.lstrip().startswith(b"#cloud-config")


def _maybe_gunzip(data: bytes) -> bytes:
    return gzip.decompress(data) if data.startswith(GZIP_MAGIC) else data


def _type_from_first_line(payload: bytes) -> str:
    """cloud-init's own starts-with rules (cloudinit/handlers INCLUSION_TYPES_MAP)."""
    first = payload.lstrip()[:64]
    for prefix, ctype in (
        (b"#cloud-config-archive", "text/cloud-config-archive"),
        (b"#cloud-config-jsonp", "text/cloud-config-jsonp"),
        (b"#cloud-config", "text/cloud-config"),
        (b"#cloud-boothook", "text/cloud-boothook"),
        (b"#include", "text/x-include-url"),
        (b"#part-handler", "text/part-handler"),
        (b"## template: jinja", "text/jinja2"),
        (b"#!", "text/x-shellscript"),
    ):
        if first.startswith(prefix):
            return ctype
    return "text/plain"


def split_user_data(user_data: bytes) -> list[UserDataPart]:
    """Unwrap gzip and multipart MIME (nested too) into leaf parts, in order."""
    data = _maybe_gunzip(user_data)
    head = data.lstrip()[:512].lower()
    if not head.startswith((b"content-type:", b"mime-version:")):
        return [UserDataPart("user-data", _type_from_first_line(data), data)]
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    parts: list[UserDataPart] = []
    _walk(msg, parts)
    return parts


def _walk(msg: Message, out: list[UserDataPart]) -> None:
    for sub in msg.walk():
        if sub.is_multipart():
            continue
        payload = sub.get_payload(decode=True) or b""
        payload = _maybe_gunzip(payload)
        ctype = sub.get_content_type()
        if ctype in ("text/x-not-multipart", "application/octet-stream", "application/x-gzip", "text/plain"):
            ctype = _type_from_first_line(payload)
        label = f"part {len(out) + 1} ({ctype}{', ' + sub.get_filename() if sub.get_filename() else ''})"
        out.append(UserDataPart(label, ctype, payload))


def _schema_command(version: str, config_file: Path) -> list[str]:
    root = cloudinit_dir(version)
    run = [str(root / "venv/bin/python"), str(root / "root/usr/bin/cloud-init"),
           "schema", "--config-file", str(config_file)]
    if os.geteuid() != 0:
        return run  # cannot write /run anyway
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"', "sh", *run]


def _check_one(payload: bytes, version: str) -> tuple[bool, str]:
    root = cloudinit_dir(version)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "PYTHONPATH": str(root / "root/usr/lib/python3/dist-packages")}
    with tempfile.TemporaryDirectory(prefix="regauth-schema-") as tmp:
        cfg = Path(tmp) / "user-data.yaml"
        cfg.write_bytes(payload)
        proc = subprocess.run(_schema_command(version, cfg), env=env, capture_output=True,
                              text=True, timeout=SCHEMA_TIMEOUT_S, cwd=tmp, check=False)
    output = (proc.stdout + proc.stderr).replace(str(cfg), "<user-data>").strip()
    # Only exit 0 is valid. Exit 1 is "invalid"; anything else (a traceback, a missing
    # module) is a harness failure and must not pass silently either.
    return proc.returncode == 0, output


def schema_check(user_data: bytes, version: str) -> tuple[bool, str]:
    """Run real ``cloud-init schema`` of ``version`` on every cloud-config part.

    Returns ``(ok, output)``: ok only if there is at least one ``#cloud-config`` part
    and every one of them is valid. ``output`` has one labelled block per part, so a
    failure names the part. Non-cloud-config parts (scripts, boothooks) are listed as
    skipped: cloud-init has no schema for them.
    """
    root = cloudinit_dir(version)
    if not (root / ".complete").is_file():
        raise FileNotFoundError(
            f"cloud-init {version} not unpacked in {root}; run scripts/deps/cloudinit.sh debs "
            f"(available: {available_versions() or 'none'})"
        )
    try:
        parts = split_user_data(user_data)
    except (OSError, EOFError, ValueError) as exc:  # bad gzip stream
        return False, f"cannot unpack user-data: {exc}"
    lines: list[str] = []
    ok = True
    checked = 0
    for part in parts:
        if not part.is_cloud_config:
            lines.append(f"[{part.label}] skipped: no schema for {part.content_type}")
            continue
        if part.content_type == "text/cloud-config-jsonp":
            lines.append(f"[{part.label}] skipped: jsonp patches are not schema-checked")
            continue
        checked += 1
        payload = part.payload
        if not payload.lstrip().startswith(b"#cloud-config"):
            # A MIME part typed text/cloud-config needs no header line, but the
            # schema command refuses a file without one.
            payload = b"#cloud-config\n" + payload
        part_ok, out = _check_one(payload, version)
        ok = ok and part_ok
        lines.append(f"[{part.label}] {'valid' if part_ok else 'INVALID'}: {out}")
    if checked == 0:
        ok = False
        lines.append("no #cloud-config part found")
    return ok, "\n".join(lines)
