"""Runtime targets: each module knows one runtime's files, tables, modes and restart.

A target module provides ``OPTION_KEYS``, ``REQUIRED_KEYS``, ``EXAMPLE``,
``parse(checker, mapping, path) -> options | None``, ``schema() -> dict``,
``plan_step(options, creds) -> Step``, ``preview(step) -> list[NodeFile]`` and
``UNITS`` (the systemd units of the runtime, e.g. ``("containerd.service",)``: the
image's ``regauth-apply.service`` runs ``Before=`` them); the VM-side half is a module
of ``generator/node/`` (``generator/node/plan.py`` maps each step kind to it).  Optional: ``check(checker,
options, registries, path)`` for rules that need the registries too, and
``needs_registries(options) -> bool`` (default True).
Runtimes that share their rules (Docker/Podman/CRI-O, k3s/RKE2) export a
:class:`~generator.targets.base.SharedKind` as ``TARGET`` instead of functions.
Adding a runtime = one module here + one entry below + its node module (and its entry in
``generator/node/plan.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

# Runtime names in the order their steps run, each the name of its module here.
NAMES = ("containerd", "microk8s", "k3s", "rke2", "docker", "podman", "crio", "kubelet")


class _Targets(Mapping[str, Any]):
    """name -> the module (or its ``TARGET``, a SharedKind) providing the protocol above.

    Modules are imported on first lookup, so rendering a containerd profile does not
    pay for importing the seven other runtimes (a measurable share of a cold start,
    see bench/run.py).  The import system's own cache keeps each module loaded once.
    """

    def __getitem__(self, name: str) -> Any:
        if name not in NAMES:
            raise KeyError(name)
        module = importlib.import_module(f"{__name__}.{name}")
        return getattr(module, "TARGET", module)

    def __iter__(self) -> Iterator[str]:
        return iter(NAMES)

    def __len__(self) -> int:
        return len(NAMES)

    def __contains__(self, name: object) -> bool:
        return name in NAMES


TARGETS: Mapping[str, Any] = _Targets()
