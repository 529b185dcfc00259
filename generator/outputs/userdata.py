"""Packaging of the cloud-config: multipart MIME, gzip, base64 and cloud size limits.

- ``--merge-with FILE`` combines the user's existing user-data with ours as multipart
  MIME, their parts first, intact and in order.  Our part carries a ``Merge-Type``
  that appends lists, so cloud-init keeps their ``write_files``/``runcmd`` entries
  instead of replacing them with ours (its default for lists).
- gzip is deterministic (mtime 0, no file name) and the MIME boundary is derived from
  the content, so the same inputs give byte-identical output.
- Size limits are checked on what each cloud receives: GCE 256 KiB per metadata value
  (the base64 text when compressed, sent with ``user-data-encoding=base64``), AWS
  16 KB of raw user data, Azure 64 KB of base64 custom data.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from generator.errors import OutputTooLarge
from generator.messages import inputs as M

# Limits in bytes, and whether the cloud counts the base64 form.
CLOUD_LIMITS: dict[str, tuple[int, bool, str]] = {
    "gce": (256 * 1024, True, "GCE allows 256 KiB per metadata value"),
    "aws": (16 * 1024, False, "AWS allows 16 KB of user data before base64"),
    "azure": (64 * 1024, True, "Azure allows 64 KB of base64 custom data"),
    "none": (1 << 62, False, "no limit"),
}

# cloud-init picks a part handler from the first line when there is no MIME header.
_STARTS = (
    ("#cloud-config-archive", "text/cloud-config-archive"),
    ("#cloud-config", "text/cloud-config"),
    ("#cloud-boothook", "text/cloud-boothook"),
    ("#include", "text/x-include-url"),
    ("#part-handler", "text/part-handler"),
    ("## template: jinja", "text/jinja2"),
    ("#!", "text/x-shellscript"),
)
APPEND_MERGE = "list(append)+dict(no_replace,recurse_list)+str()"

if TYPE_CHECKING:
    from email.message import Message
    from email.mime.text import MIMEText


def _text_part(data: bytes, subtype: str) -> "MIMEText":
    from email import charset
    from email.mime.text import MIMEText

    # 8bit body, not base64: base64 inside MIME would defeat gzip and cloud-init reads
    # 8bit parts fine.
    utf8 = charset.Charset("utf-8")
    utf8.body_encoding = None
    return MIMEText(data.decode("utf-8"), subtype, utf8)


@dataclass(frozen=True)
class UserData:
    raw: bytes = field(repr=False)  # what a NoCloud seed or an AWS user_data (raw) takes (credentials inside)
    compressed: bool
    why: str = ""  # why it was compressed, for the render summary

    @property
    def base64(self) -> bytes:
        return base64.b64encode(self.raw)


def content_type_of(data: bytes) -> str | None:
    for prefix, ctype in _STARTS:
        if data.startswith(prefix.encode()):
            return ctype
    return None


def _parts_of(existing: bytes, filename: str) -> list["Message"]:
    from email import message_from_bytes, policy

    if existing[:2] == b"\x1f\x8b":
        existing = gzip.decompress(existing)
    if existing.lstrip().lower().startswith(b"content-type: multipart/") or existing.lower().startswith(b"mime-version:"):
        msg = message_from_bytes(existing, policy=policy.compat32)
        if msg.is_multipart():
            return [part for part in msg.get_payload()]  # type: ignore[union-attr]
    ctype = content_type_of(existing)
    if ctype is None:
        raise OutputTooLarge(
            [M.USERDATA_KIND.problem(filename)]
        )
    part = _text_part(existing, ctype.split("/", 1)[1])
    part.add_header("Content-Disposition", "attachment", filename=filename.rsplit("/", 1)[-1])
    return [part]


def multipart(ours: bytes, existing: list[tuple[str, bytes]]) -> bytes:
    # The email package costs ~15 ms to import; only --merge-with needs it.
    from email.mime.multipart import MIMEMultipart

    outer = MIMEMultipart()
    for filename, data in existing:
        for part in _parts_of(data, filename):
            outer.attach(part)
    mine = _text_part(ours, "cloud-config")
    mine.add_header("Content-Disposition", "attachment", filename="regauth.cfg")
    mine.add_header("Merge-Type", APPEND_MERGE)
    outer.attach(mine)
    outer.set_boundary("==regauth-" + hashlib.sha256(ours + b"".join(d for _, d in existing)).hexdigest()[:32] + "==")
    buf = io.BytesIO()
    from email.generator import BytesGenerator

    BytesGenerator(buf, mangle_from_=False, maxheaderlen=0).flatten(outer)
    return buf.getvalue()


@lru_cache(maxsize=16)
def deterministic_gzip(data: bytes) -> bytes:
    """gzip with mtime 0 and no name.  Cached: a fleet gzips the same apply script
    for every profile, and bytes objects cache their hash, so a hit costs nothing."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as handle:
        handle.write(data)
    return buf.getvalue()


def counted_size(data: UserData, cloud: str) -> int:
    limit, counts_base64, _ = CLOUD_LIMITS[cloud]
    # Plain text goes to GCE/Azure as is; compressed bytes have to travel as base64.
    if counts_base64 and data.compressed:
        return len(data.base64)
    if counts_base64 and cloud == "azure":
        return len(data.base64)
    return len(data.raw)


def package(plain: bytes, *, cloud: str, compress: str, profile_file: str) -> UserData:
    """Apply the compression policy and the cloud's size limit."""
    limit, _, why = CLOUD_LIMITS[cloud]
    candidate = UserData(plain, False)
    if compress == "always":
        candidate = UserData(deterministic_gzip(plain), True, "output.compress: always")
    elif compress == "auto" and counted_size(candidate, cloud) > limit:
        over = f"output.compress: auto, and {counted_size(candidate, cloud)} bytes uncompressed is over {limit}: {why}"
        candidate = UserData(deterministic_gzip(plain), True, over)
    size = counted_size(candidate, cloud)
    if size > limit:
        state = "gzip-compressed" if candidate.compressed else "uncompressed"
        fix = ("leave the node program out of user-data: set output.program: image (an image built with out/NAME/packer/ has it) "
               "or output.program: url with output.program_url (the VM fetches it at first boot; user-data checks its SHA-256), "
               "use fetch: boot for Secret Manager keys, split registries over several profiles, or trim --merge-with parts")
        if not candidate.compressed:
            fix = "set output.compress: auto (or always) in the profile, or " + fix
        raise OutputTooLarge([M.USERDATA_TOO_LARGE.problem(profile_file, "output.cloud", size=size, state=state, why=why, limit=limit, fix=fix)])
    return candidate
