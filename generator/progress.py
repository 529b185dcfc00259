"""A progress bar on stderr, only when stderr is a terminal and not in CI.

Pipes, log files and CI logs get nothing but the final summary line.
"""

from __future__ import annotations

import os
import sys
import time


class Progress:
    def __init__(self, total: int, label: str, *, min_total: int = 20):
        self.total = total
        self.label = label
        self.done = 0
        self._last = 0.0
        self.enabled = (
            total >= min_total
            and sys.stderr.isatty()
            and not os.environ.get("CI")
            and os.environ.get("TERM") != "dumb"
        )

    def __enter__(self) -> "Progress":
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and self.done < self.total:
            return  # redrawing more than ~10 times a second costs more than it tells
        self._last = now
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
        sys.stderr.flush()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 70 + "\r")
            sys.stderr.flush()
