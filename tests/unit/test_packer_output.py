"""out/NAME/packer/: layout, modes, the three secret modes, HCL escaping, determinism.

Packer itself runs in tests/system/test_packer_output.py; here the checks need no
binary: what is written, with which mode and manifest flag, and where a secret may
(and may not) appear.
"""

from __future__ import annotations

import base64
import json
import re
import stat
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import applyscript
from generator.outputs.hcl import hcl_list, hcl_string
from generator.outputs.packer import KNOWN_PLUGINS, PLAN_VARIABLE
from generator.targets import TARGETS
from tests.conftest import run_cli, write_profile
from tests.support.keys import key_file_bytes

# Every character class that has bitten HCL, shell, JSON or Go templates, plus a
# decomposed é (HCL would NFC-normalise it if the plan travelled as an HCL string).
CANARY = 'C4N4RY ${HOME} %{ if } {{ .Path }} \'sq\' "dq" \\bs `id` $(id) e\u0301 \b\f'

BOOT = """
version: 1
targets: {containerd: {version: "1.7"}}
secrets:
  gar-key: {source: gcp-secret-manager, project: regauth-test, secret: gar-reader, version: 3, fetch: boot}
registries:
  - host: europe-docker.pkg.dev
    auth: {type: gcp-service-account, secret: gar-key}
"""

BUILD_TIME = """
version: 1
targets: {containerd: {version: "1.7"}}
secrets:
  gar-key: {source: file, path: key.json}
  robot: {source: env, var: REGAUTH_TEST_CANARY}
registries:
  - host: europe-docker.pkg.dev
    auth: {type: gcp-service-account, secret: gar-key, username: _json_key}
  - host: registry.example.com:5000
    auth: {type: basic, username: robot, secret: robot}
"""


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, sa_key: dict) -> dict[str, object]:
    """One CLI run rendering the three modes (and the silenced variant)."""
    folder = tmp_path_factory.mktemp("packer-modes")
    key = folder / "key.json"
    key.write_bytes(key_file_bytes(sa_key))
    key.chmod(0o600)
    profiles = [
        write_profile(folder, BOOT, "boot"),
        write_profile(folder, BUILD_TIME + "output:\n  packer:\n    sources: [source.googlecompute.golden]\n", "plain"),
        write_profile(folder, BUILD_TIME, "nopacker"),
        write_profile(folder, BUILD_TIME + "output: {packer: {bake_secret: false}}\n", "quiet"),
        write_profile(folder, BUILD_TIME + "output:\n  packer:\n    bake_secret: true\n    sources: [source.googlecompute.golden, source.null.sandbox]\n", "baked"),
    ]
    result = run_cli("render", *map(str, profiles), "-o", str(folder / "out"), env={"REGAUTH_TEST_CANARY": CANARY})
    assert result.code == 0, result.err
    return {"out": folder / "out", "err": result.err, "key": key_file_bytes(sa_key)}


def test_boot_fetch_bakes_the_plan_without_a_secret(rendered: dict) -> None:
    node = rendered["out"] / "boot"
    files = sorted(p for p in _tree(node) if p.startswith("packer/"))
    assert files == [
        "packer/files/install.sh",
        "packer/files/rootfs/etc/regauth/plan.json",
        "packer/files/rootfs/etc/systemd/system/regauth-apply.service",
        "packer/files/rootfs/usr/local/sbin/regauth-apply",
        "packer/registry-auth.pkr.hcl",
        "packer/required-plugins.pkr.hcl",
    ]
    plan = node / "packer/files/rootfs/etc/regauth/plan.json"
    assert plan.read_bytes() == (node / "rootfs/etc/regauth/plan.json").read_bytes()
    assert '"password_from"' in plan.read_text() and '"password"' not in plan.read_text()
    assert _mode(plan) == 0o644
    snippet = (node / "packer/registry-auth.pkr.hcl").read_text()
    assert "\nvariable " not in snippet and "use_env_var_file" not in snippet
    install = (node / "packer/files/install.sh").read_text()
    assert re.search(r'^install -D -o root -g root -m 0644 "\$stage"/etc/regauth/plan.json /etc/regauth/plan.json$', install, re.MULTILINE)
    assert "boot.yaml" not in rendered["err"]  # nothing to warn about


