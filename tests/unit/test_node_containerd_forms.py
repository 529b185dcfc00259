"""containerd config.toml edits in every TOML form (issue 14 items 2, 3, 5), under node Pythons.

Each case is an existing config the node may have. The node program (the very file a
containerd node gets) runs its merge + proof under each interpreter; this process then
judges every result with tomllib: the effective auth for each host is exactly the
profile's, every other setting is unchanged, a second run gives the same bytes, BOM and
line endings are kept. Refusals must name the real cause (and where).
"""

from __future__ import annotations

import json
import subprocess
from generator.tomlcompat import tomllib
from pathlib import Path

import pytest

from generator import applyscript
from generator.node import tomlparse
from generator.node.tomltext import _dig, _prune
from tests.support.node_pythons import NODE_PYTHONS, python_id, require_python

V1 = 'plugins.cri.registry.configs'
V2 = 'plugins."io.containerd.grpc.v1.cri".registry'
V3 = 'plugins."io.containerd.cri.v1.images".registry'
H = "h.example"
CREDS = [{"host": H, "username": "_json_key", "password": '{"k": "a\\nb # <<< regauth managed\n\'\'\' """ ${X}"}'},
         {"host": "second.example:5000", "username": "robot", "password": "pw"}]
TLS_CREDS = [{"host": H, "username": "u", "password": "p", "tls": {"ca_file": "ca.pem"}}]
HOSTS_DIR = "/etc/containerd/certs.d"

# name -> (existing config or None, creds, "merged" | substring of the refusal)
CASES = {
    "no file": (None, CREDS, "merged"),
    "empty": ("", CREDS, "merged"),
    "v2 stock-like": ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "pause:3.9"\n'
                      f'  [{V2}]\n    config_path = ""\n', CREDS, "merged"),
    "v3 header": ('version = 3\n[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "native"\n', CREDS, "merged"),
    "stale auth [table] with more fields": (f'version = 2\n[{V2}.configs."{H}".auth]\n  username = "old"\n  auth = "b2xkOm9sZA=="\n'
                                            f'[{V2}.configs."{H}".tls]\n  insecure_skip_verify = true\n', CREDS, "merged"),
    "stale auth dotted in [registry]": (f'version = 2\n[{V2}]\n  config_path = ""\n  configs."{H}".auth.username = "old"\n'
                                        f'  configs."{H}".auth.password = "old"\n  configs."other.io".auth.username = "keep"\n', CREDS, "merged"),
    "stale auth dotted at top level": (f'version = 2\n{V2}.configs."{H}".auth.username = "old"\n'
                                       f'{V2}.configs."other.io".auth = {{ username = "keep" }}\n', CREDS, "merged"),
    "stale auth inline in [host]": (f'version = 2\n[{V2}.configs."{H}"]\nauth = {{username = "x", password = "y"}}\n', CREDS, "merged"),
    "stale auth nested inline": (f'version = 2\n[{V2}]\n  configs = {{ "{H}" = {{ auth = {{ username = "old" }}, tls = {{ insecure_skip_verify = true }} }}, '
                                 '"other.io" = { auth = { username = "keep" } } }\n', CREDS, "merged"),
    "registry is an inline table": ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry = { config_path = "" }\n', CREDS, "merged"),
    "version 0x2 with CRLF": (f'version = 0x2\r\n[{V2}.configs."{H}".auth]\r\n  username = "old"\r\n', CREDS, "merged"),
    "BOM and CRLF": (f'\ufeffversion = 2\r\n# a comment\r\n[{V2}]\r\n  config_path = ""\r\n', CREDS, "merged"),
    "version-less dotted plugins (v1)": ('plugins.cri.sandbox_image = "pause:3.9"\nplugins.cri.containerd.snapshotter = "native"\n', CREDS, "merged"),
    "version-less [plugins.cri] (v1)": ('[plugins.cri]\n  sandbox_image = "pause:3.9"\n', CREDS, "merged"),
    "version-less without plugins": ('root = "/var/lib/containerd"\n', CREDS, "merged"),
    "admin commented the block out": ('version = 2\n# # >>> regauth managed: registry auth. Edit the regauth profile, not this block.\n'
                                      f'# [{V2}.configs."{H}".auth]\n# # <<< regauth managed\n', CREDS, "merged"),
    "marker text inside a multi-line string": ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  note = """\n'
                                               '# <<< regauth managed\n"""\n', CREDS, "merged"),
    "comment added inside the block": ('version = 2\n\n# >>> regauth managed: registry auth. Edit the regauth profile, not this block.\n'
                                       f'[{V2}.configs."{H}".auth]\nusername = "a"\npassword = "b"\n# keep me\n# <<< regauth managed\n',
                                       CREDS, "config.toml:7: a comment inside regauth's managed block"),
    "setting added inside the block": ('version = 2\n# >>> regauth managed: registry auth. Edit the regauth profile, not this block.\n'
                                       f'[{V2}.configs."{H}".auth]\nusername = "a"\nidentitytoken = "t"\n# <<< regauth managed\n',
                                       CREDS, "config.toml:5: this line is inside regauth's managed block"),
    "table continued after the block": ('version = 2\n# >>> regauth managed: registry auth. Edit the regauth profile, not this block.\n'
                                        f'[{V2}.configs."{H}".auth]\nusername = "a"\n# <<< regauth managed\nextra = 1\n',
                                        CREDS, "config.toml:6: this line continues a table of regauth's managed block"),
    "not TOML": ('version = 2\n[plugins\n', CREDS, "config.toml:2:9: the config is not valid TOML"),
    "unknown version": ('version = 7\n', CREDS, "config.toml:1: config version 7 is not one regauth knows"),
    "tls profile, config_path inline": ('version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry = { config_path = "" }\n', TLS_CREDS, "merged"),
    "tls profile, stock [registry]": (f'version = 2\n[{V2}]\n  config_path = ""\n', TLS_CREDS, "merged"),
    "tls profile, no registry table": ('version = 2\n', TLS_CREDS, "merged"),
    "tls profile vs inline mirrors": (f'version = 2\n[{V2}]\n  mirrors = {{ "docker.io" = {{ endpoint = ["https://m"] }} }}\n', TLS_CREDS,
                                      "registry.mirrors.docker.io (inline table at /etc/containerd/config.toml:3)"),
    "tls profile vs dotted configs tls": (f'version = 2\n[{V2}]\n  configs."o.io".tls.insecure_skip_verify = true\n', TLS_CREDS,
                                          "registry.configs.o.io.tls (dotted keys at /etc/containerd/config.toml:3)"),
    "tls profile vs [mirrors] header": (f'version = 2\n[{V2}.mirrors."docker.io"]\n  endpoint = ["https://m"]\n', TLS_CREDS,
                                       "registry.mirrors.docker.io ([table] at /etc/containerd/config.toml:2)"),
    "auth path blocked by a value": (f'version = 2\n[{V2}]\n  configs = "x"\n', CREDS, "a value at /etc/containerd/config.toml:3 is in the way"),
}

