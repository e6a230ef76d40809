"""One namespace of the client: its connection state, acknowledgements and pending emits.

Theory of operation (as the JavaScript client's ``Socket``). A socket is *active* from
``connect()`` until it is closed for good (the application disconnected, the server
disconnected or refused the namespace, reconnection gave up); it is *connected* while it
has a sid. An active socket sends CONNECT on each new Engine.IO session. Invariants:

* Emits made while active but not connected wait in the send buffer (bounded by
  ``max_buffered_emits``) and go out, in order, right after the next CONNECT ack;
  volatile emits are dropped instead.
* Every ack id is settled exactly once: by its ack, by its timeout, or, for an emit
  already sent, by the loss of the connection (a buffered one survives it).
* Emits with ``retries`` go through a queue, one in flight at a time: each try is sent
  with a new ack id; a timeout or a lost connection counts as a failed try, and the
  emit fails once ``retries`` re-sends failed too.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gevent.event

from geventsio.client.ack import Ack, AckWaiter, Outcome
from geventsio.client.dispatch import RESERVED_EVENTS, Dispatcher
from geventsio.client.errors import (
    ClientDisconnectReason,
    ConnectFailed,
    EmitBufferFull,
    NamespaceRefused,
)
from geventsio.client.options import ClientOptions
from geventsio.exceptions import AckTimeout, LocalProtocolError, NotConnected
from geventsio.protocol.socketio import Packet, PacketType

logger = logging.getLogger(__name__)

Encoded = list[str | bytes]


class SocketOwner(Protocol):
    """The manager, as a socket sees it."""

    #: Increases with every Engine.IO session.
    generation: int

    def write(self, pieces: Encoded) -> None:
        """Send an encoded packet on the current session."""

    def socket_closed(self, socket: Socket) -> None:
        """The socket is closed for good (by the server)."""


@dataclass(slots=True)
class _Buffered:
    pieces: Encoded
    ack_id: int | None


@dataclass(slots=True)
class _RetryEntry:
    data: list[Any]
    ack: Ack
    timeout: float
    retries: int
    tries: int = 0
    pending: bool = False


@dataclass(slots=True)
class _Emit:
    """What ``emit()`` was asked, checked."""

    data: list[Any]
    callback: Callable[..., Any] | None
    timeout: float | None
    volatile: bool
    retries: int
    wants_ack: bool = field(init=False)

    def __post_init__(self) -> None:
        self.wants_ack = self.callback is not None or self.timeout is not None or self.retries > 0


class Socket:
    """The client's side of one namespace.

    :param namespace: the namespace.
    :param owner: the manager that sends its packets.
    :param dispatcher: runs the application's handlers.
    :param options: the client options.
    """

    def __init__(
        self, namespace: str, owner: SocketOwner, dispatcher: Dispatcher, options: ClientOptions
    ) -> None:
        self.namespace = namespace
        self._owner = owner
        self._dispatcher = dispatcher
        self._options = options
        self._encode = options.codec.encode
        self.active = True
        self.sid: str | None = None
        #: Settled when the namespace connects (``None``) or fails to (an exception).
        self.settled: gevent.event.AsyncResult[None] = gevent.event.AsyncResult()
        self._ids = itertools.count()
        self._acks: dict[int, AckWaiter] = {}
        self._buffer: deque[_Buffered] = deque()
        self._received: list[Packet] = []  # events that came before the CONNECT ack
        self._retry_queue: deque[_RetryEntry] = deque()
        #: Whether the last CONNECT resumed the previous session (connection state
        #: recovery: same sid, rooms and data, missed events delivered).
        self.recovered = False
        self._pid: str | None = None  # set by the server when recovery is on
        self._last_offset: str | None = None

    @property
    def connected(self) -> bool:
        """Whether the namespace is connected now."""
        return self.sid is not None

    # -- emitting --------------------------------------------------------------------

    def emit(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., Any] | None,
        timeout: float | None,
        volatile: bool,
        retries: int,
    ) -> Ack | None:
        """See :meth:`geventsio.client.Client.emit`."""
        if not isinstance(event, str) or event in RESERVED_EVENTS:
            raise LocalProtocolError(f"{event!r} is a reserved event name (or not a string)")
        if retries < 0:
            raise LocalProtocolError("retries must not be negative")
        if timeout is not None and timeout <= 0:
            raise LocalProtocolError("timeout must be positive")
        if not self.active:
            raise NotConnected(f"namespace {self.namespace} is closed")
        request = _Emit([event, *args], callback, timeout, volatile, retries)
        if request.wants_ack and request.timeout is None:
            request.timeout = self._options.ack_timeout
        if retries and not volatile:
            return self._queue_retry(request)
        if not request.wants_ack:
            pieces = self._encode(Packet(PacketType.EVENT, self.namespace, request.data))
            self._send_or_buffer(pieces, None, volatile)
            return None
        ack = Ack(callback, self._dispatcher.call_soon)
        self._emit_with_ack(request.data, request.timeout, volatile, ack.settle)
        return ack

    def _emit_with_ack(
        self,
        data: list[Any],
        timeout: float | None,
        volatile: bool,
        on_outcome: Callable[[Outcome], None],
    ) -> None:
        ack_id = next(self._ids)
        pieces = self._encode(Packet(PacketType.EVENT, self.namespace, data, ack_id))
        if volatile and not self.connected:
            on_outcome(NotConnected("volatile emit dropped while disconnected"))
            return
        self._check_room()
        waiter = AckWaiter(on_outcome, timeout, lambda: self._on_ack_timeout(ack_id, timeout))
        self._acks[ack_id] = waiter
        self._send_or_buffer(pieces, ack_id, volatile)

    def _check_room(self) -> None:
        if not self.connected and len(self._buffer) >= self._options.max_buffered_emits:
            raise EmitBufferFull(
                f"{len(self._buffer)} emits already wait for namespace {self.namespace} to "
                f"reconnect (max_buffered_emits={self._options.max_buffered_emits})"
            )

    def _send_or_buffer(self, pieces: Encoded, ack_id: int | None, volatile: bool) -> None:
        if self.connected:
            self._write(pieces, ack_id)
        elif volatile:
            logger.debug("volatile emit dropped: namespace %s not connected", self.namespace)
        else:
            self._check_room()
            self._buffer.append(_Buffered(pieces, ack_id))

    def _write(self, pieces: Encoded, ack_id: int | None) -> None:
        if ack_id is not None and ack_id in self._acks:
            self._acks[ack_id].sent = True
        self._owner.write(pieces)

    def _on_ack_timeout(self, ack_id: int, timeout: float | None) -> None:
        waiter = self._acks.pop(ack_id, None)
        if waiter is None:
            return
        for item in self._buffer:
            if item.ack_id == ack_id:
                self._buffer.remove(item)
                break
        waiter.settle(AckTimeout(f"no acknowledgement within {timeout:g}s"))

    # -- at-least-once emits -----------------------------------------------------------

    def _queue_retry(self, request: _Emit) -> Ack:
        if request.timeout is None:
            raise LocalProtocolError("retries need a timeout (pass timeout= or ack_timeout=)")
        self._encode(Packet(PacketType.EVENT, self.namespace, request.data, 0))  # fail now if bad
        if len(self._retry_queue) >= self._options.max_buffered_emits:
            raise EmitBufferFull(f"{len(self._retry_queue)} emits with retries already queued")
        ack = Ack(request.callback, self._dispatcher.call_soon)
        entry = _RetryEntry(request.data, ack, request.timeout, request.retries)
        self._retry_queue.append(entry)
        self._drain_retries()
        return ack

    def _drain_retries(self, force: bool = False) -> None:
        if not self.connected or not self._retry_queue:
            return
        entry = self._retry_queue[0]
        if entry.pending and not force:
            return
        entry.pending = True
        entry.tries += 1
        attempt = entry.tries

        def on_outcome(outcome: Outcome) -> None:
            self._on_retry_outcome(entry, attempt, outcome)

        self._emit_with_ack(entry.data, entry.timeout, False, on_outcome)

    def _on_retry_outcome(self, entry: _RetryEntry, attempt: int, outcome: Outcome) -> None:
        if not self._retry_queue or self._retry_queue[0] is not entry or entry.tries != attempt:
            return  # a stale try
        failed = isinstance(outcome, BaseException)
        if not failed or entry.tries > entry.retries:
            self._retry_queue.popleft()
            if failed and isinstance(outcome, AckTimeout):
                outcome = AckTimeout(f"no acknowledgement after {entry.tries} tries")
            entry.ack.settle(outcome)
        entry.pending = False
        self._drain_retries()

    # -- the connection's life -------------------------------------------------------

    def send_connect(self, auth: Any) -> None:
        """Ask for the namespace on a new session (sends CONNECT with ``auth``).

        :raises LocalProtocolError: ``auth`` is not a dict (nor ``None``).
        """
        self.settled = gevent.event.AsyncResult()
        if self._pid is not None:  # ask to recover, as socket.io-client does
            resume = {"pid": self._pid}
            if self._last_offset is not None:
                resume["offset"] = self._last_offset
            auth = {**resume, **(auth or {})}
        self._owner.write(self._encode(Packet(PacketType.CONNECT, self.namespace, auth)))

    def on_packet(self, packet: Packet) -> None:
        """Handle a packet of this namespace (in the reader greenlet)."""
        self._PACKET_HANDLERS[packet.type](self, packet)

    def _on_connect(self, packet: Packet) -> None:
        sid = packet.data.get("sid") if isinstance(packet.data, dict) else None
        if not isinstance(sid, str):
            self._on_refused(NamespaceRefused(self.namespace, "CONNECT without a sid"))
            return
        self.sid = sid
        pid = packet.data.get("pid")
        self.recovered = isinstance(pid, str) and pid == self._pid
        self._pid = pid if isinstance(pid, str) else None
        self._dispatcher.fire(self.namespace, "connect")
        received, self._received = self._received, []
        for event in received:
            self._on_event(event)
        while self._buffer and self.connected:
            item = self._buffer.popleft()
            self._write(item.pieces, item.ack_id)
        self._drain_retries(force=True)
        self.settled.set(None)

    def _on_connect_error(self, packet: Packet) -> None:
        data = packet.data
        if isinstance(data, dict):
            refusal = NamespaceRefused(
                self.namespace, str(data.get("message", "")), data.get("data")
            )
        else:
            refusal = NamespaceRefused(self.namespace, str(data))
        self._on_refused(refusal)

    def _on_refused(self, refusal: NamespaceRefused) -> None:
        logger.info("%s", refusal)
        self._dispatcher.fire(self.namespace, "connect_error", (refusal,))
        if not self.settled.ready():
            self.settled.set_exception(refusal)
        self.close(NotConnected(str(refusal)))
        self._owner.socket_closed(self)

    def _on_event(self, packet: Packet) -> None:
        if not self.connected:
            self._received.append(packet)
            return
        event, *args = packet.data
        if event in RESERVED_EVENTS:
            logger.info("ignoring event %r from the server: a reserved name", event)
            return
        ack = None if packet.id is None else self._ack_sender(packet.id)
        self._dispatcher.fire(self.namespace, event, tuple(args), ack)
        if self._pid is not None and args and isinstance(args[-1], str):
            # Node's rule: with recovery on, a last string argument is the offset.
            self._last_offset = args[-1]

    def _ack_sender(self, ack_id: int) -> Callable[[Any], None]:
        generation = self._owner.generation

        def send_ack(result: Any) -> None:
            if self._owner.generation != generation or not self.connected:
                logger.debug("ack %d not sent: the connection it answers is gone", ack_id)
                return
            args = [] if result is None else list(result) if isinstance(result, tuple) else [result]
            self._owner.write(self._encode(Packet(PacketType.ACK, self.namespace, args, ack_id)))

        return send_ack

    def _on_ack(self, packet: Packet) -> None:
        assert packet.id is not None
        waiter = self._acks.pop(packet.id, None)
        if waiter is None:
            logger.debug("ack %d came late or was never asked for", packet.id)
            return
        waiter.settle(packet.data)

    def _on_disconnect(self, packet: Packet) -> None:
        was_connected = self.connected
        self.sid = None
        if was_connected:
            self._dispatcher.fire(
                self.namespace, "disconnect", (ClientDisconnectReason.IO_SERVER_DISCONNECT,)
            )
        self.close(NotConnected(f"namespace {self.namespace} disconnected by the server"))
        self._owner.socket_closed(self)

    _PACKET_HANDLERS: dict[PacketType, Callable[[Socket, Packet], None]] = {
        PacketType.CONNECT: _on_connect,
        PacketType.CONNECT_ERROR: _on_connect_error,
        PacketType.EVENT: _on_event,
        PacketType.ACK: _on_ack,
        PacketType.DISCONNECT: _on_disconnect,
    }

    def on_connection_lost(self, reason: ClientDisconnectReason, description: str) -> None:
        """The Engine.IO session ended; the socket stays active (reconnection may follow)."""
        if self.connected:
            self.sid = None
            self._dispatcher.fire(self.namespace, "disconnect", (reason,))
        self._received.clear()
        error = NotConnected(f"connection lost ({reason}) before the acknowledgement came")
        for ack_id, waiter in list(self._acks.items()):
            if waiter.sent:
                del self._acks[ack_id]
                waiter.settle(error)
        if not self.settled.ready():
            self.settled.set_exception(ConnectFailed(f"connection lost: {reason}: {description}"))

    def disconnect(self) -> None:
        """The application disconnects: tell the server, then close for good."""
        if self.connected:
            self._owner.write(self._encode(Packet(PacketType.DISCONNECT, self.namespace)))
            self.sid = None
            self._dispatcher.fire(
                self.namespace, "disconnect", (ClientDisconnectReason.IO_CLIENT_DISCONNECT,)
            )
        self.close(NotConnected("the client disconnected"))

    def close(self, error: BaseException) -> None:
        """Close for good: every pending emit and ack fails with ``error``."""
        self.active = False
        self.sid = None
        self._buffer.clear()
        self._received.clear()
        acks, self._acks = self._acks, {}
        for waiter in acks.values():
            waiter.settle(error)
        retries, self._retry_queue = self._retry_queue, deque()
        for entry in retries:
            entry.ack.settle(error)
        if not self.settled.ready():
            self.settled.set_exception(ConnectFailed(str(error)))
