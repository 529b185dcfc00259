"""Runtime targets: each module knows one runtime's files, tables, modes and restart.

A target module provides ``OPTION_KEYS``, ``REQUIRED_KEYS``, ``EXAMPLE``,
``parse(checker, mapping, path) -> options | None``, ``schema() -> dict``,
``plan_step(options, creds) -> Step``, ``preview(step) -> list[NodeFile]`` and
``UNITS`` (the systemd units of the runtime, e.g. ``("containerd.service",)``: the
image's ``regauth-apply.service`` runs ``Before=`` them); the VM-side half lives in
``templates/regauth-apply.py`` under the same step kind.  Optional: ``check(checker,
options, registries, path)`` for rules that need the registries too, and
``needs_registries(options) -> bool`` (default True).
Runtimes that share their rules (Docker/Podman/CRI-O, k3s/RKE2) export a
:class:`~generator.targets.base.SharedKind` as ``TARGET`` instead of functions.
Adding a runtime = one module here + one entry below + its apply function.
"""

from __future__ import annotations

from typing import Any

from generator.targets import containerd, crio, docker, k3s, kubelet, microk8s, podman, rke2

# name -> a module, or a SharedKind, providing the protocol above
TARGETS: dict[str, Any] = {
    "containerd": containerd,
    "microk8s": microk8s,
    "k3s": k3s.TARGET,
    "rke2": rke2.TARGET,
    "docker": docker.TARGET,
    "podman": podman.TARGET,
    "crio": crio.TARGET,
    "kubelet": kubelet,
}