def test_modes_and_manifest_flags(rendered: dict) -> None:
    for name in ("boot", "plain", "baked"):
        node = rendered["out"] / name
        manifest = {e["path"]: e for e in json.loads((node / "manifest.json").read_text())["files"]}
        packer = {p: e for p, e in manifest.items() if p.startswith("packer/")}
        assert packer, name
        for path, entry in packer.items():
            assert entry["mode"] == f"{_mode(node / path):04o}", path
        assert packer["packer/files/install.sh"]["mode"] == "0755"
        assert packer["packer/files/rootfs/usr/local/sbin/regauth-apply"]["mode"] == "0755"
        assert packer["packer/files/rootfs/usr/local/sbin/regauth-apply"]["vm_path"] == applyscript.VM_PATH
        assert packer["packer/files/rootfs/etc/systemd/system/regauth-apply.service"]["mode"] == "0644"
        assert packer["packer/registry-auth.pkr.hcl"]["mode"] == "0644"
        secret = {p for p, e in packer.items() if e["secret"]}
        assert secret == ({"packer/regauth-secrets.auto.pkrvars.hcl"} if name == "baked" else set()), name
        # The image gets the very script the user-data delivers.
        assert (node / "packer/files/rootfs/usr/local/sbin/regauth-apply").read_bytes() == (node / "rootfs/usr/local/sbin/regauth-apply").read_bytes()


def test_build_time_secret_without_bake_secret_bakes_no_plan_and_warns(rendered: dict) -> None:
    node = rendered["out"] / "plain"
    files = sorted(p for p in _tree(node) if p.startswith("packer/"))
    assert "packer/files/rootfs/etc/regauth/plan.json" not in files
    assert "packer/regauth-secrets.auto.pkrvars.hcl" not in files
    install = (node / "packer/files/install.sh").read_text()
    assert "plan.json /etc/regauth/plan.json" not in install and "REGAUTH_PLAN_B64" not in install
    assert "systemctl enable regauth-apply.service" in install
    # The warning: once, short, at output.packer; says what the image lacks and the ways out.
    err = rendered["err"]
    lines = [line for line in err.splitlines() if "plain.yaml" in line and "warning" in line]
    assert len(lines) == 1, err
    assert re.match(r".*plain\.yaml:12:3: warning: \[packer-no-plan\] output\.packer: the Packer image gets no plan", lines[0]), lines[0]
    fix = err.split(lines[0], 1)[1].split("\n")[1]
    assert "fetch: boot" in fix and "bake_secret: true" in fix and "bake_secret: false" in fix
    assert len(lines[0]) - len("[packer-no-plan] ") + len(fix) < 400  # the words, not the code, are kept short
    # A profile that does not configure output.packer is not told about Packer.
    assert "nopacker.yaml" not in err
    manifest = json.loads((node / "manifest.json").read_text())
    assert any("no plan" in w for w in manifest["warnings"])
    # bake_secret: false says the same on purpose: same image, no warning.
    assert "quiet.yaml" not in err
    quiet = rendered["out"] / "quiet"
    assert sorted(p for p in _tree(quiet) if p.startswith("packer/files")) == [p for p in files if p.startswith("packer/files")]
    # The warning text never carries the secret.
    assert "C4N4RY" not in err


