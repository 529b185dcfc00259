"""A missing prerequisite (root, a binary, the rootfs): skip on a developer machine,
FAIL in CI, so CI can never go green by skipping. The one place for that rule."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """CI sets CI=true: there a missing prerequisite is a broken CI, not a skip."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(reason: str) -> NoReturn:
    """Skip here, fail under CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: missing prerequisites fail instead of skipping)", pytrace=False)
    pytest.skip(reason)


def require(condition: bool, reason: str) -> None:
    """:func:`missing` unless ``condition``."""
    if not condition:
        missing(reason)
