"""Round trip through real containerd: a sample of the generated secrets (30 profiles,
fixed seed) merged by the delivered apply script into each binary's own stock config
and into no config, then read back by ``containerd config dump`` (1.6, 1.7, 2.x);
the password under the exact host key must equal the input byte for byte.

The property itself (2,000 examples, every format) is tests/unit/test_roundtrip_props.py;
this is its proof against containerd's own TOML parser (Go), which differs from tomllib.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from generator import applyscript
from generator.secrets.resolve import SecretResolver
from generator.targets import TARGETS
from tests.support import roundtrip as rt
from tests.support.containerd import Containerd, containerd_binary, default_config, dumped_auth  # noqa: F401
from tests.unit.test_roundtrip_props import Case, cases, target_options, write_case

pytestmark = pytest.mark.system
SAMPLE = 30
# containerd 1.6/1.7 `config dump` (BurntSushi/toml's encoder) writes U+001F and U+007F raw
# inside strings, which TOML forbids; containerd *read* them right (2.x dumps them escaped).
# Raw control characters can only occur inside strings in a dump, so escaping them back is exact.
_RAW_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def config_dump(binary: Containerd, path: Path) -> dict:
    """``containerd config dump`` parsed with tomllib, tolerating the 1.x encoder's raw controls."""
    proc = subprocess.run([str(binary.path), "--config", str(path), "config", "dump"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"containerd {binary.version} rejected {path}:\n{proc.stderr[-2000:]}"
    return tomllib.loads(_RAW_CONTROL.sub(lambda m: "\\u%04x" % ord(m.group(0)), proc.stdout))


@settings(max_examples=SAMPLE, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(case=cases())
def test_containerd_config_dump_reads_the_exact_password(containerd_binary: Containerd, case: Case) -> None:  # noqa: F811
    if case.basic_password == "":
        return  # rejected at render (a password of only a line break); covered by the unit property
    with tempfile.TemporaryDirectory(prefix="regauth-dump-") as tmp:
        folder = Path(tmp)
        profile = rt.load(write_case(folder, case, target_options(containerd_binary.minor_series, only_containerd=True)))
        creds = SecretResolver().credentials(profile)
        options = replace(profile.targets["containerd"], version=containerd_binary.minor_series)
        spec = json.loads(json.dumps(TARGETS["containerd"].plan_step(options, creds).spec))
        apply = rt.apply_module(applyscript.full_script())
        node_creds = apply.credentials(spec["registries"])
        expected = case.expected()
        for label, existing in (("stock", default_config(containerd_binary)), ("none", None)):
            text = apply.containerd_merge(existing, spec, node_creds)
            apply.containerd_verify(existing, text, node_creds)
            path = folder / f"{label}.toml"
            path.write_text(text, encoding="utf-8")
            dump = config_dump(containerd_binary, path)
            for host, (user, password) in expected.items():
                auth = dumped_auth(containerd_binary, dump, host)
                assert auth is not None, f"{containerd_binary.version} {label}: no auth for {host}"
                assert auth.get("username") == user, (containerd_binary.version, label, host)
                assert auth.get("password", "").encode("utf-8") == password.encode("utf-8"), (containerd_binary.version, label, host)