def test_bake_secret_puts_the_plan_only_in_the_0600_var_file(rendered: dict) -> None:
    node = rendered["out"] / "baked"
    var_file = node / "packer/regauth-secrets.auto.pkrvars.hcl"
    assert _mode(var_file) == 0o600
    text = var_file.read_text()
    assert "out of git" in text
    match = re.search(rf'^{PLAN_VARIABLE} = "([A-Za-z0-9+/=]+)"$', text, re.MULTILINE)
    assert match, text[:400]
    plan = base64.b64decode(match.group(1))
    assert plan == (node / "rootfs/etc/regauth/plan.json").read_bytes()
    registries = json.loads(plan)["steps"][0]["registries"]
    assert {r["host"]: r["password"] for r in registries}["registry.example.com:5000"] == CANARY
    # Declared sensitive in the snippet, never given a value there.
    snippet = (node / "packer/registry-auth.pkr.hcl").read_text()
    assert f'variable "{PLAN_VARIABLE}" {{\n  type      = string\n  sensitive = true\n}}' in snippet
    assert "use_env_var_file = true" in snippet
    assert f'environment_vars = ["REGAUTH_PLAN_B64=${{var.{PLAN_VARIABLE}}}"]' in snippet
    assert 'sources = ["source.googlecompute.golden", "source.null.sandbox"]' in snippet
    # No form of any credential in any other packer file.
    key = rendered["key"]
    forms = [b"C4N4RY", base64.b64encode(CANARY.encode()), key, base64.b64encode(key), json.loads(key)["private_key_id"].encode(), match.group(1).encode()]
    for path, data in _tree(node / "packer").items():
        if path == var_file.name:
            continue
        assert not [f for f in forms if f in data], path
    assert "packer/files/rootfs/etc/regauth/plan.json" not in _tree(node)
    install = (node / "packer/files/install.sh").read_text()
    assert "chmod 0600" in install and "mv -f" in install


def test_install_script_is_static_and_quiet(rendered: dict) -> None:
    for name in ("boot", "plain", "baked"):
        install = (rendered["out"] / name / "packer/files/install.sh").read_text()
        assert install.startswith("#!/bin/sh\n") and "\nset -eu\n" in install
        assert "set -x" not in install.replace("`set -x`", "")
        for line in install.splitlines():
            if line.startswith("install ") and "-d" not in line.split()[1:2]:
                assert re.match(r'^install -D -o root -g root -m 0[0-7]{3} "\$stage"/\S+ /\S+$', line), line


def test_provisioner_strings_carry_no_go_templates_but_the_execute_command(rendered: dict) -> None:
    for name in ("boot", "baked"):
        snippet = (rendered["out"] / name / "packer/registry-auth.pkr.hcl").read_text()
        code = [line for line in snippet.splitlines() if not line.lstrip().startswith("#")]
        with_braces = [line for line in code if "{{" in line]
        assert all(line.strip().startswith("execute_command") for line in with_braces), with_braces
        assert snippet.count("\nbuild {") == 1


def test_unit_is_ordered_before_the_runtime_units(rendered: dict) -> None:
    unit = (rendered["out"] / "boot/packer/files/rootfs/etc/systemd/system/regauth-apply.service").read_text()
    lines = set(unit.splitlines())
    for expected in (
        "Type=oneshot",
        "RemainAfterExit=yes",
        "Wants=network-online.target",
        "Before=containerd.service",
        f"ExecStart={applyscript.VM_PATH}",
        f"ConditionPathExists={applyscript.PLAN_PATH}",
        "WantedBy=multi-user.target",
    ):
        assert expected in lines, expected
    assert any(line.startswith("After=network-online.target") for line in lines)


def test_every_target_names_its_systemd_units() -> None:
    """Empty only for daemonless runtimes (podman); then the unit has no Before= line."""
    for name, module in TARGETS.items():
        units = module.UNITS
        assert isinstance(units, tuple), name
        assert all(re.match(r"^[A-Za-z0-9:_.@-]+\.service$", u) for u in units), units


