"""Bounded waits on observable conditions (never a bare sleep as synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import gevent

T = TypeVar("T")

#: How often a condition is re-checked.
POLL_INTERVAL = 0.01


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, message: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    :param predicate: checked at once, then every 10 ms (other greenlets run meanwhile).
    :param timeout: seconds before giving up.
    :param message: what was awaited, for the failure message.
    :raises AssertionError: the condition did not hold within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"condition not met within {timeout} s: {what}")
        gevent.sleep(POLL_INTERVAL)


def elapsed(start: float) -> float:
    """Seconds since ``start`` (a :func:`time.monotonic` reading)."""
    return time.monotonic() - start
