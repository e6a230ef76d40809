"""One Engine.IO session (an ``EngineSocket``), whatever its transport: the I/O around
:class:`~geventsio.protocol.session.ServerSession`.

Theory of operation. The rules of the session (heartbeat decisions, which packet means
what, the upgrade exchange, whether a close lingers) live in the sans-IO
:class:`~geventsio.protocol.session.ServerSession`; this class feeds it packets and timer
ticks and carries out its steps with gevent: a hub timer, the polling buffer, the
WebSocket. A session starts on long-polling (a handshake GET) or directly on WebSocket.
Its invariants:

* Outgoing packets go to exactly one place: the polling buffer until the session has a
  WebSocket, the WebSocket after. An upgrade moves what the buffer still holds onto the
  WebSocket before anything else is written there, so order is kept.
* Incoming MESSAGE packets are handed to the handler in arrival order, in the
  transport's own greenlet (the WebSocket reader, the POST request). The handler does
  not block there: the layer above queues work for its own greenlets, so that a slow
  application handler never stops the heartbeat, and an acknowledgement that a blocked
  handler waits for can still be read. The one exception is back-pressure: when the
  layer above has too much queued, it holds the transport's greenlet until it has room,
  so that the client is read no further, and sets ``reading_held`` meanwhile (the
  session then sends an unanswered ping again rather than closing: see its rules).
* The heartbeat is a hub timer, not a greenlet; an idle session costs its socket, its
  buffer and, on WebSocket, the reader greenlet.
* ``close()`` runs once, and tells the handler once, after every message delivered
  before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import gevent
from gevent import Timeout
from greenlet import getcurrent

from geventsio._types import DisconnectReason, EngineSid
from geventsio.engine.dropping import Tier
from geventsio.engine.events import EventEmitter
from geventsio.engine.lending import ReadingLease
from geventsio.engine.polling import V4_PAYLOAD, PayloadCodec, PollingBuffer
from geventsio.exceptions import RemoteProtocolError
from geventsio.options import EngineOptions, SlowConsumerPolicy, Transport
from geventsio.protocol import engineio
from geventsio.protocol.engineio import Packet, PacketType
from geventsio.protocol.outgoing import OutgoingPacket
from geventsio.protocol.session import (
    Closed,
    Message,
    ServerSession,
    SessionState,
    UpgradeFailed,
)

if TYPE_CHECKING:
    from geventsio.engine.observer import EngineObserver
    from geventsio.engine.websocket import WebSocketConnection

logger = logging.getLogger(__name__)

__all__ = ["EngineHandler", "EngineSocket", "SessionHandler", "SessionRegistry", "SessionState"]


class SessionHandler(Protocol):
    """What hears one session's messages and its end."""

    def on_engine_message(self, socket: EngineSocket, data: str | bytes) -> None:
        """A MESSAGE arrived (called in the transport's greenlet, in order; must not block,
        except to push back, with ``socket.reading_held`` set)."""

    def on_engine_close(self, socket: EngineSocket, reason: DisconnectReason) -> None:
        """The session ended (called once, last; must not block)."""


class EngineHandler(SessionHandler, Protocol):
    """What the layer above the engine (Socket.IO, or a plain echo) implements."""

    def on_engine_connect(self, socket: EngineSocket) -> SessionHandler | None:
        """A session opened (called in the handshake request's greenlet, before any of its
        messages). Returns the handler of this session's messages and close (an object
        per session, such as the Socket.IO server's Connection, reaches its state without
        a lookup per message), or None to receive them here."""


class SessionRegistry(Protocol):
    """The engine server's side of a session's life."""

    #: Told of the session's packets, heartbeat and close (None: nobody watches).
    observer: EngineObserver | None

    def session_closed(self, socket: EngineSocket) -> None:
        """Forget the session."""


