"""A Socket: one client in one namespace.

Events from the client run in the connection's worker, in order (or each in its own
greenlet with ``async_handlers=True``); acknowledgements are settled as they arrive.
Anything the socket sends before its CONNECT was acknowledged (from a connect handler)
is held and sent right after the acknowledgement, so the client never sees an event
for a namespace it has not joined yet.

One direction. The connection (:class:`~geventsio.server.connection.Connection`) owns
its sockets: the server registers a socket with it just before acknowledging its
CONNECT, and it queues what arrives for the socket's namespace (``handle_event``). A
socket knows its connection only as a :class:`SocketLink`, the few things it needs of
the session it travels on; this module does not import the connection's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from time import perf_counter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import gevent
from gevent.event import AsyncResult

from geventsio._types import DisconnectReason, Room
from geventsio.adapters.base import BroadcastFlags, BroadcastOptions, SessionState
from geventsio.adapters.recovery import RECOVERABLE_REASONS, new_private_id
from geventsio.exceptions import AckTimeout, GeventsioError, LocalProtocolError, NotConnected
from geventsio.protocol.events import CATCH_ALL, DISCONNECT, DISCONNECTING
from geventsio.protocol.outgoing import OutgoingPacket, encode_ack_for_engine, encode_for_engine
from geventsio.protocol.socketio import Packet, PacketType
from geventsio.server.acks import PendingAcks
from geventsio.server.broadcast import BroadcastOperator
from geventsio.server.dialect import Dialect
from geventsio.server.emitter import SocketEmitter
from geventsio.server.handlers import BoundHandler, Handler, bind
from geventsio.server.handshake import Handshake

if TYPE_CHECKING:
    from geventsio.engine.interface import EngineSession
    from geventsio.server.namespace import Namespace

logger = logging.getLogger(__name__)

PacketMiddleware = Callable[["Socket", str, list[Any]], None]


class SocketLink(Protocol):
    """What a socket needs of the connection it travels on
    (:class:`~geventsio.server.connection.Connection` is one)."""

    @property
    def engine(self) -> EngineSession:
        """The Engine.IO session under the connection."""

    @property
    def dialect(self) -> Dialect:
        """The Socket.IO revision the connection speaks."""

    def run_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` in the connection's worker, after what is queued."""

    def awaiting_ack(self) -> AbstractContextManager[None]:
        """Mark a block as waiting for an acknowledgement from the client."""

    def write(
        self, packets: Sequence[OutgoingPacket], volatile: bool = False, broadcast: bool = False
    ) -> None:
        """Send encoded packets to the client."""

    def namespace_disconnected(self, socket: Socket) -> None:
        """The socket left its namespace."""

    def disconnect_all(self) -> None:
        """Disconnect every namespace of the connection, then close it."""


#: The rooms of a socket that resumed nothing (one object for all).
_NO_ROOMS: frozenset[Room] = frozenset()


