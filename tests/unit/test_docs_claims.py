"""What the README and --help say about render is what render does (issue 17, item 12)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.conftest import ROOT, run_cli
from tests.support.keys import key_file_bytes, service_account_key

README = (ROOT / "README.md").read_text()


def _profiles_copy(tmp_path: Path, with_key: bool = True) -> Path:
    folder = tmp_path / "profiles"
    shutil.copytree(ROOT / "profiles", folder)
    if with_key:  # what `make demo` does
        key = folder / "keys" / "demo-gar-key.json"
        key.write_bytes(key_file_bytes(service_account_key()))
        key.chmod(0o600)
    return folder


def test_help_example_for_a_folder_names_what_the_examples_need(tmp_path: Path) -> None:
    text = run_cli("--help").out
    example = text[text.index("regauth render profiles/ ") :].split("regauth validate")[0]
    assert "REGAUTH_EXAMPLE_PASSWORD" in example and "make demo" in example
    folder = _profiles_copy(tmp_path)
    env_without = {"REGAUTH_EXAMPLE_PASSWORD": ""}  # run_cli inherits os.environ: make sure it is unset
    missing = run_cli("render", str(folder), "-o", str(tmp_path / "out"), env=env_without)
    assert missing.code == 2 and "REGAUTH_EXAMPLE_PASSWORD" in missing.err, missing.err
    ok = run_cli("render", str(folder), "-o", str(tmp_path / "out"), env={"REGAUTH_EXAMPLE_PASSWORD": "example-only"})
    assert ok.code == 0, ok.err  # the two things the help names are all the examples need


def test_render_says_when_and_why_user_data_was_gzipped(tmp_path: Path) -> None:
    folder = _profiles_copy(tmp_path)
    demo = (folder / "demo.yaml").read_text()
    # For AWS: a Docker node with a basic password, merged with the user's own 8 KB
    # cloud-config part: over 16 KB as text, and it fits once gzipped.  (No containerd
    # profile fits AWS any more: README, Limitations.)
    (folder / "pw").write_text("robot-password\n")
    (folder / "pw").chmod(0o600)
    (folder / "robot.yaml").write_text(
        "version: 1\ntargets:\n  docker: {}\nsecrets:\n  pw: {source: file, path: pw}\n"
        "registries:\n  - host: registry.example.com\n    auth: {type: basic, username: robot, secret: pw}\noutput:\n  cloud: aws\n"
    )
    theirs = tmp_path / "theirs.yaml"
    theirs.write_text("#cloud-config\n" + "".join(f"# site notes, line {i}: keep this node patched\n" for i in range(200)))
    (folder / "plain.yaml").write_text(demo.replace("output:\n", "output:\n  cloud: gce\n"))
    (folder / "always.yaml").write_text(demo.replace("output:\n", "output:\n  compress: always\n"))
    paths = [str(folder / f"{name}.yaml") for name in ("robot", "plain", "always")]
    r = run_cli("render", *paths, "-o", str(tmp_path / "out"), "--merge-with", str(theirs))
    assert r.code == 0, r.err
    notes = [line for line in r.err.splitlines() if "gzip" in line]
    assert (tmp_path / "out/robot/user-data").read_bytes()[:2] == b"\x1f\x8b"  # over AWS's 16 KB as text
    assert (tmp_path / "out/plain/user-data").read_bytes().startswith(b"Content-Type: multipart/mixed")  # GCE: not compressed
    assert len(notes) == 2 and notes[1] == "always: user-data is gzip-compressed (output.compress: always): send user-data.b64 with user-data-encoding=base64"
    # The README shows this very line (sizes aside).
    shown = next(line for line in README.splitlines() if line.startswith("robot: user-data is gzip-compressed"))
    assert re.sub(r"\d+", "N", shown) == re.sub(r"\d+", "N", notes[0])


def test_readme_on_boot_fetch_default_and_rotation(tmp_path: Path) -> None:
    import yaml

    from generator.profiles import load_profile

    folder = _profiles_copy(tmp_path, with_key=False)
    text = (folder / "demo-boot-fetch.yaml").read_text()
    (folder / "no-fetch.yaml").write_text(re.sub(r"\n\s*fetch: boot[^\n]*", "", text))
    assert load_profile(folder / "no-fetch.yaml").secrets  # loads
    assert {s.fetch for s in load_profile(folder / "no-fetch.yaml").secrets.values()} == {"build"}
    assert "safer default" not in README and "keeps user-data under AWS's 16 KB" not in README
    # User-data runs regauth-apply from runcmd (once per instance, no bootcmd): only images,
    # whose unit runs at every boot, can pick up a rotation, and only of version: latest.
    r = run_cli("render", str(folder / "demo-boot-fetch.yaml"), "-o", str(tmp_path / "out"))
    assert r.code == 0, r.err
    doc = yaml.safe_load((tmp_path / "out/demo-boot-fetch/user-data").read_bytes())
    assert "runcmd" in doc and "bootcmd" not in doc
    rotation = README[README.index("**Why boot-time fetch is the safer choice**") :].split("\n\n")[0]
    assert "only by images built from the Packer output" in rotation and "version: latest" in rotation and "runs once per instance" in rotation
