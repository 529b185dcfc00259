"""Process entry point: the ``regauth`` command and ``python -m generator``.

The garbage-collector policy lives here, not in :func:`generator.cli.main`, because it
is only right for a process that exits when the command ends (tests call ``main``
in-process and must keep their collector).
"""

from __future__ import annotations

import gc
import os
import sys

# Exit status when the reader of our stdout went away (``regauth schema | head -1``):
# 141 = 128 + SIGPIPE, what a shell reports for `yes | head -1` and what scripts
# using `set -o pipefail` already expect from a command cut short by its reader.
EXIT_CLOSED_PIPE = 141


def run() -> int:
    # Why: most objects of a regauth run are made by imports and live until exit, so
    # CPython's cyclic collector, run every 700 new objects, rescans them over and
    # over, and scans the whole heap once more at exit: together ~15 ms of a ~100 ms
    # cold start (bench/run.py).  A larger first-generation threshold lets the
    # imports finish between collections, while a fleet render still collects its
    # per-profile cycles (~200 objects each; with the collector off, 2,000 profiles
    # peaked at twice the memory).
    gc.set_threshold(50_000, 20, 20)
    from generator.cli import main

    try:
        return main()
    except BrokenPipeError:
        # Python's documented recipe: point stdout at /dev/null so the interpreter's own
        # final flush does not fail again ("Exception ignored ... BrokenPipeError").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
    finally:
        gc.freeze()  # exit's final collection skips frozen objects: nothing left to scan


if __name__ == "__main__":
    raise SystemExit(run())
