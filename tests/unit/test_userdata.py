"""MIME multipart, gzip and cloud size limits of the user-data."""

from __future__ import annotations

import base64
import gzip
import email
from email import policy
from pathlib import Path

import pytest
import yaml

from generator.errors import OutputTooLarge
from generator.outputs.userdata import APPEND_MERGE, deterministic_gzip, multipart, package
from tests.conftest import gar_profile, run_cli, write_profile

OURS = b"#cloud-config\nruncmd:\n- [true]\n"


def test_multipart_keeps_their_parts_first_and_in_order() -> None:
    theirs_mime = multipart(b"#cloud-config\npackages: [containerd]\n", [("a.sh", b"#!/bin/sh\necho a\n")])
    combined = multipart(OURS, [("mime", theirs_mime), ("b.yaml", b"#cloud-config\nhostname: b\n")])
    msg = email.message_from_bytes(combined, policy=policy.compat32)
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/x-shellscript", "text/cloud-config", "text/cloud-config", "text/cloud-config"]
    assert parts[0].get_payload(decode=True) == b"#!/bin/sh\necho a\n"
    assert parts[2].get_payload(decode=True) == b"#cloud-config\nhostname: b\n"
    assert parts[3].get_payload(decode=True) == OURS and parts[3]["Merge-Type"] == APPEND_MERGE
    assert multipart(OURS, [("b.yaml", b"#cloud-config\nhostname: b\n")]) == multipart(OURS, [("b.yaml", b"#cloud-config\nhostname: b\n")])


def test_gzip_is_deterministic_and_round_trips() -> None:
    assert deterministic_gzip(OURS) == deterministic_gzip(OURS)
    assert gzip.decompress(deterministic_gzip(OURS)) == OURS


def test_auto_compresses_only_when_over_the_limit() -> None:
    assert not package(OURS, cloud="aws", compress="auto", profile_file="p").compressed
    big = b"#cloud-config\n" + b"# " + b"x" * 20000 + b"\n"
    packed = package(big, cloud="aws", compress="auto", profile_file="p")
    assert packed.compressed and gzip.decompress(packed.raw) == big
    assert package(OURS, cloud="gce", compress="always", profile_file="p").compressed


def test_too_big_even_compressed_names_the_cloud_limit() -> None:
    import os

    noise = base64.b64encode(os.urandom(30000))
    with pytest.raises(OutputTooLarge) as info:
        package(b"#cloud-config\n# " + noise, cloud="aws", compress="auto", profile_file="p.yaml")
    text = info.value.render()
    assert "gzip-compressed; AWS allows 16 KB of user data before base64 (16384 bytes)" in text
    with pytest.raises(OutputTooLarge) as info:
        package(b"#cloud-config\n# " + noise + noise, cloud="azure", compress="never", profile_file="p.yaml")
    assert "set output.compress: auto" in info.value.render()


def test_render_merge_with_and_gzip_output(profile_dir: Path) -> None:
    theirs = profile_dir / "theirs.yaml"
    theirs.write_bytes(b"#cloud-config\nwrite_files:\n- path: /etc/theirs\n  content: hi\n")
    profile = write_profile(profile_dir, (gar_profile(profile_dir).read_text() + "output: {cloud: gce, compress: always}\n"), name="aws")
    out = profile_dir / "out"
    result = run_cli("render", str(profile), "-o", str(out), "--merge-with", str(theirs))
    assert result.code == 0, result.err
    raw = (out / "aws/user-data").read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert base64.b64decode((out / "aws/user-data.b64").read_bytes()) == raw
    msg = email.message_from_bytes(gzip.decompress(raw), policy=policy.compat32)
    first, ours = msg.get_payload()
    assert first.get_payload(decode=True) == theirs.read_bytes()
    assert yaml.safe_load(ours.get_payload(decode=True))["runcmd"] == [["/usr/local/sbin/regauth-apply"]]


def test_merge_with_missing_file_exits_2(profile_dir: Path) -> None:
    result = run_cli("render", str(gar_profile(profile_dir)), "-o", str(profile_dir / "out"), "--merge-with", str(profile_dir / "nope"))
    assert result.code == 2 and "no such user-data file" in result.err
