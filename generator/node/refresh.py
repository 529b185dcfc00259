"""regauth-apply --refresh (regauth-refresh.service, every ``refresh:``): one log line per run.

The timer runs for the life of the node, so a run logs one line, whatever the number of
steps: ``unchanged``, ``updated N file(s) (...); containerd restarted``, or the run's
failure line, which carries its details.  Each step's own lines are held back; run
regauth-apply by hand to see them.  Shipped only with plans rendered with ``refresh:``.
"""

import contextlib
import io
import sys
from typing import Callable


def one_line(run: Callable[[list], int]) -> int:
    """Call ``run(done)`` (regauth-apply's run, filling ``done`` with what changed) with
    stderr held, then log the run's one line; its exit code."""
    held, done = io.StringIO(), []  # type: ignore[var-annotated]
    with contextlib.redirect_stderr(held):
        code = run(done)
    print("regauth-refresh: " + summary(code, done, held.getvalue()), file=sys.stderr, flush=True)
    return code


def summary(code: int, done: list, held: str) -> str:
    if code:
        last = (held.strip().splitlines() or ["exit code %d" % code])[-1].replace("regauth-apply: ", "", 1)
        return last if last.startswith("FAILED") else "FAILED: " + last
    if not done:
        return "unchanged"
    paths = [path for written, _ in done for path in written]
    restarts = [what for i, (_, what) in enumerate(done) if what not in [w for _, w in done[:i]]]
    return "updated %d file%s (%s); %s" % (len(paths), "" if len(paths) == 1 else "s", ", ".join(paths), "; ".join(restarts))
