"""The doctor corpus (tests/fixtures/doctor) made real: keys generated now, markers read.

Why placeholders: no private key may be committed, yet the mistakes doctor must find
live inside key material (a key JSON whose ``\\n`` escapes became newlines, base64
of half a key, a PEM cut short).  :func:`materialize` copies a fixture tree into a
temp dir, replacing each ``@NAME@`` with that form of a key generated for this run,
and sets modes to 0600 (credential files on a node are root-only; tests that check
the permission finding loosen one file on purpose).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.support.keys import key_file_bytes, service_account_key

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "doctor"
_MARKER = re.compile(r"expect: ([a-z0-9-]+): (.*?)(?=\s*;;\s*expect:|\s*$)")


@dataclass(frozen=True)
class Expect:
    line: int
    code: str
    text: str


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def key_forms(email: str = "puller@regauth-test.iam.gserviceaccount.com") -> dict[str, str]:
    """Every placeholder's replacement text (already escaped for TOML/YAML/JSON strings)."""
    key = service_account_key(email)
    file_bytes = key_file_bytes(key)
    compact = json.dumps(key)
    pem = key["private_key"]
    lines = pem.splitlines()
    bad_pem = dict(key, private_key="\n".join(lines[:6] + lines[-1:]) + "\n")  # body cut short
    backslash_n = dict(key, private_key=pem.replace("\n", "\\n"))  # escaped twice
    pasted_json = compact  # as pasted: its \n escapes become real newlines once the TOML/YAML string is decoded
    mangled = compact.replace("\\n", "\n")  # what containerd/k3s end up with after that decoding

    def escaped(text: str) -> str:
        return json.dumps(text)[1:-1]  # a JSON string body is a valid TOML basic / YAML double-quoted body

    return {
        "KEY_B64": _b64(file_bytes),
        "KEY_JSON": escaped(compact),
        "KEY_JSON_RAW": file_bytes.decode().rstrip("\n"),
        "KEY_JSON_PASTED": pasted_json.replace('"', '\\"'),
        "KEY_B64_TRUNCATED": _b64(file_bytes[: len(file_bytes) // 2]),
        "KEY_JSON_BAD_PEM": escaped(json.dumps(bad_pem)),
        "KEY_JSON_BACKSLASH_N": escaped(json.dumps(backslash_n)),
        "AUTH_JSON_KEY_B64": _b64("_json_key_base64:" + _b64(file_bytes)),
        "AUTH_JSON_KEY": _b64("_json_key:" + compact),
        "AUTH_JSON_KEY_PASTED": _b64("_json_key:" + mangled),
        "AUTH_OAUTH": _b64("oauth2accesstoken:ya29.not-a-real-token"),
        "AUTH_ROBOT": _b64("robot:s3cret-robot"),
    }


def secret_fragments() -> list[str]:
    """Substrings of the run's key that must never appear in any doctor output."""
    key = service_account_key()
    body = [line for line in key["private_key"].splitlines() if line and not line.startswith("-----")]
    forms = key_forms()
    return [*body[1:4], key["private_key_id"], forms["KEY_B64"][40:100], "s3cret-robot"]


def materialize(fixture: Path, dest: Path) -> Path:
    """Copy ``fixture`` (file or tree) under ``dest`` with keys filled in; modes 0600."""
    forms = key_forms()
    target = dest / fixture.name
    if fixture.is_dir():
        shutil.copytree(fixture, target)
        files = [p for p in target.rglob("*") if p.is_file()]
    else:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fixture, target)
        files = [target]
    for path in files:
        text = path.read_text()
        for name, value in forms.items():
            text = text.replace(f"@{name}@", value)
        assert "@KEY" not in text and "@AUTH" not in text, f"unknown placeholder in {path}"
        path.write_text(text)
        path.chmod(0o600)
    return target


def markers(path: Path) -> list[Expect]:
    """The ``# expect: CODE: text`` markers of a TOML/YAML fixture, with their lines."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        at = line.find("# expect:")
        if at >= 0:
            for m in _MARKER.finditer(line[at + 2 :]):
                found.append(Expect(number, m.group(1), m.group(2).strip()))
    return found
