"""How the node program reports: one exception type per kind of failure, one log line per event."""

import sys
from typing import Optional



class ApplyError(Exception):
    """A failure to report in one line; never carries a secret.

    ``code`` (one of :mod:`.codes`) is printed as ``FAILED [code]`` so ``regauth doctor
    --error`` can explain the line.  Every raise passes one, or is of a subclass whose
    class sets it (tests/unit/test_node_codes.py checks the source).
    """

    code = None  # type: Optional[str]

    def __init__(self, *args, code: Optional[str] = None) -> None:
        super().__init__(*args)
        self.code = code or self.code


def log(message: str) -> None:
    # One greppable line per event for cloud-init-output.log / journalctl.
    print("regauth-apply: " + message, file=sys.stderr, flush=True)


def failure_line(cause: str, code: str) -> str:
    """The text after ``regauth-apply: `` for a failure: ``FAILED [code] cause``."""
    return "FAILED [%s] %s" % (code, cause)


class FetchFailure(ApplyError):
    """Retrying will not help (403, 404, bad payload)."""

    code = "node-fetch-refused"
