"""What each consumer reads back from regauth's outputs, decoded with the consumer's own parser.

Why a support module: the round-trip properties (tests/unit/test_roundtrip_props.py)
and the real-containerd sample (tests/system/test_roundtrip_containerd.py) must decode
outputs the same way a node does, and neither may trust regauth's own decoders:

- cloud-init: ``yaml.safe_load`` of the cloud-config (after gzip / MIME unpacking
  with :mod:`gzip` and :mod:`email`), ``write_files`` content decoded per its ``encoding``;
- the node: the apply script *as delivered in user-data* runs under ``--root`` and
  writes the runtime configs;
- containerd: :mod:`tomllib` (the system test adds ``containerd config dump``);
- Packer: python-hcl2 for the syntax plus a small HCL string decoder written from
  the HCL spec (python-hcl2 returns literals undecoded);
- every other runtime file (registries.yaml, auth JSON, kubelet config, templates):
  parsed by its extension and searched for the credential.
"""

from __future__ import annotations

import base64
import contextlib
import email
import gzip
import hashlib
import importlib
import io
import json
import os
import re
import sys
import tempfile
from generator.tomlcompat import tomllib
import types
import unicodedata
from dataclasses import dataclass, replace
from email import policy
from pathlib import Path
from typing import Any, Iterator

import yaml

from generator import applyscript
from generator.profiles import check_profile
from generator.profile.model import Profile
from generator.render import Rendered, render_profile
from generator.secrets.resolve import SecretResolver

PLAN = applyscript.PLAN_PATH
SCRIPT = applyscript.VM_PATH
CONTAINERD_TABLES = {
    1: ("plugins", "cri", "registry", "configs"),
    2: ("plugins", "io.containerd.grpc.v1.cri", "registry", "configs"),
    3: ("plugins", "io.containerd.cri.v1.images", "registry", "configs"),
}
# Existing node configs the apply step merges into: one per config version, plus none.
EXISTING_CONFIGS: dict[str, str | None] = {
    "none": None,
    "v1": '[plugins.cri]\n  sandbox_image = "k8s.gcr.io/pause:3.2"\n',
    "v2": 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs"\n',
    "v3": 'version = 3\n[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "overlayfs"\n',
}


class NotLoaded(AssertionError):
    """The profile did not load; carries the problems (tests decide whether that was right)."""

    def __init__(self, problems: list[Any]):
        super().__init__("\n".join(p.render() for p in problems))
        self.problems = problems


def load(path: Path) -> Profile:
    profile, problems = check_profile(path)
    if profile is None:
        raise NotLoaded(problems)
    return profile


def render_variants(profile: Profile) -> dict[str, Rendered]:
    """The same profile rendered as plain #cloud-config, and as gzip of multipart MIME (--merge-with).

    Resolution errors (InvalidInput) propagate: callers check the rejection is right.
    """
    creds = SecretResolver().credentials(profile)
    plain = replace(profile, output=replace(profile.output, compress="never", cloud="none"))
    gz = replace(profile, output=replace(profile.output, compress="always", cloud="none"))
    theirs = [("theirs.yaml", b"#cloud-config\nruncmd:\n- [echo, theirs]\n")]
    return {"cloud-config": render_profile(plain, creds), "gzip+mime": render_profile(gz, creds, theirs)}


def output(rendered: Rendered, relpath: str) -> bytes:
    for f in rendered.files:
        if f.relpath == relpath:
            return f.data
    raise KeyError(relpath)


# ------------------------------------------------------------------ cloud-init side
def cloud_config_text(user_data: bytes) -> str:
    """What cloud-init's cloud-config handler gets: gunzip, split MIME, pick our part."""
    if user_data[:2] == b"\x1f\x8b":
        user_data = gzip.decompress(user_data)
    if user_data.startswith(b"Content-Type: multipart/") or user_data.lower().startswith(b"mime-version"):
        msg = email.message_from_bytes(user_data, policy=policy.compat32)
        assert msg.is_multipart()
        ours = [p for p in msg.get_payload() if p.get_filename() == "regauth.cfg"]
        assert len(ours) == 1 and ours[0].get_content_type() == "text/cloud-config"
        payload = ours[0].get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode(ours[0].get_content_charset() or "utf-8")
    return user_data.decode("utf-8")


