"""A WebSocket's reader greenlet lent to the layer above for one job.

A message's work (an event's handler, say) usually finishes without blocking. Running it
in the greenlet that read the message saves handing it to a worker greenlet: two
greenlet switches and a loop callback per message, about 8% of an echo's
instructions. But the reader must keep reading while the job blocks (waiting for this
client's acknowledgement, for I/O, for a lock): acknowledgements, pongs and the close
arrive on the same WebSocket. So, while a job runs in the reader, a
:class:`ReadingLease` records it; if the job blocks, a relay greenlet reads on
(:meth:`~geventsio.engine.socket.EngineSocket.relay_reading`) until the job returns, and
is then stopped where stopping loses nothing (waiting for data, or for room in the
queue), or else allowed to finish the message it holds.
"""

from __future__ import annotations

from typing import Any, Protocol

import gevent


class Relaying(Protocol):
    """What lends its reader (the Engine.IO session: see ``EngineSession``)."""

    def relay_reading(self, lease: ReadingLease) -> None:
        """Read on in the calling greenlet until ``lease.returned``."""


class ReadingLease:
    """One loan of a reader greenlet.

    :param session: the session whose WebSocket the reader reads.
    """

    __slots__ = ("interruptible", "relay", "returned", "session")

    def __init__(self, session: Relaying) -> None:
        self.session = session
        #: The greenlet reading meanwhile, once the job blocked.
        self.relay: gevent.Greenlet[..., Any] | None = None
        #: The job has returned: the relay stops before its next message.
        self.returned = False
        #: The relay waits where killing it loses nothing (for data, or for room).
        self.interruptible = False

    def end(self) -> None:
        """The job returned (in the reader): stop the relay, if one started, once it can
        be stopped without losing what it read."""
        self.returned = True
        relay = self.relay
        while relay is not None and not relay.dead:
            if self.interruptible:
                relay.kill()
            else:  # it is handling a message (closing the session, say): let it finish
                relay.join(0.01)


class LendingWatch:
    """Starts a relay for every lent reader whose job blocked.

    One libev ``prepare`` watcher, called by the hub before each wait for I/O: any lease
    still open then belongs to a job that gave up the processor before returning.
    """

    def __init__(self) -> None:
        self._open: list[ReadingLease] = []
        #: A lease given back unused (no relay started), lent again as new.
        self._spare: ReadingLease | None = None
        self._watcher: Any = None

    def lend(self, session: Relaying) -> ReadingLease:
        """The reader of ``session`` starts a job: its lease."""
        lease = self._spare
        if lease is None:
            lease = ReadingLease(session)
        else:
            self._spare = None
            lease.session, lease.returned = session, False
        self._open.append(lease)
        watcher = self._watcher
        if watcher is None:
            watcher = self._watcher = gevent.get_hub().loop.prepare(ref=False)
            watcher.start(self._start_relays)
        return lease

    def give_back(self, lease: ReadingLease) -> None:
        """The reader's job returned: stop its relay, if one started (see
        :meth:`ReadingLease.end`)."""
        self._open.remove(lease)
        if lease.relay is None:
            lease.returned = True
            self._spare = lease
        else:
            lease.end()

    def _start_relays(self) -> None:  # hub callback, before each wait for I/O
        if not self._open:  # the usual case: every job returned without blocking
            return
        for lease in self._open:
            if lease.relay is None:
                lease.relay = gevent.spawn(lease.session.relay_reading, lease)

    def stop(self) -> None:
        """Watch no more (the server is closing)."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher.close()
            self._watcher = None
