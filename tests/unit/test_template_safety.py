"""Profile values are data, never template code.

Jinja lays out scripts and documents from templates shipped in ``templates/``; no
string from a profile (or its file name) is ever compiled as a template, so
``{{ 12345*10 }}`` in any field comes out literally and never as ``123450``.  The
environment is StrictUndefined (a missing variable is an error, not an empty
string).  Users cannot bring templates, so there is nothing to sandbox: a test
keeps it that way.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import re
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

from generator import applyscript
from generator.outputs import templating
from generator.profiles import check_profile
from generator.render import render_all
from generator.targets import TARGETS
from tests.support import roundtrip as rt
from tests.support.keys import key_file_bytes, service_account_key

REPO = Path(__file__).resolve().parents[2]
EXPR = "{{ 12345*10 }}"
STMT = "{% for i in range(3) %}ab{% endfor %}"
EVALUATED = ("123450", "ababab")  # what Jinja would have made of EXPR / STMT
HOSTILE = f"{EXPR} {STMT} {{# c #}} ${{HOME}} %{{x}}"


def hostile_path(default: str) -> str:
    head, _, name = default.rpartition("/")
    return f"{head}/{EXPR}{STMT}/{name}"


def hostile_profile(folder: Path, name: str) -> Path:
    """Every target, every path option, the username, description and file name hostile."""
    (folder / "key.json").write_bytes(key_file_bytes(service_account_key()))
    (folder / "key.json").chmod(0o600)
    (folder / "pw").write_text(HOSTILE + "\n")
    (folder / "pw").chmod(0o600)
    targets = {}
    for target, module in TARGETS.items():
        targets.update(yaml.safe_load(module.EXAMPLE))
    doc = {
        "version": 1,
        "description": HOSTILE,
        "targets": targets,
        "secrets": {"key": {"source": "file", "path": "key.json"}, "pw": {"source": "file", "path": "pw"},
                    "boot": {"source": "gcp-secret-manager", "project": "my-project", "secret": "s", "version": 3, "fetch": "boot", "endpoint": "https://{{7*7}}.example.com"}},
        "registries": [
            {"host": "europe-docker.pkg.dev", "auth": {"type": "gcp-service-account", "secret": "key"}},
            {"host": "registry.example.com", "auth": {"type": "basic", "username": HOSTILE, "secret": "pw"}},
            {"host": "boot.example.com", "auth": {"type": "basic", "username": "u", "secret": "boot"}},
        ],
        "output": {"packer": {"bake_secret": True}},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    profile, problems = check_profile(path)
    assert profile is not None, problems
    # Now every path option of every target (whatever their names), from the parsed defaults.
    for target, options in profile.targets.items():
        for f in dataclasses.fields(options):
            value = getattr(options, f.name)
            if f.name in TARGETS[target].OPTION_KEYS and isinstance(value, str) and value.startswith("/"):
                targets[target] = {**(targets[target] or {}), f.name: hostile_path(value)}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    profile, problems = check_profile(path)
    assert profile is not None, problems
    return path


def decoded_outputs(out: Path) -> dict[str, bytes]:
    """Every output file, plus the contents it carries in base64 / gzip / HCL form."""
    found: dict[str, bytes] = {}
    for p in sorted(out.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        found[str(p)] = data
        if p.name == "user-data":
            for path, (content, _, _) in rt.written_files(data).items():
                found[f"{p}!{path}"] = content
        if p.name.endswith(".pkrvars.hcl"):
            for key, value in rt.hcl_attributes(data.decode()).items():
                found[f"{p}!{key}"] = base64.b64decode(value)
    return found


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Records every template Jinja loads or compiles during the test."""
    seen: dict[str, list] = {"loaded": [], "compiled_from_string": []}
    real_get = jinja2.Environment.get_template
    real_from_string = jinja2.Environment.from_string

    def get_template(self, name, *a, **kw):  # type: ignore[no-untyped-def]
        seen["loaded"].append(name)
        return real_get(self, name, *a, **kw)

    def from_string(self, source, *a, **kw):  # type: ignore[no-untyped-def]
        seen["compiled_from_string"].append(source)
        return real_from_string(self, source, *a, **kw)

    monkeypatch.setattr(jinja2.Environment, "get_template", get_template)
    monkeypatch.setattr(jinja2.Environment, "from_string", from_string)
    monkeypatch.setattr(jinja2, "Template", None)  # any Template(source) call would now blow up
    return seen


