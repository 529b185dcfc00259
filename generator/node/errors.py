"""How the node program reports: one exception type per kind of failure, one log line per event."""

import sys


class ApplyError(Exception):
    """A failure to report in one line; never carries a secret."""


def log(message: str) -> None:
    # One greppable line per event for cloud-init-output.log / journalctl.
    print("regauth-apply: " + message, file=sys.stderr, flush=True)


class FetchFailure(ApplyError):
    """Retrying will not help (403, 404, bad payload)."""
