"""regauth-apply's command line: read the plan, prepare every step, then commit them all.

Usage: regauth-apply [--plan /etc/regauth/plan.json] [--root DIR] [--no-restart] [--fetch-timeout S] [--refresh]
Exit codes: 0 applied (or already up to date), 1 failed (config untouched), 2 bad plan.
"""

import json
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from .errors import ApplyError, failure_line, log
from .files import Context, commit_all, lock
from .plan import STEP_KINDS, PlanError, check_plan, fetches_at_boot

# Not __doc__: what regauth ships drops docstrings.
DESCRIPTION = "regauth-apply: merge registry credentials into a node's runtime config at first boot."


def steps(kinds: Iterable[str]) -> Dict[str, Callable]:
    """Step kind -> prepare function, importing only the modules these kinds need (a
    shipped program holds only its plan's modules).  KeyError: a kind no module handles."""
    import importlib

    found = {}
    for kind in kinds:
        module, function = STEP_KINDS[kind]
        found[kind] = getattr(importlib.import_module("." + module, __package__), function)
    return found


def failed(exc: Exception, after: str, code: Optional[str] = None) -> int:
    """Log one line for a failure (an OSError as its reason and file) and return exit code 1.

    The line carries the error's code (``FAILED [code] ...``), or ``code`` for an OSError."""
    cause = str(exc) if isinstance(exc, ApplyError) else "%s on %s" % (getattr(exc, "strerror", exc), getattr(exc, "filename", "?"))
    log(failure_line(cause + after, exc.code if isinstance(exc, ApplyError) else code))
    return 1


def _run(plan: dict, root: str, args) -> Tuple[int, list]:
    """Prepare every step, then commit them all; the exit code (0: go on and say done)
    and what :func:`commit_all` changed."""
    fetcher = None
    kinds = [step["kind"] for step in plan["steps"]]  # each one known: check_plan said so
    try:
        prepare = steps(kinds)
        if fetches_at_boot(plan["steps"]):
            from .bootfetch import BootFetcher  # shipped only to nodes whose plan fetches at boot (plan.modules)

            fetcher = BootFetcher(time.monotonic() + args.fetch_timeout)
    except ImportError as exc:
        log(failure_line("this regauth-apply was built for another plan (it lacks %s); re-render and ship both files together" % exc.name, "node-plan-invalid"))
        return 2, []
    ctx = Context(root, fetcher, not args.no_restart)
    try:
        outcomes = [prepare[step["kind"]](step, ctx) for step in plan["steps"]]
    except (ApplyError, OSError) as exc:
        return failed(exc, "; nothing was changed, the old credentials are kept" if args.refresh else "; the runtime config was left unchanged", "node-read-failed"), []
    try:
        done = commit_all(outcomes, ctx.do_restart, ctx.pending)
    except (ApplyError, OSError) as exc:
        return failed(exc, "" if isinstance(exc, ApplyError) else " while writing", "node-write-failed"), []
    return 0, done


# Seconds a boot-time fetch keeps retrying (Secret Manager here; the program itself with
# output.program: url, whose fetcher user-data passes it): a NAT or proxy may come up late.
FETCH_TIMEOUT = 120.0


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="regauth-apply", description=DESCRIPTION)
    parser.add_argument("--plan", default=None, help="plan file (default: ROOT/etc/regauth/plan.json)")
    parser.add_argument("--root", default="", help="apply under this directory instead of / (tests, chroots)")
    parser.add_argument("--no-restart", action="store_true", help="never restart services")
    parser.add_argument("--fetch-timeout", type=float, default=FETCH_TIMEOUT, metavar="S", help="give up boot-time fetches after S seconds (default %d)" % FETCH_TIMEOUT)
    parser.add_argument("--lock-timeout", type=float, default=300.0, metavar="S", help="wait at most S seconds for another run to finish (default 300)")
    parser.add_argument("--refresh", action="store_true", help="log one line per run (the refresh timer)")
    args = parser.parse_args(argv)
    if args.refresh:
        from .refresh import one_line  # shipped with plans rendered with refresh: (applyscript)

        return one_line(lambda done: _apply(args, done))
    return _apply(args)


def _apply(args, done: Optional[list] = None) -> int:
    """One run: read and check the plan, take the lock, apply; ``done`` receives what changed."""
    root = args.root.rstrip("/")
    plan_path = args.plan or root + "/etc/regauth/plan.json"
    started = time.monotonic()
    try:
        with open(plan_path, encoding="utf-8") as handle:
            plan = json.load(handle)
    except (OSError, ValueError) as exc:
        log(failure_line("cannot read plan %s: %s" % (plan_path, type(exc).__name__), "node-plan-invalid"))
        return 2
    try:
        check_plan(plan)
    except PlanError as exc:
        log(failure_line("%s: %s; re-render with a matching regauth" % (plan_path, exc), exc.code))
        return 2
    try:
        with lock(root, args.lock_timeout):  # cloud-init and the boot unit may race
            code, changed = _run(plan, root, args)
    except ApplyError as exc:
        return failed(exc, "; nothing was changed")
    if code:
        return code
    if done is not None:
        done.extend(changed)
    log("done in %d ms (profile %s)" % ((time.monotonic() - started) * 1000, plan.get("profile", "?")))
    return 0

