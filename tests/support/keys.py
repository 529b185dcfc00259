"""Service-account keys made at test time; they live in testbed/keys.py (bench uses them too)."""

from testbed.keys import *  # noqa: F403 - the old import path, kept
