"""An in-memory host for a :class:`~geventsio.Server`: Socket.IO clients without sockets.

Test clients (flask_ext's ``SocketIOTestClient`` among them) open an
:class:`InMemorySession` on an :class:`InMemoryHost`. The session is an Engine.IO session
as the server sees it (it satisfies :class:`~geventsio.engine.interface.EngineSession`):
what the client sends is encoded by the real Socket.IO codec and handed to the server as
the transports hand it; what the server sends is decoded by the real codec and given to
the client's ``on_packet``. Handlers therefore run through the real connection code, in
the connection's worker greenlet, in order.

:meth:`InMemorySession.settle` waits until the server has handled everything the client
sent so far: it queues a marker behind it in the connection's worker, which runs one
connection's work in arrival order. Exceptions that handlers let escape are collected in
:attr:`InMemorySession.errors` (through the server's error hook, which still calls the
application's own error handler).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gevent.event import Event

from geventsio._types import DisconnectReason, EngineSid
from geventsio.engine.dropping import Tier
from geventsio.engine.events import EventEmitter
from geventsio.engine.lending import ReadingLease
from geventsio.engine.socket import EngineSocket
from geventsio.options import Transport
from geventsio.protocol import socketio as codec
from geventsio.protocol.engineio import PacketType as EnginePacketType
from geventsio.protocol.outgoing import OutgoingPacket
from geventsio.protocol.socketio import Packet, PacketType
from geventsio.server.namespace import ErrorHandler
from geventsio.server.server import Server
from geventsio.server.socket import Socket

__all__ = ["InMemoryHost", "InMemorySession", "Packet", "PacketType"]


class _ErrorRouter:
    """The server's error hook while in-memory sessions exist: gives each exception to
    the session of the socket that raised it, then to the hook it replaced."""

    def __init__(self, previous: ErrorHandler | None) -> None:
        self.previous = previous

    def __call__(self, socket: Socket, exc: Exception) -> Any:
        engine = socket.connection.engine
        if isinstance(engine, InMemorySession):
            engine.errors.append(exc)
        if self.previous is not None:
            return self.previous(socket, exc)
        return None


class InMemorySession(EventEmitter):
    """A client's Engine.IO session, in memory (it takes session event listeners, as a
    real session does, but never upgrades, so only ``close`` is ever emitted).

    :param server: the server it connects to.
    :param environ: the handshake's WSGI environ (plain values).
    :param on_packet: called with each Socket.IO packet the server sends.
    :param on_close: called once when the session ends (either side).
    :ivar errors: exceptions the server's handlers let escape for this client.
    """

    transport = Transport.POLLING
    EVENTS = EngineSocket.EVENTS

    def __init__(
        self,
        server: Server,
        environ: Mapping[str, Any],
        on_packet: Callable[[Packet], None],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.sid = EngineSid(secrets.token_urlsafe(15))
        self.environ = environ
        self.reading_held = False
        self.inline_reader: Any = None  # never lent: every job goes to the worker
        self.protocol = 4
        self.closed = False
        self.errors: list[Exception] = []
        self._server = server
        self._decoder = codec.Decoder()
        self._on_packet = on_packet
        self._on_close = on_close

    @property
    def writable(self) -> bool:
        """Packets sent now are delivered at once."""
        return not self.closed

    @property
    def connected(self) -> bool:
        """The session is open."""
        return not self.closed

    # -- the server's side --------------------------------------------------------------

    def relay_reading(self, lease: ReadingLease) -> None:
        """Never called: an in-memory session lends no reader (``inline_reader`` is None)."""
        raise NotImplementedError("an in-memory session has no reader to lend")

    def send_packets(self, packets: Sequence[OutgoingPacket], tier: Tier = Tier.KEEP) -> None:
        """Decode what the server sends and give it to ``on_packet`` (none is dropped)."""
        for outgoing in packets:
            if self.closed:
                return
            if outgoing.packet.type is not EnginePacketType.MESSAGE:
                continue
            packet = self._decoder.feed(outgoing.packet.data)
            if packet is not None:
                self._on_packet(packet)

    def close(self, reason: DisconnectReason = DisconnectReason.FORCED_CLOSE) -> None:
        """End the session; the server hears ``reason``."""
        if self.closed:
            return
        self.closed = True
        self._server.on_engine_close(self, reason)
        if self._on_close is not None:
            self._on_close()
        self.emit_event("close", reason)

    # -- the client's side --------------------------------------------------------------

    def send(self, packet: Packet) -> None:
        """Send a Socket.IO packet to the server.

        :raises NotSerialisable: its data cannot be serialised (a ``TypeError``).
        """
        for part in codec.encode(packet):
            self._server.on_engine_message(self, part)

    def settle(self, timeout: float) -> None:
        """Wait until the server has handled everything sent so far.

        :raises TimeoutError: a handler is still running after ``timeout`` seconds.
        """
        connection = self._server.connections.get(self.sid)
        if connection is None or self.closed:
            return
        done = Event()
        connection.run_soon(done.set)
        if not done.wait(timeout):
            raise TimeoutError(
                f"the server did not finish handling what this client sent within "
                f"{timeout} s (a handler is still running)"
            )

    def take_error(self) -> Exception | None:
        """The first exception collected since the last call, if any (the rest are
        dropped: they are what it caused)."""
        if not self.errors:
            return None
        error = self.errors[0]
        self.errors.clear()
        return error


class InMemoryHost:
    """Opens in-memory sessions on ``server``.

    :param server: the server under test.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        if not isinstance(server.error_handler, _ErrorRouter):
            server.on_error(_ErrorRouter(server.error_handler))

    def open(
        self,
        environ: Mapping[str, Any],
        on_packet: Callable[[Packet], None],
        on_close: Callable[[], None] | None = None,
    ) -> InMemorySession:
        """A new session, connected at the Engine.IO level (namespaces are not yet)."""
        session = InMemorySession(self.server, environ, on_packet, on_close)
        self.server.on_engine_connect(session)
        return session