def test_required_plugins_follow_the_sources(tmp_path: Path, profile_dir: Path) -> None:
    body = BOOT + "output: {packer: {sources: [%s]}}\n"
    only_null = write_profile(profile_dir, body % "source.null.sandbox", "nullonly")
    other = write_profile(profile_dir, body % "source.amazon-ebs.ubuntu, source.googlecompute.a, source.googlecompute.b", "mixed")
    result = run_cli("render", str(only_null), str(other), "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err
    assert not (tmp_path / "out/nullonly/packer/required-plugins.pkr.hcl").exists()
    text = (tmp_path / "out/mixed/packer/required-plugins.pkr.hcl").read_text()
    assert text.count("googlecompute = {") == 1
    assert f'source  = "{KNOWN_PLUGINS["googlecompute"].source}"' in text
    assert "# source.amazon-ebs.ubuntu: add the plugin" in text


def test_packer_output_is_deterministic(tmp_path: Path, profile_dir: Path) -> None:
    profile = write_profile(profile_dir, BUILD_TIME.replace("  robot: {source: env, var: REGAUTH_TEST_CANARY}\n", "  robot: {source: file, path: key.json}\n") + "output: {packer: {bake_secret: true}}\n", "det")
    trees = []
    for run in ("a", "b"):
        assert run_cli("render", str(profile), "-o", str(tmp_path / run)).code == 0
        trees.append(_tree(tmp_path / run / "det"))
    assert trees[0] == trees[1]
    assert any(p.startswith("packer/") for p in trees[0])


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("{packer: {bake_secrets: true}}", ["output.packer.bake_secrets: unknown key 'bake_secrets'", "did you mean 'bake_secret'?"]),
        ("{packer: {bake_secret: 'yes'}}", ["output.packer.bake_secret: bake_secret must be true or false, not a string"]),
        ("{packer: {sources: source.googlecompute.golden}}", ["sources must be a non-empty list", "write sources: [source.googlecompute.golden]"]),
        ("{packer: {sources: []}}", ["sources must be a non-empty list"]),
        ("{packer: {sources: [googlecompute.golden]}}", ["output.packer.sources[0]: 'googlecompute.golden' is not a Packer source reference", "fix: write source.googlecompute.golden"]),
        ("{packer: {sources: ['${var.src}']}}", ["is not a Packer source reference", "no variables in sources"]),
        ("{packer: {sources: [source.a.b, source.a.b]}}", ["output.packer.sources[1]: source 'source.a.b' is listed twice"]),
        ("{packer: [sources]}", ["output.packer: output.packer must be a mapping, not a list"]),
    ],
)
def test_packer_option_mistakes_are_located_and_nothing_is_written(tmp_path: Path, output: str, expected: list[str]) -> None:
    profile = write_profile(tmp_path, BOOT + f"output: {output}\n", "bad")
    result = run_cli("render", str(profile), "-o", str(tmp_path / "out"))
    assert result.code == 2, result.err
    assert re.search(r"bad\.yaml:8:\d+: error: \[[a-z-]+\] output\.packer", result.err), result.err
    for text in expected:
        assert text in result.err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- hcl_string
def hcl_decode(literal: str) -> str:
    """An independent reading of an HCL quoted-string literal (hclsyntax spec).

    Raises on anything a real HCL parser would treat as more than literal text: a
    template sequence, a raw quote or newline, an unknown escape.  Mirrors the
    scanner's longest-match: in "$$${" the first "$" is literal, then "$${" is "${".
    The result is NFC-normalised as HCL does.
    """
    assert literal[0] == '"' and literal[-1] == '"'
    s, out, i = literal[1:-1], [], 0
    simple = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(s):
        if s[i] == "\\":
            nxt = s[i + 1]
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
            elif nxt in "uU":
                width = 4 if nxt == "u" else 8
                digits = s[i + 2 : i + 2 + width]
                assert re.fullmatch(rf"[0-9a-fA-F]{{{width}}}", digits), digits
                out.append(chr(int(digits, 16)))
                i += 2 + width
            else:
                raise ValueError(f"invalid escape \\{nxt}")
        elif s.startswith("$${", i) or s.startswith("%%{", i):
            out.append(s[i + 1 : i + 3])
            i += 3
        elif s.startswith("${", i) or s.startswith("%{", i):
            raise ValueError("unescaped template sequence")
        elif s[i] in '"\n\r':
            raise ValueError("raw quote or newline")
        else:
            out.append(s[i])
            i += 1
    return unicodedata.normalize("NFC", "".join(out))


