"""Round trip for any secret: what every consumer finally reads equals the input exactly.

One example = one profile with a basic-auth registry (arbitrary username and
password) and a service-account registry (a real key whose JSON fields hold
arbitrary text), rendered for every target in ``generator.targets.TARGETS``.
Each example is checked in every output format, each decoded with its
consumer's parser (see tests/support/roundtrip.py):

- cloud-init user-data: plain ``#cloud-config``, gzip, multipart MIME (the three
  must carry the same cloud-config), ``yaml.safe_load``, ``write_files`` b64/gz+b64;
- the plan JSON as delivered, and as baked for Packer (HCL var file, python-hcl2);
- the node: the delivered apply script run under ``--root`` for all targets at once,
  every runtime file parsed (TOML/YAML/JSON; the MicroK8s template after the
  snap's ``${VAR}`` substitution) and searched for the exact credential; a second
  apply is byte-identical;
- containerd config versions 1, 2 and 3 (new file, and merged into an existing one),
  through the delivered apply script's merge and self-check.

Values that cannot be represented are rejected with a located error instead.
Examples per property: 2,000 in CI (``CI=true``), fewer locally; the long run is
``HYPOTHESIS_PROFILE=long python3 -m pytest -q tests/unit/test_roundtrip_props.py``.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from generator.tomlcompat import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from generator.errors import InvalidInput
from generator.secrets.resolve import SecretResolver
from generator.targets import TARGETS
from tests.support import roundtrip as rt
from tests.support.keys import service_account_key

REPO = Path(__file__).resolve().parents[2]
BASIC_HOST = "registry.example.com:5000"
GAR_HOST = "europe-docker.pkg.dev"  # kubelet's EXAMPLE maps a glob to this host
MICROK8S_TEMPLATE = REPO / "tests/fixtures/microk8s/containerd-template-08a8c4a.toml"

# Every character class that has broken a config format, a template engine or a shell.
SPECIALS = [
    '"', "'", "`", "\\", "\\n", "\\u0041", "\n", "\r", "\r\n", "\t", "\b", "\f", "\x1b[31m", "\x7f", "\x85",
    "\u2028", "\u2029", "\ufeff", "\u00a0", "e\u0301", "\U0001f600", "\U0010ffff", "'''", '"""',
    "${HOME}", "${SNAP_DATA}", "${SNAP}", "$${x}", "%{ if x }", "%%{", "{{ 7*7 }}", "{{ .Path }}", "{% raw %}",
    "{% endraw %}", "{#", "#", "[", "]]", "=", ": ", "- ", "---", "...", "&a", "*a", "!!python/object:os.system",
    "%", "$", "~", ",", "\"'\"", " ", "  ", ":",
]
UNICODE = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
PIECES = st.one_of(st.sampled_from(SPECIALS), st.text(UNICODE, max_size=12))
TEXT = st.lists(PIECES, max_size=24).map("".join)
PADDED = st.tuples(st.sampled_from(["", " ", "  ", "\t"]), TEXT, st.sampled_from(["", " ", "   ", "\t "])).map("".join)
LONG = st.tuples(TEXT.filter(bool), st.integers(50, 2000)).map(lambda t: (t[0] * t[1])[:8_000])
SECRET_TEXT = st.one_of(*[PADDED] * 7, LONG)  # long values are rarer: they cost ~10x
# Username: free text except what Basic auth or a config line cannot carry.
USERNAME = TEXT.map(lambda s: "".join(ch for ch in s if ch != ":" and ch.isprintable()) or "u").filter(lambda s: s.strip() == s and s)


@dataclass(frozen=True)
class Case:
    basic_user: str
    basic_payload: bytes  # the secret file's bytes
    gar_user: str  # _json_key or _json_key_base64
    key: dict[str, Any]  # the service-account key JSON
    key_bytes: bytes  # the key file's bytes

    @property
    def basic_password(self) -> str:
        """The documented transform for basic auth: one trailing newline (LF or CRLF) is dropped."""
        text = self.basic_payload.decode("utf-8")
        return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text

    @property
    def gar_password(self) -> str:
        if self.gar_user == "_json_key_base64":
            return base64.b64encode(self.key_bytes).decode("ascii")
        return self.key_bytes.decode("utf-8")

    def expected(self) -> dict[str, tuple[str, str]]:
        return {BASIC_HOST: (self.basic_user, self.basic_password), GAR_HOST: (self.gar_user, self.gar_password)}


