"""Parked greenlets that run the connections' queued work, and their WebSockets' readers.

Starting a greenlet is dearer than it looks: on CPython 3.11+ its first frame gets a
fresh Python data stack (an ``mmap``, and a ``munmap`` when the greenlet ends), which
costs 10-20 µs on a virtual machine -- as much as the rest of an echo. A greenlet that
has finished a job parks here instead of ending, and the next job only costs a switch.
At most ``max_idle`` greenlets stay parked; the rest end as before.
"""

from __future__ import annotations

from collections.abc import Callable

import gevent
import greenlet


class WorkerPool:
    """Runs jobs in reused greenlets (each job starts in an empty context).

    :param max_idle: greenlets kept parked between jobs.
    """

    def __init__(self, max_idle: int = 64) -> None:
        self._idle: list[greenlet.greenlet] = []
        self._max_idle = max_idle
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job()`` soon, in a greenlet of its own (never in the caller's)."""
        idle = self._idle
        while idle:
            worker = idle.pop()
            if not worker.dead:
                gevent.get_hub().loop.run_callback(worker.switch, job)
                return
        # The first job travels in a list the greenlet empties: its arguments live as
        # long as it does, and a parked greenlet must keep nothing of a job alive.
        gevent.spawn_raw(self._work, [job])

    def _work(self, first: list[Callable[[], None]]) -> None:
        hub = gevent.get_hub()
        current = greenlet.getcurrent()
        job: Callable[[], None] | None = first.pop()
        while job is not None:
            current.gr_context = None  # no context variable leaks from the previous job
            job()
            if self._closed or len(self._idle) >= self._max_idle:
                return
            job = None
            self._idle.append(current)
            job = hub.switch()  # parked until submit() switches the next job in

    def close(self) -> None:
        """End every parked greenlet (and park no more)."""
        self._closed = True
        idle, self._idle = self._idle, []
        loop = gevent.get_hub().loop
        for worker in idle:
            if not worker.dead:
                loop.run_callback(worker.switch, None)
