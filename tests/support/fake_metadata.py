"""The fake GCE metadata server (testbed/fake_metadata.py) plus its pytest fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.fake_metadata import *  # noqa: F403 - this module is the fake's test-side name
from testbed.fake_metadata import FakeMetadataServer, running_fake_metadata


@pytest.fixture
def fake_metadata() -> Iterator[FakeMetadataServer]:
    """A started fake metadata server on a free loopback port, stopped after the test."""
    with running_fake_metadata() as server:
        yield server
