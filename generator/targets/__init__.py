"""Runtime targets: each module knows one runtime's files, tables, modes and restart.

A target module provides ``OPTION_KEYS``, ``REQUIRED_KEYS``, ``EXAMPLE``,
``parse(checker, mapping, path) -> options | None``, ``schema() -> dict``,
``plan_step(options, creds) -> Step``, ``preview(step) -> list[NodeFile]`` and
``UNITS`` (the systemd units of the runtime, e.g. ``("containerd.service",)``: the
image's ``regauth-apply.service`` runs ``Before=`` them); the VM-side half lives in
``templates/regauth-apply.py`` under the same step kind.
Adding a runtime = one module here + one entry below + its apply function.
"""

from __future__ import annotations

from types import ModuleType

from generator.targets import containerd

TARGETS: dict[str, ModuleType] = {
    "containerd": containerd,
}