TRICKY = st.sampled_from(["$", "%", "{", "}", "${", "%{", "$${", "%%{", "\\", '"', "\n", "\r", "\t", "\b", "\f", "\x00", "\x7f", "\x85", "\u2028", "é", "😀", "{{ .Path }}", "\\u0041"])
HCL_TEXT = st.lists(st.one_of(TRICKY, st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)), max_size=24).map(
    lambda parts: unicodedata.normalize("NFC", "".join(parts))
)


@settings(max_examples=400, deadline=None)
@given(HCL_TEXT)
def test_hcl_string_round_trips(value: str) -> None:
    literal = hcl_string(value)
    assert "\n" not in literal and "\r" not in literal
    assert hcl_decode(literal) == value


@pytest.mark.parametrize("value", ["e\u0301", "\ud800"])
def test_hcl_string_refuses_what_hcl_would_change(value: str) -> None:
    with pytest.raises(ValueError):
        hcl_string(value)


def test_hcl_list_is_one_fmt_line() -> None:
    assert hcl_list(("source.a.b", "source.c.d")) == '["source.a.b", "source.c.d"]'


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_target_gets_an_image_unit_ordered_before_its_units(tmp_path: Path, target: str) -> None:
    example = "\n".join("  " + line for line in TARGETS[target].EXAMPLE.splitlines())
    body = BOOT.replace('targets: {containerd: {version: "1.7"}}', "targets:\n" + example)
    profile = write_profile(tmp_path, body, target)
    result = run_cli("render", str(profile), "-o", str(tmp_path / "out"))
    assert result.code == 0, result.err
    unit = (tmp_path / "out" / target / "packer/files/rootfs/etc/systemd/system/regauth-apply.service").read_text()
    before = [line for line in unit.splitlines() if line.startswith("Before=")]
    units = TARGETS[target].UNITS
    assert before == ([f"Before={' '.join(sorted(units))}"] if units else []), unit
    assert "for \n" not in unit and "  " not in unit.replace("# ", "")


def test_validate_gives_the_warnings_render_gives(tmp_path: Path, sa_key: dict) -> None:
    """Same rule, same text: validate does not say OK where render warns (issue 17, item 7)."""
    key = tmp_path / "key.json"
    key.write_bytes(key_file_bytes(sa_key))
    key.chmod(0o600)
    gsm_build = BOOT.replace("fetch: boot", "fetch: build")  # validate fetches nothing, yet knows the plan holds it
    profiles = [
        write_profile(tmp_path, BUILD_TIME + "output: {packer: {sources: [source.googlecompute.golden]}}\n", "uses-packer"),
        write_profile(tmp_path, gsm_build + "output: {packer: {}}\n", "gsm-build"),
        write_profile(tmp_path, BUILD_TIME, "no-packer"),
        write_profile(tmp_path, BOOT + "output: {packer: {}}\n", "boot"),
    ]
    env = {"REGAUTH_TEST_CANARY": CANARY}
    validate = run_cli("validate", *map(str, profiles[::2]), env=env)
    render = run_cli("render", *map(str, profiles[::2]), "-o", str(tmp_path / "out"), env=env)
    assert validate.code == 0 and render.code == 0, validate.err + render.err
    warned = [line for line in validate.err.splitlines() if ": warning: " in line]
    assert warned == [line for line in render.err.splitlines() if ": warning: " in line]
    assert len(warned) == 1 and "uses-packer.yaml:11:10: warning: [packer-no-plan] output.packer: the Packer image gets no plan" in warned[0]
    report = json.loads(run_cli("validate", "--json", *map(str, profiles), env=env).out)
    assert [(Path(p["file"]).stem, p["path"]) for p in report["problems"] if "Packer" in p["message"]] == [("uses-packer", "output.packer"), ("gsm-build", "output.packer")]
