"""manifest.json: what was written, with mode, owner, sha256 and a secret flag.

Never a secret value.  A sha256 of a secret-bearing file is listed so golden-image
pipelines can diff outputs; it identifies content, it does not reveal it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from generator import __version__


@dataclass(frozen=True)
class OutputFile:
    """A file inside out/NAME/, relative path, with what the manifest says about it."""

    relpath: str
    data: bytes
    mode: int
    secret: bool
    vm_path: str | None = None
    owner: str | None = None
    note: str = ""

    def __repr__(self) -> str:
        return f"OutputFile({self.relpath!r}, {len(self.data)} bytes, mode={self.mode:04o}, secret={self.secret})"


def manifest(profile_name: str, files: list[OutputFile], steps: list[str], warnings: list[str]) -> bytes:
    entries = []
    for f in sorted(files, key=lambda f: f.relpath):
        entry: dict[str, object] = {
            "path": f.relpath,
            "mode": f"{f.mode:04o}",
            "size": len(f.data),
            "sha256": hashlib.sha256(f.data).hexdigest(),
            "secret": f.secret,
        }
        if f.vm_path:
            entry["vm_path"] = f.vm_path
        if f.owner:
            entry["owner"] = f.owner
        if f.note:
            entry["note"] = f.note
        entries.append(entry)
    doc = {
        "regauth": __version__,
        "profile": profile_name,
        "steps": steps,
        "warnings": warnings,
        "files": entries,
    }
    return (json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode("utf-8")


def with_manifest(rendered) -> list[OutputFile]:  # type: ignore[no-untyped-def]  # a generator.render.Rendered
    """The rendered files plus their manifest.json (render and --format terraform alike)."""
    doc = manifest(
        rendered.name,
        rendered.files,
        [s.summary for s in rendered.steps],
        [w.render() for w in rendered.warnings],
    )
    return rendered.files + [OutputFile("manifest.json", doc, 0o644, False)]
