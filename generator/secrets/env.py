"""``source: env``: a secret taken from an environment variable (CI pipelines)."""

from __future__ import annotations

import os

from generator.errors import Problem
from generator.messages import inputs as M
from generator.profile.model import SecretSpec
from generator.secrets.value import SecretValue


def read_env_secret(spec: SecretSpec) -> SecretValue | Problem:
    assert spec.var is not None
    value = os.environb.get(spec.var.encode()) if hasattr(os, "environb") else None
    if value is None:
        text = os.environ.get(spec.var)
        value = text.encode("utf-8", "surrogateescape") if text is not None else None
    if value is None or value == b"":
        return M.ENV_SECRET_UNSET.problem(spec.at.file, spec.at.path + ".var", spec.at.line, spec.at.col, var=spec.var, name=spec.name)
    return SecretValue(value, origin=f"env {spec.var}")