# The containerd release each case's profile names (default 1.7: config version 2).
CASE_RELEASE = {"v3 header": "2.1"}

DRIVER = r'''
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("regauth_apply_under_test", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
ctd = sys.modules[mod._P + ".containerd"]
out = {}
for name, case in json.load(open(sys.argv[2], encoding="utf-8")).items():
    step = {"path": "/etc/containerd/config.toml", "containerd_version": case["release"], "hosts_dir": case["hosts_dir"]}
    try:
        new = ctd.containerd_merge(case["existing"], step, case["creds"])
        ctd.containerd_verify(case["existing"], new, case["creds"], step)
        second = ctd.containerd_merge(new, step, case["creds"])
        out[name] = {"new": new, "second": second}
    except ctd.ApplyError as exc:
        out[name] = {"error": str(exc)}
sys.stdout.write(json.dumps(out))
'''


def _node_results(python: str, tmp_path: Path) -> dict:
    script = tmp_path / "regauth_apply.py"  # the node's file, under a name importlib can load
    script.write_bytes(applyscript.script_for(frozenset({"containerd"})))
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({n: {"existing": e, "creds": c, "hosts_dir": HOSTS_DIR, "release": CASE_RELEASE.get(n, "1.7")}
                                 for n, (e, c, _) in CASES.items()}))
    run = subprocess.run([python, "-c", DRIVER, str(script), str(cases)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _registry_of(tree: dict, existing: str | None) -> tuple:
    version = tree.get("version", 1 if existing and "plugins" in tree else 2)
    return {1: ("plugins", "cri", "registry"), 2: ("plugins", "io.containerd.grpc.v1.cri", "registry"),
            3: ("plugins", "io.containerd.cri.v1.images", "registry")}[version]


def judge_merged(name: str, existing: str | None, creds: list, new: str, second: str) -> None:
    assert second == new, f"{name}: a second run changed the file"
    after = tomllib.loads(new.lstrip("\ufeff"))
    assert tomlparse.parse(new).value == after
    before = tomllib.loads(existing.lstrip("\ufeff")) if existing else {}
    registry = _registry_of(after, existing)
    for c in creds:
        assert _dig(after, registry + ("configs", c["host"], "auth")) == {"username": c["username"], "password": c["password"]}, name
        del _dig(after, registry + ("configs", c["host"]))["auth"]
        host = before
        for key in registry + ("configs", c["host"]):
            host = host.get(key, {}) if isinstance(host, dict) else {}
        if isinstance(host, dict):
            host.pop("auth", None)
    if any(c.get("tls") for c in creds):
        assert _dig(after, registry)["config_path"] == HOSTS_DIR
        _dig(after, registry).pop("config_path")
        old = before
        for key in registry:
            old = old.get(key, {}) if isinstance(old, dict) else {}
        if isinstance(old, dict):
            old.pop("config_path", None)
    if "version" not in before and existing and "plugins" in before:
        assert "version" not in after, f"{name}: a version was added to a version-less config that sets plugins"
    after.pop("version", None)
    before.pop("version", None)
    assert _prune(after) == _prune(before), name
    if existing:
        assert new.startswith("\ufeff") == existing.startswith("\ufeff"), name
        if "\r\n" in existing:
            assert new.count("\n") == new.count("\r\n"), f"{name}: line endings not kept"
        else:
            assert "\r" not in new
    # The managed block, when there is one, holds whole marker lines only.
    begin = "# >>> regauth managed: registry auth. Edit the regauth profile, not this block."
    assert [line.strip() for line in new.splitlines() if "regauth managed" in line and line.lstrip().startswith("# >>>")] in ([], [begin])


@pytest.mark.parametrize("python", NODE_PYTHONS, ids=python_id)
def test_every_form_under_node_python(python: str, tmp_path: Path) -> None:
    require_python(python)
    results = _node_results(python, tmp_path)
    for name, (existing, creds, want) in CASES.items():
        got = results[name]
        if want == "merged":
            assert "error" not in got, f"{name}: refused: {got.get('error')}"
            judge_merged(name, existing, creds, got["new"], got["second"])
        else:
            assert "error" in got, f"{name}: merged, but should be refused ({want})"
            assert want in got["error"] and "\n" not in got["error"], (name, got["error"])


def test_forms_land_where_toml_allows() -> None:
    """The form chosen for each kind of parent (what keeps the file valid), checked on the text."""
    from generator.node import containerd

    step = {"path": "/etc/containerd/config.toml", "containerd_version": "1.7", "hosts_dir": HOSTS_DIR}
    one = [CREDS[1]]
    # Inline parent: the auth goes into the inline table, nothing appended.
    text = containerd.containerd_merge(CASES["registry is an inline table"][0], step, one)
    assert text.count("second.example:5000") == 1 and "regauth managed" not in text
    assert 'registry = { config_path = "", configs."second.example:5000".auth = { username = "robot", password = "pw" } }' in text
    # Dotted parent (top-level dotted plugins): a dotted line in the same section.
    text = containerd.containerd_merge(CASES["version-less dotted plugins (v1)"][0], step, one)
    assert 'plugins.cri.registry.configs."second.example:5000".auth = { username = "robot", password = "pw" }\n' in text
    assert not text.startswith("version")
    # Header parent: regauth's block at the end, old definitions gone.
    text = containerd.containerd_merge(CASES["stale auth [table] with more fields"][0], step, [CREDS[0]])
    assert text.count(f'configs."{H}".auth]') == 1 and "b2xkOm9sZA==" not in text and "insecure_skip_verify = true" in text


def test_refusal_leaves_the_node_untouched(tmp_path: Path) -> None:
    import sys

    root = tmp_path / "root"
    config = root / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    existing = CASES["tls profile vs inline mirrors"][0].replace("\n", "\r\n")
    config.write_bytes(existing.encode())
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"format": 1, "profile": "t", "steps": [{
        "kind": "containerd", "path": "/etc/containerd/config.toml", "containerd_version": "1.7", "unit": "containerd",
        "restart": "if-running", "hosts_dir": HOSTS_DIR, "registries": CREDS}]}))
    script = tmp_path / "regauth-apply"
    script.write_bytes(applyscript.script_for(frozenset({"containerd"})))
    run = subprocess.run([sys.executable, str(script), "--root", str(root), "--plan", str(plan), "--no-restart"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    # Not a TLS profile: mirrors are fine next to plain auth, so this one merges; CRLF kept.
    assert run.returncode == 0, run.stderr
    assert config.read_bytes().count(b"\n") == config.read_bytes().count(b"\r\n")
    plan.write_text(plan.read_text().replace('"registries": [', '"registries": [{"host": "t.example", "username": "u", "password": "p", "tls": {"insecure_skip_verify": true}}, ', 1))
    before = config.read_bytes()
    run = subprocess.run([sys.executable, str(script), "--root", str(root), "--plan", str(plan), "--no-restart"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert run.returncode == 1
    failed = [line for line in run.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "registry.mirrors.docker.io (inline table at /etc/containerd/config.toml:3)" in failed[0]
    assert config.read_bytes() == before


def test_refusals_that_depend_on_the_containerd_series() -> None:
    from generator.node import containerd
    from generator.node.errors import ApplyError

    step = {"path": "/etc/containerd/config.toml", "containerd_version": "2.1", "hosts_dir": HOSTS_DIR}
    # containerd 2.1.9 fails on a BOM ("invalid character at start of key: U+00EF"); 1.6/1.7 read it.
    with pytest.raises(ApplyError, match="byte order mark, which containerd 2.x cannot read"):
        containerd.containerd_merge("\ufeffversion = 3\n", dict(step, containerd_version="2.1"), CREDS)
    assert containerd.containerd_merge("\ufeffversion = 2\n", dict(step, containerd_version="1.7"), CREDS).startswith("\ufeffversion = 2\n")
    # A version-3 file: 1.7.24 does not start ("unsupported config version `3`"); 1.6.20 loads it as version 2.
    with pytest.raises(ApplyError, match="version 3, but the profile says containerd 1.7: containerd 1.7 refuses to start with it"):
        containerd.containerd_merge("version = 3\n", dict(step, containerd_version="1.7"), CREDS)
    with pytest.raises(ApplyError, match="version 3, but the profile says containerd 1.6: containerd 1.6 loads it as version 2 and ignores the 2.x tables"):
        containerd.containerd_merge("version = 3\n", dict(step, containerd_version="1.6"), CREDS)
    # containerd 1.7.24: "failed to load TOML: ... invalid bare key character" for this header.
    with pytest.raises(ApplyError, match="an escaped quote in a \\[table\\] header key, which containerd 1.x cannot read"):
        containerd.containerd_merge('version = 2\n["\\"x"]\na = 1\n', dict(step, containerd_version="1.7"), CREDS)


# ---- property: random configs, the host's old auth and its neighbours in random forms -----------

from hypothesis import given, strategies as st  # noqa: E402

from tests.unit.test_node_tomlparse import DOCS, Writer  # noqa: E402

SETTINGS = st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), st.one_of(st.integers(0, 9), st.text(max_size=5), st.booleans()), max_size=3)


@st.composite
def containerd_configs(draw):
    auth = draw(st.one_of(st.just({"username": "old"}), st.just({"username": "old", "password": "old", "auth": "b2xk"}),
                          st.just({"identitytoken": "t"})))
    host_entry = {"auth": auth}
    if draw(st.booleans()):
        host_entry["tls"] = {"insecure_skip_verify": draw(st.booleans())}
    configs = {H: host_entry} if draw(st.booleans()) else {}
    configs.update({"o%d.example" % i: {"auth": {"username": "keep%d" % i}} for i in range(draw(st.integers(0, 2)))})
    registry = dict(draw(SETTINGS))
    registry.pop("configs", None)
    if configs:
        registry["configs"] = configs
    cri = dict(draw(SETTINGS))
    cri.pop("registry", None)
    if registry or draw(st.booleans()):
        cri["registry"] = registry
    tree = {k: v for k, v in draw(DOCS).items() if k not in ("version", "plugins")}
    tree["version"] = 2
    tree["plugins"] = {"io.containerd.grpc.v1.cri": cri, "io.containerd.other.v1.x": draw(SETTINGS)}
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = Writer(draw, newline).document(tree)
    return (draw(st.sampled_from(["", "\ufeff"])) + text), draw(st.sampled_from([[CREDS[0]], CREDS]))


# Valid TOML that containerd 1.x's go-toml v1 cannot load itself (an escaped quote in a
# [table] header key: 1.7.24 says "invalid bare key character"): refusing it is right.
ONE_X_CANNOT_READ = "which containerd 1.x cannot read"


@given(containerd_configs())
def test_any_form_of_config_merges_exactly(case):
    from generator.node import containerd
    from generator.node.errors import ApplyError

    existing, creds = case
    step = {"path": "/etc/containerd/config.toml", "containerd_version": "1.7", "hosts_dir": HOSTS_DIR}
    try:
        new = containerd.containerd_merge(existing, step, creds)
    except ApplyError as exc:
        assert ONE_X_CANNOT_READ in str(exc), str(exc)
        return
    containerd.containerd_verify(existing, new, creds, step)  # exact auth, nothing else changed (node reader)
    assert containerd.containerd_merge(new, step, creds) == new
    judge_merged("generated", existing, creds, new, new)  # and the same judged by tomllib


@given(containerd_configs())
def test_tls_profile_merges_unless_the_cri_would_refuse(case):
    from generator.node import containerd
    from generator.node.errors import ApplyError

    existing, _creds = case
    tree = tomllib.loads(existing.lstrip("\ufeff"))
    configs = _dig(tree, ("plugins", "io.containerd.grpc.v1.cri", "registry", "configs")) or {}
    conflict = any(isinstance(v, dict) and "tls" in v for v in configs.values())
    step = {"path": "/etc/containerd/config.toml", "containerd_version": "1.7", "hosts_dir": HOSTS_DIR}
    try:
        new = containerd.containerd_merge(existing, step, TLS_CREDS)
    except ApplyError as exc:
        assert ONE_X_CANNOT_READ in str(exc) or (conflict and "which containerd's CRI plugin refuses together with config_path" in str(exc)), str(exc)
        return
    assert not conflict
    containerd.containerd_verify(existing, new, TLS_CREDS, step)
    assert containerd.containerd_merge(new, step, TLS_CREDS) == new
    judge_merged("generated tls", existing, TLS_CREDS, new, new)


@pytest.mark.parametrize("series", ["1.6", "1.7", "2.1"])
def test_an_escaped_header_key_is_the_host_only_where_containerd_unescapes_it(series: str) -> None:
    """`[...configs."h\\u002Eexample".auth]` is host h.example's auth to containerd 2.x, but
    host `h\\u002Eexample` (another one, kept) to 1.x, which keeps header escapes as written."""
    from generator.node import containerd
    from generator.node.containerd_imports import read

    existing = f'version = 2\n[{V2}.configs."h\\u002Eexample".auth]\n  username = "old"\n  password = "stale"\n'
    step = {"path": "/etc/containerd/config.toml", "containerd_version": series, "hosts_dir": HOSTS_DIR}
    creds = [CREDS[0]]
    new = containerd.containerd_merge(existing, step, creds)
    containerd.containerd_verify(existing, new, creds, step)
    assert containerd.containerd_merge(new, step, creds) == new
    major = int(series[0])
    configs = _dig(read(new, major).value, ("plugins", "io.containerd.grpc.v1.cri", "registry", "configs"))
    mine = {"username": CREDS[0]["username"], "password": CREDS[0]["password"]}
    if major == 1:
        assert configs == {"h\\u002Eexample": {"auth": {"username": "old", "password": "stale"}}, H: {"auth": mine}}
    else:
        assert configs == {H: {"auth": mine}}


def test_valid_toml_that_1_x_cannot_read_because_of_header_escapes_is_refused_as_such() -> None:
    """`[["a\\u0062"]]` then `['ab'.x]` and `[['ab']]`: one array of tables to TOML 1.0 (2.x),
    two keys to 1.x, where the second use is then invalid. containerd 1.7.24 fails on it
    too: `key "'ab'" is already assigned and not of type table array`."""
    from generator.node import containerd
    from generator.node.errors import ApplyError

    text = "version = 2\n[[\"a\\u0062\"]]\n['ab'.x]\n[['ab']]\n"
    step = {"path": "/etc/containerd/config.toml", "containerd_version": "1.7", "hosts_dir": HOSTS_DIR}
    with pytest.raises(ApplyError, match="is TOML " + ONE_X_CANNOT_READ + " .*it keeps the escapes of \\[table\\] header keys") as refused:
        containerd.containerd_merge(text, step, CREDS)
    assert refused.value.code == "node-config-syntax" and str(refused.value).startswith("/etc/containerd/config.toml:4:3: ")
    merged = containerd.containerd_merge(text, dict(step, containerd_version="2.1"), CREDS)  # 2.x reads it as TOML 1.0: merged
    assert merged.startswith(text) and CREDS[0]["host"] in merged
