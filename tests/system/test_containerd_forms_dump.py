"""Every config form of tests/unit/test_node_containerd_forms.py, judged by real containerd.

For each containerd series, each case the node merges is written to a temp file and read
back with `containerd config dump`: it must load, the auth containerd will use for each
host must be exactly the profile's, and everything outside the registry tree must dump
the same as the original file. Cases the node refuses for this series must be ones the
original file already fails on, or version/BOM mismatches the refusal names.
(CRI-plugin startup checks, such as configs.tls next to config_path, are not covered by
`config dump`: see FIELD_NOTES section 8; the refusals for those are unit-tested.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.node import containerd as node_containerd
from generator.node.errors import ApplyError
from tests.support.containerd import Containerd, ConfigRejected, config_dump, containerd_binary, dumped_auth, without_registry  # noqa: F401
from tests.unit.test_node_containerd_forms import CASES, HOSTS_DIR

pytestmark = pytest.mark.system

# Refusals expected for a series (the reason is in the node's message).
REFUSED_ON_2 = {"version-less dotted plugins (v1)": "version 1", "version-less [plugins.cri] (v1)": "version 1",
                "BOM and CRLF": "byte order mark"}
REFUSED_ON_1 = {"v3 header": "the config is version 3, but the profile says containerd 1."}


def test_merged_forms_load_in_real_containerd(containerd_binary: Containerd, tmp_path: Path) -> None:
    binary = containerd_binary
    step = {"path": "/etc/containerd/config.toml", "containerd_version": binary.minor_series,
            "hosts_dir": HOSTS_DIR}
    refused_here = REFUSED_ON_2 if binary.major >= 2 else REFUSED_ON_1
    checked = 0
    for name, (existing, creds, want) in CASES.items():
        if want != "merged":
            continue
        try:
            new = node_containerd.containerd_merge(existing, step, creds)
        except ApplyError as exc:
            assert name in refused_here and refused_here[name] in str(exc), (name, str(exc))
            continue
        assert name not in refused_here, f"{name}: merged, but containerd {binary.version} cannot read it"
        result, original = tmp_path / "result.toml", tmp_path / "original.toml"
        result.write_bytes(new.encode("utf-8"))
        original.write_bytes((existing or "").encode("utf-8"))
        try:
            dump = config_dump(binary, result)
        except ConfigRejected as exc:
            pytest.fail(f"{name}: containerd {binary.version} rejects the merged file: {exc}")
        for c in creds:
            auth = dumped_auth(binary, dump, c["host"])
            assert auth and auth.get("username") == c["username"] and auth.get("password") == c["password"], (name, c["host"])
        assert without_registry(binary, dump) == without_registry(binary, config_dump(binary, original)), name
        checked += 1
    assert checked >= 15