class Socket:
    """One client connected to one namespace.

    :ivar id: the socket id (also the name of the room the socket is always in).
    :ivar namespace: the namespace.
    :ivar handshake: the details of the connecting request and the auth payload.
    :ivar data: a dict for the application's own per-socket data.
    """

    # What most sockets never have, shared until a socket has its own (each one a new
    # list or mapping on change, never changed in place: listeners can be iterated while
    # one of them adds or removes another, without a copy per event).
    _held: Sequence[OutgoingPacket] = ()
    _handlers: Mapping[str, BoundHandler] = MappingProxyType({})
    _middlewares: Sequence[PacketMiddleware] = ()
    _any_listeners: Sequence[Callable[..., Any]] = ()
    _outgoing_listeners: Sequence[Callable[..., Any]] = ()

    def __init__(
        self,
        namespace: Namespace,
        connection: SocketLink,
        auth: Any,
        restored: SessionState | None = None,
    ) -> None:
        self.namespace = namespace
        self.connection = connection
        self.server = namespace.server
        self.handshake = Handshake.from_environ(connection.engine.environ, auth)
        #: Whether this socket resumed a session its client had lost (connection state
        #: recovery): same id, rooms and ``data``, and the missed broadcasts were sent.
        self.recovered = restored is not None
        self.data: dict[str, Any]
        if restored is not None:
            self.id = restored.sid
            self._pid: str | None = restored.pid
            self.data = restored.data
            self.restored_rooms: frozenset[Room] = restored.rooms
        else:
            dialect = connection.dialect
            self.id = dialect.socket_id(namespace.name, connection.engine.sid)
            recovery = self.server.recovery is not None and dialect.recovers
            self._pid = new_private_id() if recovery else None
            self.data = {}
            self.restored_rooms = _NO_ROOMS
        self.connected = False
        self._closing = False
        self._acknowledged = False
        self._acks = PendingAcks()

    def __repr__(self) -> str:
        return f"<Socket {self.id} {self.namespace.name} connected={self.connected}>"

    # -- identity --------------------------------------------------------------------

    @property
    def engine_sid(self) -> str:
        """The id of the Engine.IO session this socket travels on."""
        return self.connection.engine.sid

    @property
    def conn(self) -> EngineSession:
        """The Engine.IO session under this socket (Node's ``socket.conn``): listen to
        its ``upgrade``, ``packet``, ``packet_create``, ``drain``, ``heartbeat`` and
        ``close`` events with ``socket.conn.on(event, listener)``."""
        return self.connection.engine

    @property
    def transport(self) -> str:
        """The name of the transport in use ("polling" or "websocket")."""
        return self.connection.engine.transport.value

    @property
    def rooms(self) -> frozenset[Room]:
        """The rooms this socket is in (its own id among them)."""
        return self.namespace.adapter.socket_rooms(self.id)

    # -- rooms -----------------------------------------------------------------------

    def join(self, rooms: Room | str | Iterable[Room | str]) -> None:
        """Join one room or several."""
        names = [rooms] if isinstance(rooms, str) else list(rooms)
        observer = self.server.observer
        before = self.rooms if observer is not None and self._acknowledged else None
        self.namespace.adapter.add_all(self.id, [Room(r) for r in names])
        if before is not None and observer is not None:
            for room in dict.fromkeys(names):
                if room not in before:
                    observer.room_joined(self, Room(room))

    def leave(self, room: Room | str) -> None:
        """Leave a room."""
        observer = self.server.observer
        was_in = observer is not None and self._acknowledged and room in self.rooms
        self.namespace.adapter.delete(self.id, Room(room))
        if was_in and observer is not None:
            observer.room_left(self, Room(room))

    # -- broadcasting from this socket ------------------------------------------------

    def to(self, *rooms: Room | str | Iterable[Room | str]) -> BroadcastOperator:
        """Broadcast to rooms, to every socket but this one."""
        return self.broadcast.to(*rooms)

    in_ = to

    def except_(self, *rooms: Room | str | Iterable[Room | str]) -> BroadcastOperator:
        """Broadcast to every socket but this one and those in ``rooms``."""
        return self.broadcast.except_(*rooms)

    @property
    def broadcast(self) -> BroadcastOperator:
        """Broadcast to every socket of the namespace but this one."""
        return BroadcastOperator(self.namespace).except_(self.id)

    # -- sending ---------------------------------------------------------------------

    def emit(
        self,
        event: str,
        *args: Any,
        callback: Callable[..., Any] | None = None,
        timeout: float | None = None,
        volatile: bool = False,
        compress: bool = True,
    ) -> None:
        """Send an event to this client.

        :param callback: called with the client's acknowledgement arguments. When a
            ``timeout`` is given, it is called as ``callback(error, *args)``, ``error``
            being None or :class:`~geventsio.AckTimeout` (as in the Node reference).
        :param timeout: seconds to wait for the acknowledgement.
        :param volatile: drop the event if the client cannot take it right now.
        :param compress: False: sent as it is by transports that compress (Node's
            ``socket.compress(false)``).
        :raises LocalProtocolError: the arguments cannot be serialised.
        """
        ack_id = None
        if callback is not None:
            ack_id = self.namespace.next_ack_id()
            self._expect_user_ack(ack_id, callback, timeout)
        self._emit_packet(event, args, ack_id, volatile, compress)

    def call(self, event: str, *args: Any, timeout: float | None = 60.0) -> Any:
        """Send an event and wait for the client's acknowledgement.

        :returns: the single acknowledgement argument, a tuple for several, None for none.
        :raises AckTimeout: no acknowledgement within ``timeout`` seconds.
        :raises NotConnected: the socket disconnected before it answered.
        :raises LocalProtocolError: called before the connection was acknowledged.
        """
        if not self._acknowledged:
            raise LocalProtocolError(
                "call() cannot wait for an acknowledgement before the connection is "
                "acknowledged (in a connect handler or middleware): emit with a callback"
            )
        if not self.connected:
            raise NotConnected(f"socket {self.id} is not connected")
        result: AsyncResult[list[Any]] = AsyncResult()
        ack_id = self.namespace.next_ack_id()
        self._acks.expect(
            ack_id,
            result.set,
            timeout=timeout,
            on_failure=result.set_exception,
            timeout_error=lambda: AckTimeout(f"no ack for {event!r}"),
        )
        self._emit_packet(event, args, ack_id, volatile=False)
        with self.connection.awaiting_ack():  # a paused reader must reach the answer
            answer = result.get()
        if len(answer) == 1:
            return answer[0]
        return tuple(answer) if answer else None

    def send(
        self, *args: Any, callback: Callable[..., Any] | None = None, timeout: float | None = None
    ) -> None:
        """Emit a ``message`` event."""
        self.emit("message", *args, callback=callback, timeout=timeout)

    def _emit_packet(
        self,
        event: str,
        args: Sequence[Any],
        ack_id: int | None,
        volatile: bool,
        compress: bool = True,
    ) -> None:
        if not isinstance(event, str):
            raise LocalProtocolError(f"an event name must be a string, not {event!r}")
        packet = Packet(PacketType.EVENT, self.namespace.name, [event, *args], ack_id)
        adapter = self.namespace.adapter
        if self._pid is not None and ack_id is None and not volatile and adapter.keeps_sessions:
            # Through the adapter, as in Node, so that it is kept for recovery.
            own_room = frozenset({Room(self.id)})
            flags = BroadcastFlags(compress=compress)
            adapter.broadcast(packet, BroadcastOptions(rooms=own_room, flags=flags))
        else:
            self.write_packet(packet, volatile, compress)

    def write_packet(self, packet: Packet, volatile: bool = False, compress: bool = True) -> None:
        """Encode and send one packet to this client."""
        encoded = encode_for_engine(packet, compress, self.server.serializer)
        self.write_outgoing(encoded, volatile, packet, broadcast=False)

    def write_outgoing(
        self,
        packets: Sequence[OutgoingPacket],
        volatile: bool,
        source: Packet,
        broadcast: bool = True,
    ) -> None:
        """Send already-encoded packets (the adapter's way in: a broadcast, unless
        ``broadcast`` says otherwise); ``source`` is the packet they encode, for outgoing
        listeners."""
        if self._outgoing_listeners:
            self._notify_outgoing(source)
        if not self._acknowledged:
            if not volatile:
                held = self._held
                if type(held) is not list:
                    self._held = held = []
                held.extend(packets)
            return
        if self.connected:
            self.connection.write(packets, volatile, broadcast)

    def _notify_outgoing(self, source: Packet) -> None:
        if source.type is not PacketType.EVENT or not isinstance(source.data, list):
            return
        for listener in self._outgoing_listeners:
            self._call_user(listener, source.data[0], *source.data[1:])

    # -- acknowledgements --------------------------------------------------------------

    def _expect_user_ack(
        self, ack_id: int, callback: Callable[..., Any], timeout: float | None
    ) -> None:
        if timeout is None:

            def on_ack(args: list[Any]) -> None:
                self.connection.run_soon(self._call_user, callback, *args)

            self._acks.expect(ack_id, on_ack)
            return

        def on_timed_ack(args: list[Any]) -> None:
            self.connection.run_soon(self._call_user, callback, None, *args)

        def on_failure(error: GeventsioError) -> None:
            self.connection.run_soon(self._call_user, callback, error)

        self._acks.expect(
            ack_id,
            on_timed_ack,
            timeout=timeout,
            on_failure=on_failure,
            timeout_error=lambda: AckTimeout(f"no ack for ack id {ack_id}"),
        )

    def expect_ack(self, ack_id: int, on_ack: Callable[[list[Any]], None]) -> None:
        """Wait for acknowledgement ``ack_id`` (broadcasts with acks use this)."""
        self._acks.expect(ack_id, on_ack)

    def receive_ack(self, packet: Packet) -> None:
        """An ACK arrived (transport greenlet)."""
        assert packet.id is not None
        if not self._acks.resolve(packet.id, list(packet.data)):
            logger.debug("socket %s: ack %d is late or unknown", self.id, packet.id)

    # -- receiving events --------------------------------------------------------------

    def handle_event(self, packet: Packet) -> None:
        """Run an incoming EVENT through middleware, catch-all listeners and its handler,
        then acknowledge it. The connection calls this in its worker (or in a greenlet of
        its own with ``async_handlers``), in arrival order."""
        if not self.connected:
            return
        data = packet.data
        event, args = data[0], data[1:] if type(data) is list else list(data[1:])
        if self._middlewares or self._any_listeners or self.server.observer is not None:
            result = self._run_listeners_and_dispatch(event, args)
        else:
            # The common case: no middleware, catch-all listener nor observer. What
            # _dispatch and _call_user do for a socket's or namespace's own handler,
            # written out (they cost a quarter of an echo's calls); the rest goes there.
            handler = self._handlers.get(event)
            try:
                if handler is not None:
                    result = handler.function(*args)
                else:
                    handler = self.namespace._handlers.get(event)
                    if handler is not None:
                        result = handler.function(self, *args)
                    else:  # a parent namespace's handler, the catch-all, or none
                        result = self._dispatch(event, args)
            except (Exception, gevent.Timeout) as exc:
                result = self._handler_raised(exc)
        ack_id = packet.id
        if ack_id is None or not self.connected or result is NO_ACK:
            return
        # The acknowledgement (here, not in a method of its own: nearly every event is
        # answered). Its arguments from the handler's value: None → none, a tuple → several.
        args = [] if result is None else list(result) if isinstance(result, tuple) else [result]
        try:
            encoded = encode_ack_for_engine(
                self.namespace.name, ack_id, args, self.server.serializer
            )
            if self._acknowledged and self.connected:
                self.connection.write(encoded)  # acks are no EVENT: no outgoing listener
            else:
                source = Packet(PacketType.ACK, self.namespace.name, args, ack_id)
                self.write_outgoing(encoded, False, source, broadcast=False)
        except LocalProtocolError as exc:
            logger.exception("socket %s: the acknowledgement cannot be sent", self.id)
            self.namespace.report_error(self, exc)

    def _run_listeners_and_dispatch(self, event: str, args: list[Any]) -> Any:
        try:
            for middleware in self._middlewares:
                middleware(self, event, args)
        except Exception as exc:
            self._reject(event, exc)
            return NO_ACK
        if self._any_listeners:
            for listener in self._any_listeners:
                self._call_user(listener, event, *args)
        observer = self.server.observer
        if observer is None:
            return self._dispatch(event, args)
        started = perf_counter()
        result = self._dispatch(event, args)
        observer.event_handled(self, event, perf_counter() - started)
        return result

    def _dispatch(self, event: str, args: list[Any]) -> Any:
        own = self._handlers.get(event)
        if own is not None:
            return self._call_user(own.function, *args)
        handler = self.namespace.handler_for(event)
        if handler is not None:
            return self._call_user(handler.function, self, *args)
        catch_all = self.namespace.handler_for(CATCH_ALL)
        if catch_all is not None:
            return self._call_user(catch_all.function, self, event, *args)
        logger.debug("socket %s: no handler for %r", self.id, event)
        return NO_ACK  # nobody answers: no acknowledgement, as in the Node reference

    def _reject(self, event: str, exc: Exception) -> None:
        logger.info("socket %s: middleware rejected %r: %s", self.id, event, exc)
        payload: dict[str, Any] = {"message": str(exc) or type(exc).__name__}
        data = getattr(exc, "data", None)
        if data is not None:
            payload["data"] = data
        self.emit("error", payload)

    def _call_user(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call application code: the one place its exceptions are caught."""
        try:
            return function(*args)
        except (Exception, gevent.Timeout) as exc:
            return self._handler_raised(exc)

    def _handler_raised(self, exc: Exception | gevent.Timeout) -> _NoAck:
        """Log and report an exception of application code (in an ``except`` block)."""
        logger.exception("socket %s in %s: a handler raised", self.id, self.namespace.name)
        self.namespace.report_error(self, exc)
        return NO_ACK

    def call_lifecycle(self, handler: BoundHandler, *args: Any) -> Any:
        """Call a connect/disconnect hook with as many arguments as it takes."""
        return self._call_user(handler.call_with, self, *args)

    # -- per-socket registration -------------------------------------------------------

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Handle ``event`` for this socket only; the handler gets the arguments only.

        Usable as a decorator. A socket's own handler wins over the namespace's.
        """

        def register(function: Handler) -> Handler:
            self._handlers = {**self._handlers, event: bind(event, function)}
            return function

        return register(handler) if handler is not None else register

    def handles(self, event: str) -> bool:
        """Whether this socket has a handler of its own for ``event``."""
        return event in self._handlers

    def use(self, middleware: PacketMiddleware) -> PacketMiddleware:
        """Add a packet middleware: ``middleware(socket, event, args)`` runs before each
        incoming event; raising rejects the event, and the client gets an ``error`` event
        with ``{"message", "data"}`` (``data`` from the exception's ``data`` attribute)."""
        self._middlewares = [*self._middlewares, middleware]
        return middleware

    def on_any(self, listener: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``listener(event, *args)`` for every incoming event, before its handler."""
        self._any_listeners = [*self._any_listeners, listener]
        return listener

    def prepend_any(self, listener: Callable[..., Any]) -> Callable[..., Any]:
        """As :meth:`on_any`, called before the catch-all listeners added so far."""
        self._any_listeners = [listener, *self._any_listeners]
        return listener

    def off_any(self, listener: Callable[..., Any] | None = None) -> None:
        """Remove one catch-all listener (every one, when None)."""
        self._any_listeners = _without(self._any_listeners, listener)

    def listeners_any(self) -> list[Callable[..., Any]]:
        """The catch-all listeners of incoming events, in calling order (a copy)."""
        return list(self._any_listeners)

    def on_any_outgoing(self, listener: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``listener(event, *args)`` for every event sent to this client."""
        self._outgoing_listeners = [*self._outgoing_listeners, listener]
        return listener

    def prepend_any_outgoing(self, listener: Callable[..., Any]) -> Callable[..., Any]:
        """As :meth:`on_any_outgoing`, called before those added so far."""
        self._outgoing_listeners = [listener, *self._outgoing_listeners]
        return listener

    def off_any_outgoing(self, listener: Callable[..., Any] | None = None) -> None:
        """Remove one listener of outgoing events (every one, when None)."""
        self._outgoing_listeners = _without(self._outgoing_listeners, listener)

    def listeners_any_outgoing(self) -> list[Callable[..., Any]]:
        """The listeners of outgoing events, in calling order (a copy)."""
        return list(self._outgoing_listeners)

    # -- chained emit options (Node's socket.timeout(ms).emit(...)) ------------------

    def timeout(self, seconds: float) -> SocketEmitter:
        """Emit with an acknowledgement expected within ``seconds``:
        ``socket.timeout(5).emit("ask", callback=lambda error, *answer: ...)``."""
        return SocketEmitter(self).timeout(seconds)

    @property
    def volatile(self) -> SocketEmitter:
        """Emit without queueing: dropped if the client cannot take it right now."""
        return SocketEmitter(self).volatile

    def compress(self, compress: bool) -> SocketEmitter:
        """Emit with this compression flag: False sends the event as it is where the
        transport compresses (a long-polling answer made only of such packets is not
        compressed; see ``http_compression``)."""
        return SocketEmitter(self).compress(compress)

    # -- connect and disconnect --------------------------------------------------------

    def acknowledge_connect(self) -> None:
        """Send the CONNECT acknowledgement, then what was held back (the connection has
        registered the socket just before: see
        :meth:`~geventsio.server.connection.Connection.namespace_connected`)."""
        self.connected = True
        payload = self.connection.dialect.connect_payload(self.id, self._pid)
        self.connection.write(
            encode_for_engine(
                Packet(PacketType.CONNECT, self.namespace.name, payload),
                serializer=self.server.serializer,
            )
        )
        self._acknowledged = True
        held, self._held = self._held, ()
        if held:
            self.connection.write(held)
        observer = self.server.observer
        if observer is not None:
            for room in self.rooms:
                observer.room_joined(self, room)
            observer.socket_connected(self)

    def disconnect(self, close: bool = False) -> None:
        """Disconnect from this namespace (the client will not reconnect on its own).

        :param close: disconnect every namespace of the underlying connection the same
            way, then close the connection.
        """
        if not self.connected:
            return
        if not self._acknowledged:
            # Still in its connect handler or middleware: this refuses the connection.
            self.connected = False
            return
        if close:
            self.connection.disconnect_all()
            return
        self.write_packet(Packet(PacketType.DISCONNECT, self.namespace.name))
        self.on_close(DisconnectReason.SERVER_NAMESPACE_DISCONNECT)

    def on_close(self, reason: DisconnectReason) -> None:
        """The socket is leaving: 'disconnecting' (rooms still readable), then
        'disconnect'. Runs once."""
        if not self.connected or self._closing:
            return
        self._closing = True
        self.namespace.run_hook(DISCONNECTING, self, reason)
        if self._pid is not None and reason in RECOVERABLE_REASONS:
            state = SessionState(self.id, self._pid, self.rooms, self.data)
            self.namespace.adapter.persist_session(state)
        observer = self.server.observer if self._acknowledged else None
        rooms = self.rooms if observer is not None else ()
        self.connected = False
        self.namespace.remove(self)
        self.connection.namespace_disconnected(self)
        self.fail_pending_acks(reason)
        if observer is not None:
            for room in rooms:
                observer.room_left(self, room)
        self.namespace.run_hook(DISCONNECT, self, reason)
        self.namespace.discard_if_empty()
        if observer is not None:
            observer.socket_disconnected(self, reason)

    def fail_pending_acks(self, reason: DisconnectReason) -> None:
        """No acknowledgement can arrive any more: fail every wait for one now (a
        ``call()`` raises :class:`~geventsio.NotConnected`, a callback with a timeout
        gets the error). Never blocks."""
        self._acks.fail_all(lambda: NotConnected(f"socket {self.id} disconnected ({reason.value})"))


class _NoAck:
    """The type of :data:`NO_ACK`."""

    def __repr__(self) -> str:
        return "geventsio.NO_ACK"


#: Return this from an event handler to send no acknowledgement even when the client
#: asked for one (a handler that raises, and an event with no handler, send none either).
NO_ACK = _NoAck()


def _without(
    listeners: Sequence[Callable[..., Any]], listener: Callable[..., Any] | None
) -> Sequence[Callable[..., Any]]:
    """``listeners`` less the first ``listener`` (all of them, when None)."""
    if listener is None:
        return ()
    if listener not in listeners:
        return listeners
    kept = list(listeners)
    kept.remove(listener)
    return kept
