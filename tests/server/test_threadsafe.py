"""``Server.emit`` and ``Server.run_threadsafe`` from other OS threads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gevent.event import Event

import geventsio
from tests.support.os_threads import emit_from_os_threads, start_os_thread


@pytest.fixture
def server() -> Iterator[geventsio.Server]:
    sio = geventsio.Server()
    yield sio
    sio.shutdown()


def test_emits_from_eight_os_threads_all_arrive_in_each_threads_order(
    server: geventsio.Server,
) -> None:
    received = emit_from_os_threads(server, server.emit, 8, 200)
    assert len(received) == 8 * 200
    for thread in range(8):
        assert [i for t, i in received if t == thread] == list(range(200))


def test_run_threadsafe_runs_in_the_hub_thread_at_once_or_handed_over(
    server: geventsio.Server,
) -> None:
    ran: list[str] = []
    server.run_threadsafe(ran.append, "hub")  # the hub's thread: at once
    assert ran == ["hub"]
    done = Event()

    def from_thread() -> None:
        server.run_threadsafe(ran.append, "thread")
        server.run_threadsafe(done.set)

    start_os_thread(from_thread, ())
    assert done.wait(10)
    assert ran == ["hub", "thread"]


def test_a_handed_over_call_that_raises_is_logged_and_the_next_runs(
    server: geventsio.Server, caplog: pytest.LogCaptureFixture
) -> None:
    done = Event()

    def from_thread() -> None:
        server.run_threadsafe(lambda: 1 / 0)
        server.run_threadsafe(done.set)

    start_os_thread(from_thread, ())
    assert done.wait(10)
    assert "another thread raised" in caplog.text
