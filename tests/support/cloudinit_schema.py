"""``cloud-init schema`` of real releases; it lives in testbed/cloudinit_schema.py."""

from testbed.cloudinit_schema import *  # noqa: F403 - the old import path, kept
