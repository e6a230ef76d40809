"""Find the code that holds the gevent hub: a greenlet that runs too long without yielding.

Every client of a gevent server shares one thread. A handler that calls something
blocking (an unpatched driver, ``time.sleep``, a long computation) freezes all of them.
:class:`BlockingMonitor` logs each such hold longer than ``threshold`` seconds, once, with
its duration and the stack of the greenlet that held the hub.

Theory of operation. Two parts, sharing a few plain attributes (each write is atomic
under the GIL):

* A greenlet **switch tracer** (``greenlet.settrace``), in the hub's thread, stamps every
  switch: which greenlet now runs, since when, and then a switch counter.
* A **native thread** (started with the *original* ``_thread``, so that it stays a real
  thread when the program is monkey-patched) wakes every ``threshold / 10``. When a greenlet
  other than the hub has run for ``threshold`` since the last switch, it captures that
  thread's current frame (``sys._current_frames()``: the running greenlet's stack is the
  thread's stack), checks that the counter has not moved meanwhile (else the capture is
  dropped), and leaves the report keyed by the counter.

So every hold longer than 1.1 * threshold is caught (and a shorter one above the threshold
may be). The log record is written when the hold ends: the next switch finds the report, knows the
exact duration, and schedules the logging call on the hub (so handlers and their locks
are only ever used from the gevent thread). A hold that never ends (an endless loop) is
logged by the native thread itself after ``max(1 s, 10 * threshold)``.

Why not gevent's own monitor (``gevent.config.monitor_thread``, ``EventLoopBlocked``)?
Its settings are process-wide, it reports by sampling -- only holds longer than twice its
period are sure to be seen -- it prints a dump of every greenlet and thread to stderr, and
its event is delivered in the monitoring thread. This one measures each hold, reports
the one stack that matters through ``logging``, and can be started and stopped per server.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

import gevent
import greenlet
from gevent import monkey

logger = logging.getLogger(__name__)

#: A hold still going after this many thresholds is reported without waiting for its end.
STUCK_FACTOR = 10


@dataclass(frozen=True)
class _Hold:
    """A greenlet caught holding the hub, with its stack at that moment."""

    greenlet: Any
    since: float
    stack: str


def describe(glet: Any) -> str:
    """A short name for a greenlet: gevent's name (``Greenlet-3``), or its kind."""
    if isinstance(glet, gevent.Greenlet):
        return str(glet.name)
    if getattr(glet, "parent", True) is None:
        return "the main greenlet"
    return type(glet).__name__


class BlockingMonitor:
    """Log greenlets that hold the gevent hub longer than ``threshold`` seconds (every hold
    over 1.1 * ``threshold`` is caught).

    :param threshold: seconds a greenlet may run without yielding (default 100 ms).
    :param log: the logger to write to (``geventsio.serving.monitor``).

    Use ``with BlockingMonitor(0.1): ...`` or :meth:`start` / :meth:`stop`, in the thread
    that runs the gevent hub (the main thread of a server).
    """

    def __init__(self, threshold: float = 0.1, *, log: logging.Logger | None = None) -> None:
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        self.threshold = threshold
        self.log = log or logger
        self._interval = max(threshold / 10, 0.002)
        self._stuck_after = max(1.0, STUCK_FACTOR * threshold)
        self._hub: Any = None
        self._previous_tracer: Any = None
        self._running = False
        self._finished: Any = None
        # Shared with the native thread: written by the tracer, read by the thread.
        self._switches = 0
        self._since = 0.0
        self._active: Any = None
        self._holds: dict[int, _Hold] = {}
        self._stuck_reported = -1

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> BlockingMonitor:
        """Install the switch tracer and start the watching thread."""
        if self._running:
            raise RuntimeError("this BlockingMonitor is already running")
        self._hub = gevent.get_hub()
        self._since = time.perf_counter()
        self._previous_tracer = greenlet.settrace(self._trace)
        self._running = True
        self._finished = monkey.get_original("_thread", "allocate_lock")()
        self._finished.acquire()
        monkey.get_original("_thread", "start_new_thread")(self._watch, ())
        return self

    def stop(self) -> None:
        """Remove the tracer and end the thread (waits at most a few milliseconds)."""
        if not self._running:
            return
        self._running = False
        greenlet.settrace(self._previous_tracer)
        self._previous_tracer = None
        self._finished.acquire(True, self._interval * 4 + 1.0)

    def __enter__(self) -> BlockingMonitor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the hub's thread ----------------------------------------------------------------

    def _trace(self, event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            now = time.perf_counter()
            ended = self._switches
            # The counter last: the thread reads it first, so it never pairs a new
            # count with the previous greenlet's start time.
            self._since = now
            self._active = args[1]
            self._switches = ended + 1
            hold = self._holds.pop(ended, None)
            if hold is not None:
                self._hub.loop.run_callback(self._report, hold, now - hold.since, False)
        if self._previous_tracer is not None:
            self._previous_tracer(event, args)

    def _report(self, hold: _Hold, duration: float, still_blocked: bool) -> None:
        self.log.warning(
            "%s %s the gevent event loop for %.3f s (threshold %.3f s): no other client "
            "was served meanwhile. Its stack while blocking:\n%s",
            describe(hold.greenlet),
            "has been blocking" if still_blocked else "blocked",
            duration,
            self.threshold,
            hold.stack.rstrip("\n"),
        )

    # -- the native thread ---------------------------------------------------------------

    def _watch(self) -> None:
        sleep = monkey.get_original("time", "sleep")
        try:
            while self._running:
                sleep(self._interval)
                if self._running:
                    self._check()
        finally:
            self._finished.release()

    def _check(self) -> None:
        switches, since, active = self._switches, self._since, self._active
        for stale in [key for key in list(self._holds) if key < switches]:
            self._holds.pop(stale, None)  # captured just as its hold ended
        if active is None or active is self._hub or switches == self._stuck_reported:
            return
        held = time.perf_counter() - since
        if held < self.threshold:
            return
        if switches not in self._holds:
            self._capture(switches, since, active)
        elif held >= self._stuck_after:
            hold = self._holds.pop(switches, None)
            if hold is not None:  # else the hold ended and the hub reports it
                self._stuck_reported = switches
                self._report(hold, held, True)

    def _capture(self, switches: int, since: float, active: Any) -> None:
        frame = sys._current_frames().get(self._hub.thread_ident)
        if frame is None:
            return
        stack = "".join(traceback.format_stack(frame))
        del frame
        if self._switches == switches:
            self._holds[switches] = _Hold(active, since, stack)
