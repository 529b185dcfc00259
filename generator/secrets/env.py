"""``source: env``: a secret taken from an environment variable (CI pipelines)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import Problem
from generator.messages import inputs as M
from generator.profile.model import SecretSpec
from generator.secrets.value import SecretValue

if TYPE_CHECKING:
    from generator.profile.checker import Checker

_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def read_env_secret(spec: SecretSpec) -> SecretValue | Problem:
    assert spec.var is not None
    value = os.environb.get(spec.var.encode()) if hasattr(os, "environb") else None
    if value is None:
        text = os.environ.get(spec.var)
        value = text.encode("utf-8", "surrogateescape") if text is not None else None
    if value is None or value == b"":
        return M.ENV_SECRET_UNSET.problem(spec.at.file, spec.at.path + ".var", spec.at.line, spec.at.col, var=spec.var, name=spec.name)
    return SecretValue(value, origin=f"env {spec.var}")


def parse_env_block(c: Checker, s: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None:
    """The ``secrets:`` block of a ``source: env`` secret (its keys checked already), or
    None after reporting to ``c`` why it cannot be used."""
    var = c.string(s, "var", p)
    if "var" not in s:
        c.report(M.ENV_SECRET_NO_VAR, p)
        return None
    if var is None:
        return None
    if not _ENV_RE.match(var):
        c.report(M.ENV_SECRET_BAD_VAR, p + ("var",), var=var)
        return None
    return SecretSpec(name=name, source="env", at=c.at(p), var=var)
