"""One Engine.IO session and the namespace sockets multiplexed on it (Node's ``Client``).

Theory of operation. The engine hands every message straight to
:meth:`Connection.on_engine_message` (the Connection is its session's handler: no lookup
by sid) in the transport's greenlet: it decodes, settles acknowledgements at once (so a
handler blocked in ``call()`` still gets its answer), and queues everything else —
namespace connects, events, disconnects — for the connection's worker greenlet, which
runs them in arrival order. The worker exists only while there is work; an idle
connection has none.

Back-pressure. ``on_engine_message`` never blocks, except when the queue has reached the
server's ``max_queued_events`` (the high-water mark): then it holds the transport's
greenlet until the worker has brought the queue down to half of that (the low-water
mark), so the client is read no further — TCP flow control stops a WebSocket client, and
a polling POST is answered only once its packets are queued. Nothing is dropped and
order is kept. Invariants:

* Only ``on_engine_message`` waits, and only for room; the worker and the hub never wait
  for it. Every change that can make room (the worker taking work, the connection
  closing, a greenlet starting to wait for an acknowledgement) wakes the waiting
  greenlet, and the wait is re-checked every :data:`RECHECK_INTERVAL` seconds as a
  safety net.
* While a greenlet waits in ``call()`` for this client's acknowledgement (see
  :meth:`Connection.awaiting_ack`), both marks are raised by ``max_queued_events``: the
  acknowledgement is behind what the client sent before it, and a paused reader would
  never reach it. The queue is still bounded (twice the option); a client that floods
  past that before answering makes the ``call()`` time out instead.
* While the greenlet waits, ``engine.reading_held`` is set, so that the heartbeat does
  not take the unread pong for a missing one.
* With ``async_handlers`` each event runs in a greenlet of its own instead of the queue;
  the same marks apply to how many of those run at once (``max_concurrent_handlers``
  and half of it), and each one that ends wakes the waiting reader.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import Context as _empty_context
from typing import Any, Protocol

import gevent
from gevent.event import Event
from greenlet import getcurrent

from geventsio._types import DisconnectReason
from geventsio.engine.dropping import Tier
from geventsio.engine.interface import EngineSession
from geventsio.engine.lending import LendingWatch, ReadingLease
from geventsio.exceptions import RemoteProtocolError
from geventsio.protocol.outgoing import OutgoingPacket, encode_for_engine
from geventsio.protocol.serializers import Serializer
from geventsio.protocol.socketio import DecoderLimits, Packet, PacketType
from geventsio.server.dialect import Dialect, dialect_for
from geventsio.server.workers import WorkerPool

logger = logging.getLogger(__name__)

#: Seconds after which a paused reader re-checks its wait, even if nothing woke it.
RECHECK_INTERVAL = 1.0


class ConnectionObserver(Protocol):
    """What a connection tells the server's observer
    (:class:`~geventsio.server.observer.Observer`)."""

    def reading_paused(self, connection: Connection) -> None:
        """The connection stopped reading its client (back-pressure)."""


class ConnectionHost(Protocol):
    """What a connection needs of its server (:class:`~geventsio.server.server.Server`)."""

    decoder_limits: DecoderLimits
    serializer: Serializer
    max_queued_events: int
    max_concurrent_handlers: int
    async_handlers: bool
    connect_timeout: float
    workers: WorkerPool
    lending: LendingWatch

    @property
    def observer(self) -> ConnectionObserver | None:
        """Told when the connection pauses its reader (None: nobody watches)."""

    def connect_namespace(self, connection: Connection, name: str, auth: Any) -> None:
        """Handle a CONNECT packet (in the connection's worker)."""

    def connection_closed(self, connection: Connection) -> None:
        """Forget a connection whose Engine.IO session ended."""


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class NamespaceSocket(Protocol):
    """What a connection needs of the sockets multiplexed on it
    (:class:`~geventsio.server.socket.Socket`)."""

    @property
    def namespace(self) -> _Named:
        """The socket's namespace."""

    def handle_event(self, packet: Packet) -> None:
        """Run an EVENT or BINARY_EVENT's handler (in the connection's worker, or in a
        greenlet of its own with ``async_handlers``)."""

    def receive_ack(self, packet: Packet) -> None:
        """An ACK or BINARY_ACK for this socket (transport greenlet)."""

    def fail_pending_acks(self, reason: DisconnectReason) -> None:
        """The connection is gone: fail every call() waiting on this client."""

    def on_close(self, reason: DisconnectReason) -> None:
        """The socket disconnected (connection's worker)."""

    def disconnect(self, close: bool = False) -> None:
        """Disconnect the socket, telling its client."""


class Connection:
    """The Socket.IO side of one Engine.IO session.

    :param server: the Socket.IO server.
    :param engine: the Engine.IO session.
    """

    def __init__(self, server: ConnectionHost, engine: EngineSession) -> None:
        self.server = server
        self.engine = engine
        #: Connected sockets by namespace name.
        self.sockets: dict[str, NamespaceSocket] = {}
        #: The Socket.IO revision spoken (v4 on an Engine.IO v3 session, else v5).
        self.dialect: Dialect = dialect_for(engine)
        self._decoder = self.dialect.decoder(server.serializer.decoder(server.decoder_limits))
        # A deque only while there is work (an empty deque costs ~600 bytes).
        self._queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] | None = None
        self._working = False
        #: While a job runs in the WebSocket's reader greenlet: its loan.
        self._lease: ReadingLease | None = None
        self._bound = server.max_queued_events
        self._high_water = self._bound
        self._low_water = self._bound // 2
        #: Handler greenlets running now (``async_handlers``), and their marks.
        self.handlers_running = 0
        self._handler_bound = server.max_concurrent_handlers
        self._handler_high = self._handler_bound
        self._handler_low = self._handler_bound // 2
        self._acks_awaited = 0
        #: Transport greenlets waiting for room in the queue, and what wakes them.
        self._paused = 0
        self._room: Event | None = None
        #: How many times the reader was paused (back-pressure), for logs and tests.
        self.pauses = 0
        self.closed = False
        self._connect_timer: Any = gevent.get_hub().loop.timer(server.connect_timeout)
        self._connect_timer.start(self._on_connect_timeout)

    # -- work in order ---------------------------------------------------------------

    def run_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` in this connection's worker, after what is queued; or
        now, when nothing is queued and the caller is the WebSocket's reader (which a
        relay then stands in for, should the work block: see
        :mod:`~geventsio.engine.lending`)."""
        if not self._working and self._queue is None and getcurrent() is self.engine.inline_reader:
            self._run_inline(function, args)
            return
        if self._queue is None:
            self._queue = deque()
        self._queue.append((function, args))
        if not self._working:
            self._working = True
            self.server.workers.submit(self._run_worker)

    def _run_inline(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._working = True
        lending = self.server.lending
        lease = self._lease = lending.lend(self.engine)
        try:
            _empty_context().run(function, *args)  # as a worker's job: no context leaks
        except Exception:
            logger.exception("connection %s: unexpected error", self.engine.sid)
        finally:
            lending.give_back(lease)
            self._lease = None
            if self._queue:  # what the relay read meanwhile, or others queued
                self.server.workers.submit(self._run_worker)
            else:
                self._queue = None
                self._working = False

    def spawn_handler(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` in a greenlet of its own (``async_handlers``); at most
        ``max_concurrent_handlers`` run at once before the reader is paused."""
        self.handlers_running += 1
        self.server.workers.submit(lambda: self._run_handler(function, args))

    def _run_handler(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            function(*args)
        except Exception:
            logger.exception("connection %s: unexpected error", self.engine.sid)
        finally:
            self.handlers_running -= 1
            if self._paused:
                self._wake_if_room()

    @property
    def queued(self) -> int:
        """How much work waits for the worker (the running item not counted)."""
        return len(self._queue) if self._queue is not None else 0

    @property
    def paused(self) -> bool:
        """Whether a transport greenlet is held until the queue has room (back-pressure)."""
        return self._paused > 0

    def _run_worker(self) -> None:
        queue = self._queue
        try:
            while queue:
                function, args = queue.popleft()
                if self._paused:
                    self._wake_if_room()
                try:
                    function(*args)
                except Exception:
                    logger.exception("connection %s: unexpected error", self.engine.sid)
        finally:
            self._working = False
            if not queue:
                self._queue = None

    # -- from the engine -------------------------------------------------------------

    def on_engine_message(self, engine: EngineSession, data: str | bytes) -> None:
        """One Engine.IO message arrived (transport greenlet; the engine calls this
        directly). Returns at once, unless the queue is full: then it returns once the
        worker has made room (back-pressure). Ignored once the session has ended."""
        if self.closed:
            return
        try:
            packet = self._decoder.feed(data)
        except RemoteProtocolError as exc:
            logger.info("connection %s: parse error: %s", self.engine.sid, exc)
            self.engine.close(DisconnectReason.PARSE_ERROR)
            return
        if packet is not None:
            if (
                packet.type is PacketType.EVENT
                and not self._working
                and self._queue is None
                and not self.server.async_handlers
                and getcurrent() is self.engine.inline_reader
                and (socket := self.sockets.get(packet.namespace)) is not None
            ):  # The commonest: what _on_event and run_soon do then, without their calls.
                self._run_inline(socket.handle_event, (packet,))
            else:
                _RECEIVERS[packet.type](self, packet)
            queue = self._queue
            if (
                queue is not None and len(queue) >= self._high_water
            ) or self.handlers_running >= self._handler_high:
                self._wait_for_room()

    # -- back-pressure ---------------------------------------------------------------

    def _has_room(self) -> bool:
        if self.closed or not self.engine.connected:
            return True
        queue = self._queue
        return (
            queue is None or len(queue) <= self._low_water
        ) and self.handlers_running <= self._handler_low

    def _wake_if_room(self) -> None:
        if self._room is not None and self._has_room():
            self._room.set()

    def _wait_for_room(self) -> None:
        """Hold the transport's greenlet until the worker has drained the queue to the
        low-water mark, or the connection closed."""
        if self._has_room():
            return
        room = self._room
        if room is None:
            room = self._room = Event()
        self.pauses += 1
        logger.log(
            logging.DEBUG if self.pauses > 1 else logging.INFO,
            "connection %s: %d events queued, %d handlers running; reading paused until "
            "the handlers catch up (pause %d)",
            self.engine.sid,
            self.queued,
            self.handlers_running,
            self.pauses,
        )
        self._paused += 1
        self.engine.reading_held = True
        # A relay reading for a lent reader may be stopped while it waits here.
        lease = self._lease
        relay_lease = lease if lease is not None and lease.relay is getcurrent() else None
        if relay_lease is not None:
            relay_lease.interruptible = True
        if self.server.observer is not None:
            self.server.observer.reading_paused(self)
        try:
            while not self._has_room():
                room.clear()
                room.wait(RECHECK_INTERVAL)
        finally:
            if relay_lease is not None:
                relay_lease.interruptible = False
            self._paused -= 1
            if not self._paused:
                self.engine.reading_held = False

    @contextmanager
    def awaiting_ack(self) -> Iterator[None]:
        """Mark the ``with`` block as waiting for an acknowledgement from this client.

        Meanwhile a paused reader reads on, up to twice ``max_queued_events``, so that
        the acknowledgement can be read (see the module's theory of operation).
        """
        self._acks_awaited += 1
        self._set_marks()
        try:
            yield
        finally:
            self._acks_awaited -= 1
            self._set_marks()

    def _set_marks(self) -> None:
        raise_by = 1 if self._acks_awaited else 0
        self._high_water = self._bound * (1 + raise_by)
        self._low_water = self._bound // 2 + self._bound * raise_by
        self._handler_high = self._handler_bound * (1 + raise_by)
        self._handler_low = self._handler_bound // 2 + self._handler_bound * raise_by
        if self._paused:
            self._wake_if_room()

    def _on_connect(self, packet: Packet) -> None:
        self.run_soon(self.server.connect_namespace, self, packet.namespace, packet.data)

    def _on_disconnect(self, packet: Packet) -> None:
        socket = self.sockets.get(packet.namespace)
        if socket is not None:
            self.run_soon(socket.on_close, DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)

    def _on_event(self, packet: Packet) -> None:
        socket = self.sockets.get(packet.namespace)
        if socket is None:
            logger.debug(
                "connection %s: event for unconnected namespace %s ignored",
                self.engine.sid,
                packet.namespace,
            )
            return
        # Queued (or spawned) here, so an event goes one way: engine → connection →
        # socket's handler → connection.write; the socket never calls back to be queued.
        if self.server.async_handlers:
            self.spawn_handler(socket.handle_event, packet)
        else:
            self.run_soon(socket.handle_event, packet)

    def _on_ack(self, packet: Packet) -> None:
        socket = self.sockets.get(packet.namespace)
        if socket is not None:
            socket.receive_ack(packet)

    def _on_unexpected(self, packet: Packet) -> None:
        logger.info(
            "connection %s: a client may not send %s; closing", self.engine.sid, packet.type.name
        )
        self.engine.close(DisconnectReason.PARSE_ERROR)

    def on_engine_close(self, engine: EngineSession, reason: DisconnectReason) -> None:
        """The Engine.IO session ended: every socket disconnects, after queued work."""
        self.server.connection_closed(self)
        self.closed = True
        self._connect_timer.close()
        # Now, not in the queue: a handler blocked in call() (perhaps without a timeout)
        # would otherwise keep the queue, and this connection's close, waiting forever.
        for socket in list(self.sockets.values()):
            socket.fail_pending_acks(reason)
        self.run_soon(self._close_sockets, reason)
        if self._room is not None:
            self._room.set()

    def _close_sockets(self, reason: DisconnectReason) -> None:
        for socket in list(self.sockets.values()):
            socket.on_close(reason)

    # -- namespaces ------------------------------------------------------------------

    def namespace_connected(self, socket: NamespaceSocket) -> None:
        """A socket's CONNECT was acknowledged."""
        self.sockets[socket.namespace.name] = socket
        self._connect_timer.close()

    def namespace_disconnected(self, socket: NamespaceSocket) -> None:
        """A socket left; its namespace slot is free again."""
        if self.sockets.get(socket.namespace.name) is socket:
            del self.sockets[socket.namespace.name]

    def _on_connect_timeout(self) -> None:  # hub callback
        if not self.sockets and not self.closed:
            logger.info(
                "connection %s: no namespace joined within %.3g s; closing",
                self.engine.sid,
                self.server.connect_timeout,
            )
            gevent.spawn(self.engine.close, DisconnectReason.FORCED_SERVER_CLOSE)

    # -- to the engine ---------------------------------------------------------------

    def write(
        self, packets: Sequence[OutgoingPacket], volatile: bool = False, broadcast: bool = False
    ) -> None:
        """Send encoded packets (dropped when ``volatile`` and the client is busy). With
        ``slow_consumer_policy="drop"``, a full buffer drops volatile packets first, then
        the oldest broadcast ones; the rest (acks, control packets, emits to this socket)
        is never dropped."""
        if volatile:
            if self.engine.writable:
                self.engine.send_packets(packets, Tier.VOLATILE)
        else:
            self.engine.send_packets(packets, Tier.BROADCAST if broadcast else Tier.KEEP)

    def write_packet(self, packet: Packet) -> None:
        """Encode and send one Socket.IO packet."""
        self.engine.send_packets(encode_for_engine(packet, serializer=self.server.serializer))

    def disconnect_all(self) -> None:
        """Disconnect every namespace (each client socket is told, none reconnects), then
        close the connection (Node's ``client._disconnect``)."""
        for socket in list(self.sockets.values()):
            socket.disconnect()
        self.close(DisconnectReason.FORCED_CLOSE)

    def close(self, reason: DisconnectReason = DisconnectReason.FORCED_CLOSE) -> None:
        """Close the whole Engine.IO session."""
        self.engine.close(reason)


_RECEIVERS: dict[PacketType, Callable[[Connection, Packet], None]] = {
    PacketType.CONNECT: Connection._on_connect,
    PacketType.DISCONNECT: Connection._on_disconnect,
    PacketType.EVENT: Connection._on_event,
    PacketType.BINARY_EVENT: Connection._on_event,
    PacketType.ACK: Connection._on_ack,
    PacketType.BINARY_ACK: Connection._on_ack,
    PacketType.CONNECT_ERROR: Connection._on_unexpected,
}
