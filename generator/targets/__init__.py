"""Runtime targets: each module knows one runtime's files, tables, modes and restart.

A target module provides ``OPTION_KEYS``, ``REQUIRED_KEYS``, ``EXAMPLE``,
``parse(checker, mapping, path) -> options | None``, ``schema() -> dict``,
``plan_step(options, creds) -> Step``, ``preview(step) -> list[NodeFile]`` and
``UNITS`` (the systemd units of the runtime, e.g. ``("containerd.service",)``: the
image's ``regauth-apply.service`` runs ``Before=`` them); the VM-side half lives in
``templates/regauth-apply.py`` under the same step kind.  Optional: ``check(checker,
options, registries, path)`` for rules that need the registries too, and
``needs_registries(options) -> bool`` (default True).
Adding a runtime = one module here + one entry below + its apply function.
"""

from __future__ import annotations

from types import ModuleType

from generator.targets import containerd, crio, docker, k3s, kubelet, microk8s, podman, rke2

TARGETS: dict[str, ModuleType] = {
    "containerd": containerd,
    "microk8s": microk8s,
    "k3s": k3s,
    "rke2": rke2,
    "docker": docker,
    "podman": podman,
    "crio": crio,
    "kubelet": kubelet,
}