class EngineSocket(EventEmitter):
    """One Engine.IO session.

    Its events, as the Node reference's (``session.on(event, listener)``; a Socket.IO
    socket's ``socket.conn`` is its session): ``packet(packet)`` for each packet from the
    client, ``packet_create(packet)`` for each packet sent, ``upgrade(transport)``,
    ``drain()`` when what was sent has left (a WebSocket write that left nothing
    buffered, a polling GET that took the buffer), ``heartbeat()`` on each pong, and
    ``close(reason)``. Packet listeners cost a decode per message: use them to debug.

    :param sid: the session id.
    :param options: the engine options.
    :param environ: the handshake request's WSGI environ (a copy of its plain values).
    :param handler: receives messages and the close (until ``on_engine_connect`` names
        a handler of the session's own).
    :param registry: told when the session is gone.
    :param transport: the transport of the handshake.
    """

    def __init__(
        self,
        sid: EngineSid,
        options: EngineOptions,
        environ: Mapping[str, Any],
        handler: SessionHandler,
        registry: SessionRegistry,
        transport: Transport,
    ) -> None:
        self.sid = sid
        self.options = options
        self.environ = environ
        self.handler: SessionHandler = handler
        #: The rules of the session (state, heartbeat, upgrade exchange), without I/O.
        self.session = self.SESSION(options.ping_interval, options.ping_timeout)
        self.polling = PollingBuffer() if transport is Transport.POLLING else None
        self.websocket: WebSocketConnection | None = None
        #: The greenlet reading the WebSocket, while it may be lent out to run a
        #: message's work (see :mod:`~geventsio.engine.lending`); else None.
        self.inline_reader: Any = None
        self._registry = registry
        self._timer: Any = None
        self._close_grace: Any = None
        self._overflowed = False
        self._dropping = False  # slow_consumer_policy="drop" has dropped (and said so)
        self._ping_sent = 0.0
        #: How packets travel in long-polling bodies.
        self.payload_codec: PayloadCodec = V4_PAYLOAD

    EVENTS = frozenset({"packet", "packet_create", "upgrade", "drain", "heartbeat", "close"})

    #: The Engine.IO protocol revision (Node's ``socket.protocol``): 4, or 3 for an
    #: :class:`~geventsio.engine.eio3.EngineSocketV3`.
    protocol = 4
    #: The rules of the session's protocol revision.
    SESSION: ClassVar[type[ServerSession]] = ServerSession
    #: The packet from the client that is its side of the heartbeat ("heartbeat" event).
    HEARTBEAT: ClassVar[PacketType] = PacketType.PONG

    # -- properties ------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """Where the session stands: open, closing (long-polling), closed."""
        return self.session.state

    @property
    def close_reason(self) -> DisconnectReason | None:
        """Why the session closed (None while it is open)."""
        return self.session.close_reason

    @property
    def upgrading(self) -> bool:
        """Whether an upgrade exchange is running on a new WebSocket."""
        return self.session.upgrading

    @property
    def probed(self) -> bool:
        """The probe was answered: the upgrade waits for the client's "5"."""
        return self.session.probed

    @property
    def transport(self) -> Transport:
        """The transport packets currently travel on."""
        return Transport.POLLING if self.websocket is None else Transport.WEBSOCKET

    @property
    def writable(self) -> bool:
        """Whether a packet sent now would leave at once (volatile packets need this)."""
        if self.session.state is not SessionState.OPEN:
            return False
        if self.websocket is not None:
            return self.websocket.writable
        return self.polling is not None and self.polling.get_active and not self.polling.packets

    @property
    def connected(self) -> bool:
        """Whether packets sent now can still reach the client."""
        return self.session.state is SessionState.OPEN

    @property
    def reading_held(self) -> bool:
        """Whether the handler holds the transport's greenlet to push back on the client
        (set by the handler; no pong can be read meanwhile)."""
        return self.session.reading_held

    @reading_held.setter
    def reading_held(self, held: bool) -> None:
        self.session.reading_held = held

    # -- sending ---------------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        """Send one MESSAGE (text or binary)."""
        self.send_packets((OutgoingPacket.message(data),))

    def send_packets(self, packets: Sequence[OutgoingPacket], tier: Tier = Tier.KEEP) -> None:
        """Send already-encoded packets; the same objects may go to many sessions.

        :param tier: what ``slow_consumer_policy="drop"`` may do with them while they
            wait (see :mod:`~geventsio.engine.dropping`): acks, control packets and the
            engine's own are :attr:`Tier.KEEP`.
        """
        if self.session.state is not SessionState.OPEN or self._overflowed:
            return
        websocket = self.websocket  # _push, written out for the commonest write
        pushed = (
            websocket.send_packets(packets, tier)
            if websocket is not None
            else self._push(packets, tier)
        )
        if not pushed and not self._on_buffer_full(packets, tier):
            return
        observer = self._registry.observer
        if observer is not None:
            observer.packets_sent(self, packets)
        if self._listeners:
            self._report_sent(packets)

    def _report_sent(self, packets: Sequence[OutgoingPacket]) -> None:
        if self.has_listeners("packet_create"):
            for packet in packets:
                self.emit_event("packet_create", packet.packet)
        if self.websocket is not None and self.websocket.writable:
            self.emit_event("drain")

    def _push(self, packets: Sequence[OutgoingPacket], tier: Tier) -> bool:
        if self.websocket is not None:
            return self.websocket.send_packets(packets, tier)
        assert self.polling is not None
        return self.polling.push(packets, self.options.max_buffer_size, tier)

    def _make_room(self, packets: Sequence[OutgoingPacket], tier: Tier) -> bool:
        if self.websocket is not None:
            return self.websocket.make_room(packets, tier)
        assert self.polling is not None
        return self.polling.make_room(packets, self.options.max_buffer_size, tier)

    def _on_buffer_full(self, packets: Sequence[OutgoingPacket], tier: Tier) -> bool:
        """Apply the slow-consumer policy; True when ``packets`` were queued after all."""
        observer = self._registry.observer
        if self.options.slow_consumer_policy is SlowConsumerPolicy.DROP:
            if not self._dropping:
                self._dropping = True
                logger.warning(
                    "session %s: client is not reading (outgoing buffer over %d bytes); "
                    "dropping its volatile and broadcast packets (logged once)",
                    self.sid,
                    self.options.max_buffer_size,
                )
            if self._make_room(packets, tier):
                if observer is not None:  # queued packets were dropped for these
                    observer.slow_consumer(self, True)
                return self._push(packets, tier)
            if tier is not Tier.KEEP:
                if observer is not None:
                    observer.slow_consumer(self, True)
                return False  # the newest broadcast (or volatile) packet goes itself
        if self._overflowed:
            return False  # the close is on its way
        if observer is not None:
            observer.slow_consumer(self, False)
        self._overflowed = True
        logger.warning(
            "session %s: client is not reading (outgoing buffer over %d bytes); closing it",
            self.sid,
            self.options.max_buffer_size,
        )
        gevent.spawn(self.close, DisconnectReason.TRANSPORT_ERROR)
        return False

    # -- heartbeat -------------------------------------------------------------------

    def start(self) -> None:
        """Start the heartbeat; called once the handshake answer is on its way."""
        delay = self.session.start().timer
        assert delay is not None
        self._schedule(delay)

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.close()
        self._timer = gevent.get_hub().loop.timer(delay)
        self._timer.start(self._on_timer)

    def _on_timer(self) -> None:  # runs in the hub: must not block
        step = self.session.on_timer()
        if step.timer is not None:
            self._schedule(step.timer)
        if step.send:
            self._send_pings(step.send)
        for event in step.events:
            if isinstance(event, Closed):
                logger.info("session %s: %s", self.sid, event.detail)
                gevent.spawn(self.close, event.reason)

    def _send_pings(self, packets: tuple[Packet, ...]) -> None:
        """Send the heartbeat's packets (pings), timing the round trip to the pong."""
        self._ping_sent = time.monotonic()
        self.send_packets(_outgoing(packets))

    def _on_heartbeat(self) -> None:
        if self._ping_sent:
            round_trip, self._ping_sent = time.monotonic() - self._ping_sent, 0.0
            if self._registry.observer is not None:
                self._registry.observer.pong_received(self, round_trip)
        self.emit_event("heartbeat")

    # -- receiving -------------------------------------------------------------------

    def receive_packet(self, packet: Packet) -> None:
        """Act on one packet from the client (any transport).

        :raises RemoteProtocolError: the packet has no place here.
        """
        if self._listeners:
            self.emit_event("packet", packet)
        kind = packet.type
        if kind is PacketType.MESSAGE:  # the common case: the session's MESSAGE rule,
            if self.session.state is SessionState.OPEN:  # inlined as run_websocket does
                self._receive_message(packet.data)
            return
        if self._registry.observer is not None:
            self._registry.observer.packet_received(self, packet)
        step = self.session.receive(packet)
        if step.timer is not None:
            self._schedule(step.timer)
        if step.send:  # Engine.IO v3: the pong to the client's ping
            self.send_packets(_outgoing(step.send))
        if kind is self.HEARTBEAT:
            self._on_heartbeat()
        for event in step.events:
            if type(event) is Message:
                self._receive_message(event.data)
            elif isinstance(event, Closed):
                if not event.by_peer:
                    logger.info("session %s: %s", self.sid, event.detail)
                self.close(event.reason, by_client=event.by_peer)

    def _receive_message(self, data: str | bytes) -> None:
        observer = self._registry.observer
        if observer is not None:
            observer.message_received(self, data)
        self.handler.on_engine_message(self, data)

    # -- WebSocket -------------------------------------------------------------------

    def attach_websocket(self, websocket: WebSocketConnection) -> None:
        """Use a WebSocket from the start (a session opened with ``transport=websocket``)."""
        self.websocket = websocket

    def run_websocket(self) -> None:
        """Read the WebSocket until it ends (runs in the WebSocket request's greenlet)."""
        websocket = self.websocket
        assert websocket is not None
        # Meanwhile the layer above may run a message's work in this greenlet, where a
        # relay can take the reading over and be stopped without losing anything.
        if websocket.reads_interruptible:
            self.inline_reader = getcurrent()
        try:
            self._read_websocket(websocket, None)
        finally:
            self.inline_reader = None
        websocket.close_and_wait()

    def relay_reading(self, lease: ReadingLease) -> None:
        """Read the WebSocket for the reader greenlet while it is lent out (see
        :mod:`~geventsio.engine.lending`), until ``lease.returned``."""
        websocket = self.websocket
        if websocket is not None:
            self._read_websocket(websocket, lease)

    def _read_websocket(self, websocket: WebSocketConnection, lease: ReadingLease | None) -> None:
        session = self.session
        while session.state is SessionState.OPEN:
            try:
                if lease is None:
                    message = websocket.receive()
                else:
                    if lease.returned:
                        return
                    lease.interruptible = True
                    try:
                        message = websocket.receive()
                    finally:
                        lease.interruptible = False
            except RemoteProtocolError as exc:
                logger.info("session %s: WebSocket protocol error: %s", self.sid, exc)
                self.close(DisconnectReason.TRANSPORT_ERROR)
                break
            if message is None:
                self.close(DisconnectReason.TRANSPORT_CLOSE)
                break
            try:
                listeners = self._listeners
                if (type(message) is str and message[:1] != "4") or (
                    listeners is not None and "packet" in listeners
                ):  # Not a MESSAGE, or packet listeners that see every packet decoded.
                    self.receive_packet(engineio.decode_ws(message))
                    continue
                # A MESSAGE, the common case (a binary message is always one).
                data = message[1:] if type(message) is str else message
                observer = self._registry.observer
                if observer is not None:
                    observer.message_received(self, data)
                self.handler.on_engine_message(self, data)
            except RemoteProtocolError as exc:
                logger.info("session %s: parse error: %s", self.sid, exc)
                self.close(DisconnectReason.PARSE_ERROR)

    def upgrade(self, websocket: WebSocketConnection) -> bool:
        """Run the probe and upgrade exchange on a new WebSocket; True once upgraded.

        On any failure the WebSocket is closed and the session goes on polling.
        """
        self.session.begin_upgrade()
        try:
            answer = self._upgrade_step(websocket)
            if answer is None:
                return False
            websocket.send_packets(_outgoing(answer))
            assert self.polling is not None
            # Until "5" arrives, every GET is answered at once (a NOOP when nothing else
            # is waiting): a client may start one more GET after the first NOOP, and it
            # must not hang there while the client waits for it before sending "5".
            self.polling.push((OutgoingPacket(engineio.NOOP),), None)
            if self._upgrade_step(websocket) is None:
                return False
            self._switch_to(websocket)
            return True
        finally:
            self.session.end_upgrade()

    def _upgrade_step(self, websocket: WebSocketConnection) -> tuple[Packet, ...] | None:
        """Feed the next message of the new WebSocket to the upgrade exchange; the packets
        to answer with, or None when the upgrade is abandoned (the WebSocket closed)."""
        try:
            with Timeout(self.options.upgrade_timeout):
                message = websocket.receive()
        except (Timeout, RemoteProtocolError) as exc:
            logger.info("session %s: upgrade abandoned: %s", self.sid, exc or "timed out")
            websocket.close_and_wait()
            return None
        step = self.session.upgrade_message(message)
        for event in step.events:
            if isinstance(event, UpgradeFailed):
                logger.info("session %s: upgrade abandoned: %s", self.sid, event.detail)
                websocket.close_and_wait()
                return None
        return step.send

    def _switch_to(self, websocket: WebSocketConnection) -> None:
        assert self.polling is not None
        leftover = [p for p in self.polling.take() if p.packet.type is not PacketType.NOOP]
        self.websocket = websocket
        self.polling.release(OutgoingPacket(engineio.NOOP))
        if leftover:
            self.send_packets(leftover)
        if self._registry.observer is not None:
            self._registry.observer.session_upgraded(self)
        self.emit_event("upgrade", self.transport)

    # -- closing ---------------------------------------------------------------------

    def close(
        self,
        reason: DisconnectReason = DisconnectReason.FORCED_CLOSE,
        *,
        by_client: bool = False,
        linger: bool | None = None,
    ) -> None:
        """End the session (see :meth:`ServerSession.close` for when it lingers).

        :param reason: why, as the layer above will be told.
        :param by_client: the client ended it (its CLOSE, or a GET it dropped): the last
            GET ends with NOOP instead of CLOSE.
        :param linger: on long-polling, keep the session until the next GET has collected
            what is buffered (default: for closes the server decides on and the
            client's CLOSE).
        """
        on_polling = self.websocket is None and self.polling is not None
        step = self.session.close(reason, by_client=by_client, on_polling=on_polling, linger=linger)
        if step is None:
            return
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        final = step.send[0]
        if step.timer is not None:
            self._close_after_last_poll(final, step.timer)
        else:
            self._finish(final)
        try:
            self.handler.on_engine_close(self, reason)
        except Exception:
            logger.exception("session %s: the close handler failed", self.sid)
        if self._registry.observer is not None:
            self._registry.observer.session_closed(self, reason)
        self.emit_event("close", reason)

    def _close_after_last_poll(self, final: Packet, grace: float) -> None:
        assert self.polling is not None
        self.polling.release(OutgoingPacket(final))
        if not self.polling.get_active:
            self._close_grace = gevent.get_hub().loop.timer(grace)
            self._close_grace.start(self._finish)

    def forget(self) -> None:
        """Drop a closed session now, even if its last packets were never collected."""
        self._finish()

    def _finish(self, final: Packet = engineio.CLOSE) -> None:
        """The session is gone: forget it and release whatever still waits on it."""
        if not self.session.finish():
            return
        if self._close_grace is not None:
            self._close_grace.close()
            self._close_grace = None
        if self.polling is not None:
            self.polling.release(OutgoingPacket(final))
        if self.websocket is not None:
            self.websocket.close()
        self._registry.session_closed(self)

    def poll_answered(self) -> None:
        """A GET was answered: a closing session has now said its last word."""
        if self.state is SessionState.CLOSING:
            self._finish()
        elif self._listeners:
            self.emit_event("drain")

    def drain(self, timeout: float) -> None:
        """Give queued outgoing data up to ``timeout`` seconds to leave (shutdown)."""
        if self.websocket is not None:
            self.websocket.drain(timeout)


def _outgoing(packets: Iterable[Packet]) -> tuple[OutgoingPacket, ...]:
    return tuple(OutgoingPacket(packet) for packet in packets)
