"""Rotation: ``refresh: 1h`` -> a systemd timer that re-runs regauth-apply.

regauth-apply is already what a refresh needs: it fetches ``fetch: boot`` secrets
again, rewrites a file only when its content changed, restarts a runtime only then,
and on a failed fetch touches nothing.  So a refresh is only *when*: a oneshot
service running the same program and a timer with jitter (``RandomizedDelaySec``, a
tenth of the interval) so that a fleet started together does not fetch together.
"""

from __future__ import annotations

from generator import __version__, applyscript
from generator.outputs.templating import render
from generator.targets.base import NodeFile

SERVICE_NAME = "regauth-refresh.service"
TIMER_NAME = "regauth-refresh.timer"
SERVICE_PATH = f"/etc/systemd/system/{SERVICE_NAME}"
TIMER_PATH = f"/etc/systemd/system/{TIMER_NAME}"


def systemd_span(seconds: int) -> str:
    """A systemd time span: the largest whole unit (``90m`` stays ``90min``)."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def refresh_units(profile_name: str, seconds: int) -> list[NodeFile]:
    common = {"regauth_version": __version__, "profile": profile_name}
    service = render("regauth-refresh.service.j2", plan_path=applyscript.PLAN_PATH, script_path=applyscript.VM_PATH, **common)
    timer = render("regauth-refresh.timer.j2", interval=systemd_span(seconds), jitter=systemd_span(max(60, seconds // 10 // 60 * 60)), **common)
    return [
        NodeFile(SERVICE_PATH, service.encode("utf-8"), 0o644, secret=False, note="runs regauth-apply again (started by the timer)"),
        NodeFile(TIMER_PATH, timer.encode("utf-8"), 0o644, secret=False, note=f"refresh every {systemd_span(seconds)} with jitter; enabled"),
    ]
