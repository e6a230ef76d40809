"""BlockingMonitor in this process: holds of the hub are measured and logged once."""

from __future__ import annotations

import logging

import gevent
import greenlet
import pytest
from gevent import monkey

from geventsio.serving.monitor import BlockingMonitor
from tests.support import wait_until

real_sleep = monkey.get_original("time", "sleep")


def hold_the_hub(seconds: float) -> None:
    real_sleep(seconds)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="geventsio.serving.monitor")
    return caplog


def test_a_hold_over_the_threshold_is_logged_once_with_its_stack(
    log: pytest.LogCaptureFixture,
) -> None:
    with BlockingMonitor(0.05):
        gevent.spawn(hold_the_hub, 0.2).join()
        gevent.spawn(hold_the_hub, 0.01).join()  # under the threshold
        wait_until(lambda: held(log), 2, "a record")
        gevent.sleep(0.1)

    # (Only records with this stack: a loaded machine may pause the whole process.)
    assert len(held(log)) == 1
    message = held(log)[0]
    assert message.startswith("Greenlet-")
    assert "blocked the gevent event loop for 0.2" in message
    assert "(threshold 0.050 s)" in message
    assert "in hold_the_hub" in message
    assert message.rstrip().endswith("real_sleep(seconds)")


def held(log: pytest.LogCaptureFixture) -> list[str]:
    """The messages of records that caught ``hold_the_hub``."""
    messages = [record.getMessage() for record in log.records]
    return [message for message in messages if "in hold_the_hub" in message]


def test_cooperative_greenlets_are_not_reported(log: pytest.LogCaptureFixture) -> None:
    with BlockingMonitor(0.25):
        gevent.joinall([gevent.spawn(gevent.sleep, 0.4) for _ in range(3)])
        for _ in range(20):
            gevent.sleep(0.01)

    assert log.records == []


def test_stop_restores_the_previous_tracer() -> None:
    seen: list[str] = []

    def tracer(event: str, args: object) -> None:
        seen.append(event)

    previous = greenlet.settrace(tracer)
    try:
        monitor = BlockingMonitor(0.05).start()
        gevent.sleep(0.01)
        monitor.stop()
        assert greenlet.gettrace() is tracer
        assert "switch" in seen  # chained while the monitor ran
    finally:
        greenlet.settrace(previous)


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        BlockingMonitor(0)
