"""Fuzzing the profile loader: whatever the bytes, ``check_profile`` returns problems
and never raises; ``load_profile`` and a whole render raise nothing but our own errors.

Two generators: YAML-ish text built from the tokens that trip YAML parsers (anchors,
tags, flow/block mixes, tabs, odd scalars) and from our own schema words; and
structured documents (our keys, random values of every type) dumped as real YAML,
which get much deeper into validation.  Longer run:
``HYPOTHESIS_PROFILE=long python3 -m pytest -q tests/unit/test_loader_fuzz.py``;
with atheris installed, ``python3 tests/fuzz_loader.py`` fuzzes with coverage guidance.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.errors import Problem, RegauthError
from generator.profiles import check_profile, load_profile
from generator.render import render_all
from generator.targets import TARGETS
from tests.support.keys import key_file_bytes, service_account_key

WORDS = [
    "version", "description", "targets", "secrets", "registries", "output", "host", "auth", "type", "secret",
    "username", "source", "path", "var", "name", "project", "version", "fetch", "endpoint", "credentials_file",
    "mirror_for", "tls", "ca_file", "cert_file", "key_file", "cloud", "compress", "packer", "sources", "bake_secret",
    "file", "env", "gcp-secret-manager", "basic", "gcp-service-account", "_json_key", "_json_key_base64", "boot", "build",
    "europe-docker.pkg.dev", "*.pkg.dev", "key.json", "../key.json", "/etc/passwd", "1.7", "2.1", "latest", "3",
    *TARGETS, *{k for m in TARGETS.values() for k in m.OPTION_KEYS},
]
TOKENS = [": ", ":", "- ", "-", "\n", "\n  ", "\n    ", "\t", " ", "[", "]", "{", "}", ",", "'", '"', "&a ", "*a", "!!str ",
          "!!python/object:os.system ", "!custom ", "? ", "|", ">", "---\n", "...\n", "#", "%YAML 1.2\n", "<<: *a", "~",
          "null", "true", "yes", "0o17", "0x1F", "1e400", ".nan", "2001-12-14", "\\", "\\x00", "\x00", "\ufeff", "\x85", "\u2028"]
YAMLISH = st.lists(st.one_of(st.sampled_from(TOKENS), st.sampled_from(WORDS), st.text(max_size=6)), max_size=60).map("".join)

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20), st.sampled_from(WORDS),
    st.binary(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=8), st.integers()), inner, max_size=5)),
    max_leaves=25,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """Near-valid profiles: a valid skeleton with random parts swapped for random values."""
    doc: dict[str, Any] = {
        "version": 1,
        "targets": {"containerd": {"version": "1.7"}},
        "secrets": {"gar-key": {"source": "file", "path": "key.json"}, "pw": {"source": "env", "var": "REGAUTH_FUZZ_PW"}},
        "registries": [
            {"host": "europe-docker.pkg.dev", "auth": {"type": "gcp-service-account", "secret": "gar-key"}},
            {"host": "registry.example.com", "auth": {"type": "basic", "username": "robot", "secret": "pw"}},
        ],
    }
    for _ in range(draw(st.integers(1, 6))):
        node: Any = doc
        parent: Any = doc
        path: list[Any] = []
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else list(range(len(node)))))
            path.append(key)
            parent, node = node, node[key]
        target = parent if path else doc
        key = path[-1] if path else draw(st.sampled_from(WORDS))
        if isinstance(target, dict) and draw(st.booleans()):
            target[draw(st.sampled_from(WORDS))] = draw(VALUES)
        elif isinstance(target, list) and isinstance(key, int):
            target[key] = draw(VALUES)
        else:
            target[key] = draw(VALUES)
    return doc


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="regauth-fuzz-") as tmp:
        path = Path(tmp)
        (path / "key.json").write_bytes(key_file_bytes(service_account_key()))
        (path / "key.json").chmod(0o600)
        yield path


def _check(path: Path) -> None:
    profile, problems = check_profile(path)
    assert all(isinstance(p, Problem) for p in problems)
    assert (profile is None) == any(p.severity == "error" for p in problems) or profile is None
    for p in problems:
        p.render()  # every problem can be shown
    try:
        load_profile(path)
    except RegauthError:
        pass


@given(YAMLISH)
def test_yamlish_text_never_raises(folder: Path, text: str) -> None:
    path = folder / "p.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check(path)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(folder: Path, data: bytes) -> None:
    path = folder / "p.yaml"
    path.write_bytes(data)
    _check(path)


@given(documents())
def test_structured_documents_never_raise(folder: Path, doc: dict[str, Any]) -> None:
    path = folder / "p.yaml"
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check(path)


# A render costs ~20 ms: a sixth of the profile's examples (300+ in CI) covers the
# paths past loading (secret resolution, targets, outputs) without owning the CI budget.
@settings(max_examples=max(30, settings.default.max_examples // 6))
@given(documents())
def test_render_of_structured_documents_fails_only_with_our_errors(folder: Path, doc: dict[str, Any]) -> None:
    path = folder / "r.yaml"
    try:
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8", errors="surrogatepass")
    except yaml.YAMLError:
        return
    os.environ["REGAUTH_FUZZ_PW"] = "pw"
    try:
        render_all([path], folder / "out", write=False, jobs=1)
    except RegauthError:
        pass
