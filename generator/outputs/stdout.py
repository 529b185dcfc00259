"""Render results for stdout instead of out/NAME/: ``-o -`` and ``--format terraform``.

``-o -`` is the user-data alone, byte for byte what ``out/NAME/user-data`` would hold
(so ``regauth render P -o - > user-data`` and the file are the same).

``--format terraform`` answers Terraform's ``external`` data source, whose program must
print one flat JSON object with string values only:

- ``user_data``: the user-data as text, or its base64 when it is gzip-compressed (binary);
- ``user_data_encoding``: ``text`` or ``base64`` (GCE: send ``user-data-encoding = "base64"``
  in the latter case);
- ``user_data_base64``: base64 of the user-data, always (AWS ``user_data_base64``);
- ``manifest``: manifest.json as a JSON string (``jsondecode()`` it in Terraform);
- ``profile``: the profile name.

The user-data may hold credentials (``fetch: build``): Terraform stores data-source
results in its state, so the README shows ``sensitive(...)`` and ``fetch: boot``.
"""

from __future__ import annotations

import base64
import json

from generator.outputs.manifest import OutputFile, with_manifest


def _user_data(files: list[OutputFile]) -> OutputFile:
    (found,) = [f for f in files if f.relpath == "user-data"]
    return found


def user_data_bytes(rendered) -> bytes:  # type: ignore[no-untyped-def]
    return _user_data(rendered.files).data


def terraform_result(rendered) -> str:  # type: ignore[no-untyped-def]
    files = with_manifest(rendered)
    raw = _user_data(files).data
    (manifest_file,) = [f for f in files if f.relpath == "manifest.json"]
    b64 = base64.b64encode(raw).decode("ascii")
    # render writes user-data.b64 exactly when user-data is gzip (binary, not a JSON string)
    if any(f.relpath == "user-data.b64" for f in files):
        text, encoding = b64, "base64"
    else:
        text, encoding = raw.decode("utf-8"), "text"
    result = {
        "profile": rendered.name,
        "user_data": text,
        "user_data_encoding": encoding,
        "user_data_base64": b64,
        "manifest": manifest_file.data.decode("utf-8"),
    }
    return json.dumps(result, sort_keys=True) + "\n"
