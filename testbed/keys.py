"""Service-account keys generated at test time (no private key is ever committed)."""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=4)
def service_account_key(email: str = "puller@regauth-test.iam.gserviceaccount.com") -> dict[str, str]:
    """A fresh RSA key in the exact shape gcloud writes (cached per email for speed)."""
    spec = importlib.util.spec_from_file_location("demo_key", ROOT / "scripts" / "demo-key.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return dict(mod.service_account_key(email))


def key_file_bytes(key: dict[str, str]) -> bytes:
    return (json.dumps(key, indent=2) + "\n").encode()