def test_hostile_values_come_out_literally(tmp_path: Path, spy: dict[str, list]) -> None:
    name = f"n {EXPR}"
    profile = hostile_profile(tmp_path, name)
    render_all([profile], tmp_path / "out", jobs=1)
    outputs = decoded_outputs(tmp_path / "out")
    for where, data in outputs.items():
        text = data.decode("utf-8", "replace")
        for evaluated in EVALUATED:
            assert evaluated not in text, f"{where}: Jinja evaluated a profile value ({evaluated})"
    plan = json.loads(outputs[f"{tmp_path}/out/{name}/rootfs{applyscript.PLAN_PATH}"])
    plan_text = json.dumps(plan, ensure_ascii=False)
    assert plan_text.count(EXPR) >= 2 and STMT in plan_text, "username and paths reach the plan literally"
    assert any(r.get("username") == HOSTILE for s in plan["steps"] for r in s.get("registries", []))
    cloud = outputs[f"{tmp_path}/out/{name}/user-data"].decode()
    assert EXPR in cloud, "the profile name is in the cloud-config comment, literally"
    # Only shipped templates were ever loaded, and nothing was compiled from a string.
    shipped = {p.name for p in (REPO / "templates").glob("*.j2")}
    assert spy["loaded"] and set(spy["loaded"]) <= shipped, spy["loaded"]
    assert spy["compiled_from_string"] == []


def test_a_file_name_cannot_break_out_of_its_comment(tmp_path: Path) -> None:
    """Profile names reach comment lines of YAML, HCL, shell and systemd: a newline in the
    name (legal in Linux file names) must not start a live line."""
    name = "x\nbootcmd: [[touch, pwned]]\r\n#!bin-sh\u2028\x85build {}"
    profile = hostile_profile(tmp_path, name)
    render_all([profile], tmp_path / "out", jobs=1)
    out = next((tmp_path / "out").iterdir())
    doc = yaml.safe_load(rt.cloud_config_text((out / "user-data").read_bytes()))
    assert set(doc) == {"write_files", "runcmd"}
    import hcl2

    snippet = hcl2.loads((out / "packer/registry-auth.pkr.hcl").read_text())
    assert set(snippet) <= {"variable", "build", "__comments__", "__inline_comments__"}, set(snippet)
    subprocess.run(["sh", "-n", str(out / "packer/files/install.sh")], check=True)
    for text in ((out / "packer/files/install.sh").read_text(), (out / "packer/files/rootfs/etc/systemd/system/regauth-apply.service").read_text()):
        assert not re.search(r"^(bootcmd|build|#!bin-sh)", text, re.M)


def test_environment_is_strict_and_shipped_templates_only() -> None:
    env = templating.environment()
    assert env.undefined is jinja2.StrictUndefined
    assert isinstance(env.loader, jinja2.FileSystemLoader)
    assert [Path(p).resolve() for p in env.loader.searchpath] == [(REPO / "templates").resolve()]
    with pytest.raises(jinja2.UndefinedError):
        templating.render("cloud-config.yaml.j2")
    # Autoescape off is right for YAML/HCL/shell/systemd: values that reach them go
    # through serializers (yaml.dump, hcl_string, shlex.quote) or the comment filter.
    assert env.autoescape is False


def test_no_code_path_compiles_a_template_from_a_string() -> None:
    """Static guard: only templating.py touches Jinja, and only through the file loader."""
    offenders = []
    for path in sorted((REPO / "generator").rglob("*.py")):
        text = path.read_text()
        if path.name != "templating.py" and re.search(r"^\s*(import|from) jinja2", text, re.M):
            offenders.append(f"{path}: imports jinja2")
        if re.search(r"from_string\(|Template\(|\.compile\(", text) and "jinja" in text.lower():
            offenders.append(f"{path}: compiles a template from a string")
    assert not offenders, offenders
    schema = json.dumps(__import__("generator.profiles", fromlist=["x"]).profile_schema())
    assert "template_file" not in schema and "jinja" not in schema.lower(), "users cannot bring templates"


def test_comment_filter_keeps_any_value_on_one_line() -> None:
    nasty = "a\nb\r\nc\x85d\u2028e\u2029f\x0bg\x0ch\x1ci"
    assert "\n" not in templating._comment(nasty) and "\r" not in templating._comment(nasty)
    assert len(templating._comment(nasty).splitlines()) == 1


def test_user_data_gzip_does_not_hide_evaluation(tmp_path: Path) -> None:
    profile = hostile_profile(tmp_path, "gz")
    profile.write_text(profile.read_text().replace("output:\n", "output:\n  compress: always\n"))
    render_all([profile], tmp_path / "out", jobs=1)
    raw = gzip.decompress((tmp_path / "out/gz/user-data").read_bytes()).decode()
    assert not any(e in raw for e in EVALUATED)
    plan = rt.written_files((tmp_path / "out/gz/user-data").read_bytes())[applyscript.PLAN_PATH][0].decode()
    assert EXPR in plan and not any(e in plan for e in EVALUATED)