def written_files(user_data: bytes) -> dict[str, tuple[bytes, str, str]]:
    """path -> (content, permissions, owner) exactly as cloud-init's write_files would write."""
    text = cloud_config_text(user_data)
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    out = {}
    for entry in doc["write_files"]:
        encoding = entry.get("encoding", "text/plain")
        raw = entry["content"]
        if encoding in ("b64", "base64"):
            data = base64.b64decode(raw, validate=True)
        elif encoding in ("gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
            data = gzip.decompress(base64.b64decode(raw, validate=True))
        else:
            data = raw.encode("utf-8")
        perms = entry["permissions"]
        assert isinstance(perms, str), "permissions must be a quoted string (YAML 0600 is the int 384)"
        out[entry["path"]] = (data, perms, entry.get("owner", "root:root"))
    return out


# ------------------------------------------------------------------ the node side
_MODULES: dict[str, types.ModuleType] = {}


def apply_module(script: bytes) -> types.ModuleType:
    """The apply script *as delivered* (bytes from user-data), imported once per distinct content."""
    digest = hashlib.sha256(script).hexdigest()
    if digest not in _MODULES:
        mod = types.ModuleType(f"regauth_apply_delivered_{digest[:12]}")
        mod.__file__ = f"<delivered {digest[:12]}>"
        sys.modules[mod.__name__] = mod  # dataclasses and friends look modules up by name
        exec(compile(script, mod.__file__, "exec"), mod.__dict__)
        for name, _source in mod._S:  # the delivered file's modules, their names in one namespace
            # The file loads its modules on first import: import each one (its own loader runs).
            for key, value in vars(importlib.import_module(f"{mod._P}.{name}")).items():
                if not key.startswith("__"):
                    mod.__dict__.setdefault(key, value)
        _MODULES[digest] = mod
    return _MODULES[digest]


@dataclass
class NodeRun:
    code: int
    log: str
    root: Path


@contextlib.contextmanager
def node_root() -> Iterator[Path]:
    """A scratch root on tmpfs when there is one (fsync there costs nothing)."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="regauth-node-", dir=base) as tmp:
        yield Path(tmp)


def run_apply(files: dict[str, tuple[bytes, str, str]], root: Path, existing: str | None) -> NodeRun:
    """Lay the delivered files under ``root`` (with an existing containerd config) and apply."""
    for path, (data, perms, _owner) in files.items():
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        dest.chmod(int(perms, 8))
    plan = json.loads(files[PLAN][0])
    for step in plan["steps"]:
        if step["kind"] == "containerd" and existing is not None:
            dest = root / step["path"].lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(existing)
    mod = apply_module(files[SCRIPT][0])
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
        code = mod.main(["--root", str(root), "--no-restart", "--fetch-timeout", "1"])
    return NodeRun(code, err.getvalue(), root)


def containerd_auth(config_text: str, host: str) -> dict[str, Any]:
    """The auth table containerd reads for ``host``, by the file's own version."""
    doc = tomllib.loads(config_text)
    table = CONTAINERD_TABLES[min(int(doc.get("version", 1)), 3)]
    node: Any = doc
    for key in table + (host, "auth"):
        node = node[key]
    return node


# ------------------------------------------------------------------ generic runtime files
def parse_by_extension(path: Path, data: bytes) -> Any:
    """A runtime file with its consumer's parser; None for files that carry no credentials."""
    name = path.name
    if name.endswith(".regauth.orig") or name.endswith(".lock") or str(path).endswith(PLAN) or str(path).endswith(SCRIPT):
        return None
    if name.endswith(".toml"):
        text = data.decode("utf-8")
        if name == "containerd-template.toml":
            text = snap_substitute(text)
        return tomllib.loads(text)
    if name.endswith((".yaml", ".yml")):
        # libyaml: as strict as go-yaml (k3s/RKE2's reader) about special characters, and fast.
        return yaml.load(data.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if name.endswith(".json"):
        return json.loads(data.decode("utf-8"))
    return None


def snap_substitute(text: str) -> str:
    """What the MicroK8s snap does to containerd-template.toml at every start (sed over ${VAR})."""
    values = {"SNAP": "/snap/microk8s/current", "SNAP_DATA": "/var/snap/microk8s/current", "SNAP_COMMON": "/var/snap/microk8s/common", "RUNTIME": "runc", "RUNTIME_TYPE": "io.containerd.runc.v2", "SNAPSHOTTER": "overlayfs"}
    return re.sub(r"\$\{(" + "|".join(values) + r")\}", lambda m: values[m.group(1)], text)


def leaves(tree: Any) -> Iterator[tuple[tuple, Any]]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            for path, leaf in leaves(v):
                yield (k,) + path, leaf
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            for path, leaf in leaves(v):
                yield (i,) + path, leaf
    else:
        yield (), tree


def carries(tree: Any, username: str, password: str) -> bool:
    """True when a parsed runtime file holds ``password`` exactly, or Docker-style ``auth``."""
    basic = base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")
    for path, leaf in leaves(tree):
        if leaf == password:
            return True
        if path and path[-1] == "auth" and leaf == basic:
            return True
    return False


def node_tree(root: Path) -> dict[str, bytes]:
    return {"/" + str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ HCL
_HCL_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_HCL_TOKEN = re.compile(r'\\(?:u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)|\$\$\{|%%\{|\$\{|%\{|"|\n|\r')


def _hcl_token(m: re.Match[str]) -> str:
    tok = m.group(0)
    if tok in ("$${", "%%{"):
        return tok[1:]
    if tok in ("${", "%{"):
        raise ValueError("an interpolation or directive Packer would evaluate")
    if tok in ('"', "\n", "\r"):
        raise ValueError("a raw quote or line break inside a one-line HCL string")
    if tok[1] in "uU":
        return chr(int(tok[2:], 16))
    if tok[1] in _HCL_SIMPLE:
        return _HCL_SIMPLE[tok[1]]
    raise ValueError(f"HCL has no escape {tok}")


def hcl_decode(literal: str) -> str:
    """Evaluate an HCL quoted template literal without interpolations (HCL native syntax spec:
    escapes \\n \\r \\t \\" \\\\ \\uNNNN \\UNNNNNNNN, $${ and %%{ for literal ${ and %{),
    then NFC as HCL does."""
    assert literal.startswith('"') and literal.endswith('"'), literal[:40]
    return unicodedata.normalize("NFC", _HCL_TOKEN.sub(_hcl_token, literal[1:-1]))


def hcl_attributes(text: str) -> dict[str, str]:
    """Top-level ``name = "literal"`` attributes of an HCL file, decoded (python-hcl2 for syntax)."""
    import hcl2

    doc = hcl2.loads(text)
    out = {}
    for key, value in doc.items():
        if isinstance(value, str) and value.startswith('"'):
            out[key] = hcl_decode(value)
    return out
