"""Fixtures of the deployment tests: child processes, killed at teardown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.processes import Processes


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start servers and clients in child processes; every one is killed at teardown."""
    started = Processes()
    yield started
    started.kill_all()
