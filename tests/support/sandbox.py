"""The cloud-init sandbox for tests; it lives in testbed/cloudinit_sandbox.py (bench runs it too)."""

from testbed.cloudinit_sandbox import *  # noqa: F403 - the old import path, kept
