"""Generate a fleet of profiles for benchmarks: N profiles x 3 registries sharing a few keys."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from testbed.keys import service_account_key  # noqa: E402

REGIONS = ("europe", "us", "asia")
PROFILE = """\
version: 1
description: fleet profile {i}
targets:
  containerd:
    version: "{version}"
secrets:
  gar-key:
    source: file
    path: keys/key{k}.json
  robot:
    source: env
    var: REGAUTH_BENCH_PASSWORD
registries:
  - host: {r0}-docker.pkg.dev
    auth: {{type: gcp-service-account, secret: gar-key}}
  - host: {r1}-docker.pkg.dev
    auth: {{type: gcp-service-account, secret: gar-key, username: _json_key}}
  - host: registry{i}.example.com:5000
    auth: {{type: basic, username: robot, secret: robot}}
"""


def make_fleet(folder: Path, count: int, keys: int = 4) -> list[Path]:
    (folder / "keys").mkdir(parents=True, exist_ok=True)
    for k in range(keys):
        path = folder / "keys" / f"key{k}.json"
        if not path.exists():
            path.write_text(json.dumps(service_account_key(f"fleet{k}@bench.iam.gserviceaccount.com"), indent=2))
            path.chmod(0o600)
    paths = []
    for i in range(count):
        path = folder / f"node{i:05d}.yaml"
        if not path.exists():
            path.write_text(PROFILE.format(i=i, k=i % keys, version=("1.7", "2.1")[i % 2], r0=REGIONS[i % 3], r1=REGIONS[(i + 1) % 3]))
        paths.append(path)
    os.environ.setdefault("REGAUTH_BENCH_PASSWORD", "s3cret-robot")
    return paths


if __name__ == "__main__":
    make_fleet(Path(sys.argv[1]), int(sys.argv[2]))
