"""Handing calls from other OS threads to the server's gevent hub.

gevent's objects belong to the OS thread whose hub runs them: a socket write, an
``Event`` or a greenlet used from another thread (a thread pool, a C library's callback,
code that was never monkey-patched) corrupts the hub or is silently lost. An
:class:`~gevent.core.async_` watcher is gevent's one thread-safe way in: ``send()`` may
be called from any thread and wakes the hub, which then runs the watcher's callback in
its own thread.

Theory of operation. :class:`HubHandoff` is made in the hub's thread (with the server).
:meth:`HubHandoff.call` runs the call at once when it is made in that thread; from any
other thread it appends the call to a deque (``append``/``popleft`` are atomic) and
sends the watcher. The watcher's callback starts one greenlet that runs the queued calls
in the order they were queued, so the calls of each thread keep their order, and none is
lost: a call queued while the greenlet runs is run by it, or wakes a new one.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
from gevent import monkey

logger = logging.getLogger(__name__)

#: The real thread id, even when ``threading`` is monkey-patched (then ``get_ident``
#: names greenlets).
_thread_ident: Callable[[], int] = monkey.get_original("_thread", "get_ident")


class HubHandoff:
    """Runs calls in the gevent hub's thread of the OS thread that made it."""

    def __init__(self) -> None:
        self._thread = _thread_ident()
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = deque()
        self._running = False
        self._closed = False
        # ref=False: an idle watcher does not keep gevent.wait() or the hub alive.
        self._watcher = gevent.get_hub().loop.async_(ref=False)
        self._watcher.start(self._wake)

    def in_hub_thread(self) -> bool:
        """Whether the caller runs in the hub's thread."""
        return _thread_ident() == self._thread

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``function(*args, **kwargs)`` in the hub's thread: now when called from it,
        else as soon as the hub gets to it (in the order of the calls of each thread)."""
        if _thread_ident() == self._thread:
            function(*args, **kwargs)
            return
        self._calls.append((function, args, kwargs))
        self._watcher.send()

    def close(self) -> None:
        """Stop the watcher (calls queued later are never run); idempotent."""
        if not self._closed:
            self._closed = True
            self._watcher.stop()
            self._watcher.close()

    def _wake(self) -> None:
        # In the hub's own greenlet: nothing here may block, so the work gets a greenlet.
        if not self._running and self._calls:
            self._running = True
            gevent.spawn(self._run_queued)

    def _run_queued(self) -> None:
        calls = self._calls
        try:
            while calls:
                function, args, kwargs = calls.popleft()
                try:
                    function(*args, **kwargs)
                except Exception:
                    logger.exception("a call handed over from another thread raised")
        finally:
            self._running = False
        if calls:  # queued after the loop ended and before the flag was cleared
            self._wake()
