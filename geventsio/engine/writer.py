"""Non-blocking, bounded writes to a client's socket.

The emitting greenlet (a handler, a broadcast loop, a heartbeat timer) never waits for a
slow client: a write goes straight to the kernel when it can and the remainder is kept in
a bounded buffer that a flusher greenlet, spawned only while there is something to flush,
drains. A full buffer is reported to the caller, which applies the slow-consumer policy
(for ``drop``, :meth:`SocketWriter.make_room`). The rest of a write the kernel took only
part of is always kept: dropping it would cut a frame in two.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import gevent
import gevent.socket

from geventsio.engine.dropping import Tier, choose_victims
from geventsio.engine.gevent_private import kernel_socket

logger = logging.getLogger(__name__)

#: Stands for an empty buffer (an empty deque costs ~600 bytes; most sockets never wait).
_NO_PENDING: deque[bytes | memoryview] = deque(maxlen=0)
_NO_TIERS: deque[Tier] = deque(maxlen=0)


class SocketWriter:
    """Writes bytes to one socket without blocking the caller.

    :param sock: a connected gevent socket (plain or TLS).
    :param max_buffer_size: bytes that may wait for a slow client.
    :param on_error: called once, from the flusher, when the socket fails.
    :param preface: bytes that go first, with the first write (in the same ``send()``).
    """

    def __init__(
        self,
        sock: gevent.socket.socket,
        max_buffer_size: int,
        on_error: Callable[[], None] | None = None,
        preface: bytes = b"",
    ) -> None:
        #: What still goes before the first write (see :meth:`write`).
        self.preface = preface
        self._sock = sock
        # Only a plain gevent socket wraps a kernel socket we may write to directly;
        # a TLS socket must go through its own sendall.
        self._raw = kernel_socket(sock)
        self._max_buffer_size = max_buffer_size
        self._on_error = on_error
        self._pending: deque[bytes | memoryview] = _NO_PENDING  # a deque once needed
        self._tiers: deque[Tier] = _NO_TIERS  # the tier of each pending item
        self._pending_size = 0
        self._flusher: gevent.Greenlet[[], None] | None = None
        self.failed = False

    @property
    def buffered(self) -> int:
        """Bytes waiting to be written."""
        return self._pending_size

    def write(self, data: bytes, tier: Tier = Tier.KEEP) -> bool:
        """Write ``data`` now or later; False when the buffer limit would be exceeded.

        :param tier: how readily ``data`` may be dropped while it waits (see
            :mod:`~geventsio.engine.dropping`).
        """
        if self.failed:
            return True  # the connection is going away; dropping is all that is left
        if self.preface:
            data, self.preface = self.preface + data, b""
        view: bytes | memoryview = data
        if not self._pending and self._raw is not None:
            try:
                sent = self._raw.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._fail()
                return True
            if sent == len(data):
                return True
            if sent:  # the rest of a frame the client has begun to receive
                view, tier = memoryview(data)[sent:], Tier.KEEP
                self._queue(view, tier)
                return True
        if self._pending_size + len(view) > self._max_buffer_size:
            return False
        self._queue(view, tier)
        return True

    def _queue(self, view: bytes | memoryview, tier: Tier) -> None:
        if self._pending is _NO_PENDING:
            self._pending, self._tiers = deque(), deque()
        self._pending.append(view)
        self._tiers.append(tier)
        self._pending_size += len(view)
        if self._flusher is None:
            self._flusher = gevent.spawn(self._flush)

    def make_room(self, size: int, tier: Tier) -> bool:
        """Drop waiting writes (volatile, then broadcast, oldest first; none above
        ``tier``) until ``size`` more bytes fit; False, dropping nothing, if they cannot."""
        excess = self._pending_size + size - self._max_buffer_size
        victims = choose_victims(self._tiers, [len(v) for v in self._pending], excess, tier)
        if victims is None:
            return False
        for index in reversed(victims):
            self._pending_size -= len(self._pending[index])
            del self._pending[index]
            del self._tiers[index]
        return True

    def _flush(self) -> None:
        try:
            while self._pending:
                chunk = self._pending.popleft()
                self._tiers.popleft()
                self._pending_size -= len(chunk)
                self._sock.sendall(chunk)
        except OSError:
            self._fail()
        finally:
            self._flusher = None

    def _fail(self) -> None:
        if self.failed:
            return
        self.failed = True
        self._pending, self._tiers = _NO_PENDING, _NO_TIERS
        self._pending_size = 0
        if self._on_error is not None:
            self._on_error()

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the buffer to empty; True if it did."""
        flusher = self._flusher
        if flusher is not None and flusher is not gevent.getcurrent():
            flusher.join(timeout)
        return not self._pending