@st.composite
def key_files(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    """A real service-account key whose other fields hold arbitrary text, in any JSON layout."""
    base = dict(service_account_key())
    ascii_only = draw(st.booleans())
    field_text = st.one_of(PADDED, st.text(st.characters(), max_size=20)) if ascii_only else PADDED  # short: the key file stays under 64 KiB
    for name in ("project_id", "client_id", "auth_provider_x509_cert_url", "universe_domain"):
        if draw(st.booleans()):
            base[name] = draw(field_text)
    base["client_email"] = "x" + draw(field_text)
    base["private_key_id"] = "k" + draw(field_text)
    extra = draw(st.dictionaries(st.text(UNICODE, min_size=1, max_size=8), field_text, max_size=3))
    for k, v in extra.items():
        base.setdefault(k, v)
    indent = draw(st.sampled_from([None, 1, 2, "\t"]))
    text = json.dumps(base, indent=indent, ensure_ascii=ascii_only, sort_keys=draw(st.booleans()))
    text += draw(st.sampled_from(["", "\n", "\r\n"]))
    return base, text.encode("utf-8")


@st.composite
def cases(draw: st.DrawFn) -> Case:
    password = draw(SECRET_TEXT)
    payload = (password + draw(st.sampled_from(["", "\n", "\r\n", "\n\n"]))).encode("utf-8")
    key, key_bytes = draw(key_files())
    return Case(draw(USERNAME), payload, draw(st.sampled_from(["_json_key", "_json_key_base64"])), key, key_bytes)


# ---------------------------------------------------------------- workspace
def target_options(containerd_version: str, only_containerd: bool = False) -> dict[str, Any]:
    """Every registered target with its own documented example options."""
    out: dict[str, Any] = {}
    for name, module in TARGETS.items():
        if only_containerd and name != "containerd":
            continue
        out.update(yaml.safe_load(module.EXAMPLE))
    if "containerd" in out:
        out["containerd"] = {**(out["containerd"] or {}), "version": containerd_version}
    return out


def write_case(folder: Path, case: Case, targets: dict[str, Any], name: str = "node", gar: bool = True) -> Path:
    for file, data in (("pw", case.basic_payload), ("key.json", case.key_bytes)):
        path = folder / file
        path.unlink(missing_ok=True)
        path.write_bytes(data)
        path.chmod(0o600)
    doc = {
        "version": 1,
        "targets": targets,
        "secrets": {"pw": {"source": "file", "path": "pw"}, "key": {"source": "file", "path": "key.json"}},
        "registries": [
            {"host": BASIC_HOST, "auth": {"type": "basic", "username": case.basic_user, "secret": "pw"}},
            {"host": GAR_HOST, "auth": {"type": "gcp-service-account", "username": case.gar_user, "secret": "key"}},
        ][: 2 if gar else 1],
        "output": {"packer": {"bake_secret": True}},
    }
    profile = folder / f"{name}.yaml"
    profile.write_text(yaml.safe_dump(doc, allow_unicode=True, width=1 << 20), encoding="utf-8")
    return profile


@pytest.fixture(scope="module")
def workspace() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="regauth-props-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def lay_runtime_inputs(root: Path, plan: dict[str, Any], existing_containerd: str | None) -> None:
    """What the node already has: a MicroK8s template (the snap's), maybe a containerd config."""
    for step in plan["steps"]:
        dest = root / str(step.get("path", "")).lstrip("/")
        if step["kind"] == "microk8s":
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(MICROK8S_TEMPLATE, dest)
        elif step["kind"] == "containerd" and existing_containerd is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(existing_containerd)


def apply_on_node(files: dict[str, tuple[bytes, str, str]], existing_containerd: str | None) -> tuple[dict[str, bytes], rt.NodeRun]:
    """Apply twice on a fresh node root; return the tree (and the first run), checking idempotence."""
    plan = json.loads(files[rt.PLAN][0])
    with rt.node_root() as root:
        lay_runtime_inputs(root, plan, existing_containerd)
        first = rt.run_apply(files, root, None)
        assert first.code == 0, first.log
        tree = rt.node_tree(root)
        second = rt.run_apply(files, root, None)
        assert second.code == 0, second.log
        assert rt.node_tree(root) == tree, "a second apply changed files"
        assert "updated" not in second.log, second.log
    return tree, first


def check_runtime_files(tree: dict[str, bytes], plan: dict[str, Any], expected: dict[str, tuple[str, str]]) -> None:
    """Every runtime file with credentials carries each one exactly; every step wrote one."""
    carrying = set()
    for path, data in tree.items():
        parsed = rt.parse_by_extension(Path(path), data)
        if parsed is None or path.endswith("hosts.toml") or (path == "/etc/containerd/config.toml" and DROPIN in tree):
            continue  # containerd 2.x: config.toml only imports regauth's drop-in, which carries them
        for host, (user, password) in expected.items():
            assert rt.carries(parsed, user, password), f"{path} does not carry the exact credential for {host}"
        carrying.add(path)
    for step in plan["steps"]:
        named = {v for v in _strings(step) if v.startswith("/")} | ({DROPIN} if step["kind"] == "containerd" else set())
        assert named & carrying, f"step {step['kind']}: none of its files {sorted(named)} carries the credentials (written: {sorted(carrying)})"


def _strings(tree: Any) -> Iterator[str]:
    for _, leaf in rt.leaves(tree):
        if isinstance(leaf, str):
            yield leaf


def plan_credentials(plan: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    for step in plan["steps"]:
        for entry in step.get("registries", []):
            yield step["kind"], entry["host"], entry["username"], entry["password"]


# ---------------------------------------------------------------- the properties
@given(cases())
def test_every_output_and_target_reads_back_the_exact_secret(workspace: Path, case: Case) -> None:
    expected = case.expected()
    profile = rt.load(write_case(workspace, case, target_options("2.1")))
    if case.basic_password == "":
        with pytest.raises(InvalidInput) as info:
            rt.render_variants(profile)
        assert "empty" in info.value.render()
        return
    variants = rt.render_variants(profile)

    # cloud-init: gzip and MIME wrap the very same cloud-config.
    texts = {name: rt.cloud_config_text(rt.output(r, "user-data")) for name, r in variants.items()}
    assert texts["gzip+mime"] == texts["cloud-config"]
    assert rt.output(variants["gzip+mime"], "user-data")[:2] == b"\x1f\x8b"
    plain = variants["cloud-config"]
    files = rt.written_files(rt.output(plain, "user-data"))
    for path, (data, perms, _owner) in files.items():
        assert rt.output(plain, "rootfs" + path) == data, f"rootfs{path} differs from what user-data delivers"
    assert files[rt.PLAN][1] == "0600"

    # The plan, as delivered and as baked for Packer.
    plan = json.loads(files[rt.PLAN][0])
    seen = {(kind, host) for kind, host, _, _ in plan_credentials(plan)}
    assert {kind for kind, _ in seen} >= {"containerd"}
    for kind, host, user, password in plan_credentials(plan):
        assert (user, password) == expected[host], f"plan.json ({kind}) changed the credential for {host}"
    hcl = rt.hcl_attributes(rt.output(plain, "packer/regauth-secrets.auto.pkrvars.hcl").decode("utf-8"))
    assert base64.b64decode(hcl["registry_plan_b64"], validate=True) == files[rt.PLAN][0]
    if case.gar_user == "_json_key":
        assert json.loads(expected[GAR_HOST][1]) == case.key  # what Artifact Registry parses

    # The node: every target applied, every runtime file read back, idempotent.
    tree, _ = apply_on_node(files, rt.EXISTING_CONFIGS["v3"])
    check_runtime_files(tree, plan, expected)
    # containerd 2.x: the auth is in regauth's drop-in, which the main config imports.
    assert "conf.d/50-regauth.toml" in tomllib.loads(tree["/etc/containerd/config.toml"].decode("utf-8"))["imports"]
    for host, (user, password) in expected.items():
        assert rt.containerd_auth(tree[DROPIN].decode("utf-8"), host) == {"username": user, "password": password}
    check_containerd_versions(profile, files[rt.SCRIPT][0], expected)


DROPIN = "/etc/containerd/conf.d/50-regauth.toml"
# containerd release on the node -> the existing config it has (None: no file yet):
# config versions 1 (legacy), 2 (1.x) and 3 (2.x), new and merged.
# (2.1 merged into an existing v3 file is the full node apply above.)
CONTAINERD_VARIANTS = [("1.2", None), ("1.6", "v1"), ("1.7", "v2"), ("2.1", None)]


def check_containerd_versions(profile: Any, script: bytes, expected: dict[str, tuple[str, str]]) -> None:
    """The containerd step for each release, through the delivered apply script's merge,
    read back with tomllib for config versions 1, 2 and 3 (the script's own self-check
    runs in the full apply above; skipping it here halves the cost of an example)."""
    module, apply = TARGETS["containerd"], rt.apply_module(script)
    creds = SecretResolver().credentials(profile)
    seen = set()
    for release, existing in CONTAINERD_VARIANTS:
        options = replace(profile.targets["containerd"], version=release)
        spec = json.loads(json.dumps(module.plan_step(options, creds).spec))  # as plan.json carries it
        node_creds = apply.credentials(spec["registries"])
        before = rt.EXISTING_CONFIGS[existing or "none"]
        text = apply.containerd_merge(before, spec, node_creds)
        seen.add(int(tomllib.loads(text).get("version", 1)))
        for host, (user, password) in expected.items():
            assert rt.containerd_auth(text, host) == {"username": user, "password": password}, (release, existing)
    assert seen == {1, 2, 3}


# ---------------------------------------------------------------- what cannot be represented
UNREPRESENTABLE = st.one_of(
    st.tuples(TEXT, TEXT).map(lambda t: (t[0] + "\x00" + t[1]).encode("utf-8")),  # NUL
    st.tuples(TEXT, st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80abc"]), TEXT).map(
        lambda t: t[0].encode("utf-8") + t[1] + t[2].encode("utf-8")
    ),  # not UTF-8 (incl. an encoded lone surrogate)
)


@given(UNREPRESENTABLE)
def test_unrepresentable_passwords_are_rejected_with_a_located_error(workspace: Path, payload: bytes) -> None:
    case = Case("robot", payload, "_json_key", dict(service_account_key()), json.dumps(service_account_key()).encode())
    profile = rt.load(write_case(workspace, case, target_options("1.7", only_containerd=True), name="bad"))
    with pytest.raises(InvalidInput) as info:
        SecretResolver().credentials(profile)
    [problem] = info.value.problems
    assert problem.file.endswith("bad.yaml") and problem.line > 0
    assert "NUL" in problem.message or "not UTF-8" in problem.message


@pytest.mark.parametrize(
    ("username", "words"),
    [("rob\x00ot", "control character"), ("rob\not", "control character"), ("robot\x7f", "control character"), ("rob\u2028ot", "control character"), ("a:b", "':'")],
)
def test_usernames_runtimes_cannot_carry_are_rejected(workspace: Path, username: str, words: str) -> None:
    case = Case(username, b"pw", "_json_key", {}, b"{}")
    path = write_case(workspace, case, target_options("1.7", only_containerd=True), name="user")
    with pytest.raises(rt.NotLoaded) as info:
        rt.load(path)
    # The case's other registry has a placeholder key: reported too (all problems at once).
    [problem] = [p for p in info.value.problems if "is not a usable service-account key" not in p.message]
    assert words in problem.message and problem.line > 0 and problem.path == "registries[0].auth.username"


def test_cli_rejects_a_nul_password_with_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    case = Case("robot", b"pa\x00ss", "_json_key", {}, b"{}")
    path = write_case(tmp_path, case, target_options("1.7", only_containerd=True), name="nul", gar=False)
    result = run_cli("render", str(path), "-o", str(tmp_path / "out"))
    assert result.code == 2, result.err
    assert "nul.yaml:" in result.err and "NUL" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
