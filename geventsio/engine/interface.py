"""``EngineSession``: what the Socket.IO layer needs of an Engine.IO session.

:class:`~geventsio.engine.socket.EngineSocket` is the real one, on HTTP long-polling and
WebSocket; :class:`geventsio.testing.InMemorySession` is another, in memory, for tests.
The server's ``on_engine_connect``/``on_engine_message``/``on_engine_close`` take any
object with this surface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from geventsio._types import DisconnectReason, EngineSid
from geventsio.engine.dropping import Tier
from geventsio.engine.lending import ReadingLease
from geventsio.options import Transport
from geventsio.protocol.outgoing import OutgoingPacket


class EngineSession(Protocol):
    """One client's Engine.IO session, as the Socket.IO layer sees it.

    :ivar sid: the session id.
    :ivar environ: the plain values of the handshake request's WSGI environ.
    :ivar reading_held: set while the layer above holds the reading greenlet (back-pressure).
    :ivar protocol: the Engine.IO protocol revision (3 is served with Socket.IO v4).
    """

    sid: EngineSid
    environ: Mapping[str, Any]
    reading_held: bool
    #: The greenlet reading the session's WebSocket while it may be lent out to run a
    #: message's work (see :mod:`~geventsio.engine.lending`); None when it may not.
    inline_reader: Any
    #: The Engine.IO protocol revision: 4, or 3 (``allow_eio3``).
    protocol: int

    @property
    def transport(self) -> Transport:
        """The transport packets currently travel on."""

    @property
    def writable(self) -> bool:
        """Whether a packet sent now would leave at once."""

    @property
    def connected(self) -> bool:
        """Whether packets sent now can still reach the client."""

    def send_packets(self, packets: Sequence[OutgoingPacket], tier: Tier = Tier.KEEP) -> None:
        """Send encoded packets (the same objects may go to many sessions); ``tier`` says
        what ``slow_consumer_policy="drop"`` may do with them."""

    def close(self, reason: DisconnectReason = DisconnectReason.FORCED_CLOSE) -> None:
        """End the session; the layer above hears ``reason``."""

    def on(self, event: str, listener: Any = None) -> Any:
        """Listen to a session event (``upgrade``, ``packet``, ``drain``...: see
        :class:`~geventsio.engine.socket.EngineSocket`)."""

    def relay_reading(self, lease: ReadingLease) -> None:
        """Read on for the lent reader greenlet until ``lease.returned`` (called only
        while :attr:`inline_reader` is set)."""
