"""One Engine.IO session (an ``EngineSocket``), whatever its transport.

Theory of operation. A session starts on long-polling (a handshake GET) or directly on
WebSocket. Its invariants:

* Outgoing packets go to exactly one place: the polling buffer until the session has a
  WebSocket, the WebSocket after. An upgrade moves what the buffer still holds onto the
  WebSocket before anything else is written there, so order is kept.
* Incoming MESSAGE packets are handed to the handler in arrival order, in the
  transport's own greenlet (the WebSocket reader, the POST request). The handler does
  not block there: the layer above queues work for its own greenlets, so that a slow
  application handler never stops the heartbeat, and an acknowledgement that a blocked
  handler waits for can still be read. The one exception is back-pressure: when the
  layer above has too much queued, it holds the transport's greenlet until it has room,
  so that the client is read no further, and sets ``reading_held`` meanwhile.
* The heartbeat is a hub timer, not a greenlet; an idle session costs its socket, its
  buffer and, on WebSocket, the reader greenlet. When reading was held at any moment
  since the last heartbeat timer, an unanswered ping does not close the session: its
  pong may be among the bytes not read yet. The ping is sent again instead, and judged
  ``ping_timeout`` later (so the client, which expects a ping every ``ping_interval +
  ping_timeout``, keeps getting them too); the first pong read answers it. A session
  read freely for a whole ``ping_timeout`` without a pong is closed, as ever.
* ``close()`` runs once, and tells the handler once, after every message delivered
  before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

import gevent
from gevent import Timeout

from geventsio._types import DisconnectReason, EngineSid
from geventsio.engine.dropping import Tier
from geventsio.engine.events import EventEmitter
from geventsio.engine.polling import PollingBuffer
from geventsio.exceptions import RemoteProtocolError
from geventsio.options import EngineOptions, SlowConsumerPolicy, Transport
from geventsio.protocol import engineio
from geventsio.protocol.engineio import Packet, PacketType
from geventsio.protocol.heartbeat import Heartbeat, HeartbeatAction
from geventsio.protocol.outgoing import OutgoingPacket

if TYPE_CHECKING:
    from geventsio.engine.observer import EngineObserver
    from geventsio.engine.websocket import WebSocketConnection

logger = logging.getLogger(__name__)

#: Seconds a session closed by the client's CLOSE packet waits for a GET to end with NOOP.
CLIENT_CLOSE_GRACE = 0.5

_SERVER_DECIDED = frozenset(
    {
        DisconnectReason.FORCED_CLOSE,
        DisconnectReason.FORCED_SERVER_CLOSE,
        DisconnectReason.SERVER_SHUTTING_DOWN,
    }
)
_PROBE = "2probe"
_UPGRADE = "5"


class SessionState(Enum):
    """The life of a session."""

    OPEN = "open"
    #: Closed by the server on long-polling; the final packets wait for the next GET.
    CLOSING = "closing"
    CLOSED = "closed"


class EngineHandler(Protocol):
    """What the layer above the engine (Socket.IO, or a plain echo) implements."""

    def on_engine_connect(self, socket: EngineSocket) -> None:
        """A session opened (called in the handshake request's greenlet)."""

    def on_engine_message(self, socket: EngineSocket, data: str | bytes) -> None:
        """A MESSAGE arrived (called in the transport's greenlet, in order; must not block,
        except to push back, with ``socket.reading_held`` set)."""

    def on_engine_close(self, socket: EngineSocket, reason: DisconnectReason) -> None:
        """The session ended (called once, last; must not block)."""


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
    :param handler: receives messages and the close.
    :param registry: told when the session is gone.
    :param transport: the transport of the handshake.
    """

    def __init__(
        self,
        sid: EngineSid,
        options: EngineOptions,
        environ: Mapping[str, Any],
        handler: EngineHandler,
        registry: SessionRegistry,
        transport: Transport,
    ) -> None:
        self.sid = sid
        self.options = options
        self.environ = environ
        self.handler = handler
        self.state = SessionState.OPEN
        self.close_reason: DisconnectReason | None = None
        self.polling = PollingBuffer() if transport is Transport.POLLING else None
        self.websocket: WebSocketConnection | None = None
        self.upgrading = False
        #: The probe was answered: the upgrade waits for the client's "5".
        self.probed = False
        self._registry = registry
        self._heartbeat = Heartbeat(options.ping_interval, options.ping_timeout)
        self._timer: Any = None
        self._close_grace: Any = None
        self._overflowed = False
        self._dropping = False  # slow_consumer_policy="drop" has dropped (and said so)
        self._reading_held = False
        self._held_since_timer = False
        self._ping_sent = 0.0

    EVENTS = frozenset({"packet", "packet_create", "upgrade", "drain", "heartbeat", "close"})

    # -- properties ------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        """The transport packets currently travel on."""
        return Transport.POLLING if self.websocket is None else Transport.WEBSOCKET

    @property
    def writable(self) -> bool:
        """Whether a packet sent now would leave at once (volatile packets need this)."""
        if self.state is not SessionState.OPEN:
            return False
        if self.websocket is not None:
            return self.websocket.writable
        return self.polling is not None and self.polling.get_active and not self.polling.packets

    @property
    def connected(self) -> bool:
        """Whether packets sent now can still reach the client."""
        return self.state is SessionState.OPEN

    @property
    def reading_held(self) -> bool:
        """Whether the handler holds the transport's greenlet to push back on the client
        (set by the handler; no pong can be read meanwhile)."""
        return self._reading_held

    @reading_held.setter
    def reading_held(self, held: bool) -> None:
        self._reading_held = held
        if held:
            self._held_since_timer = True

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
        if self.state is not SessionState.OPEN or self._overflowed:
            return
        if not self._push(packets, tier) and not self._on_buffer_full(packets, tier):
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
        if self._registry.observer is not None:
            dropped = self.options.slow_consumer_policy is SlowConsumerPolicy.DROP
            self._registry.observer.slow_consumer(self, dropped)
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
                return self._push(packets, tier)
            if tier is not Tier.KEEP:
                return False  # the newest broadcast (or volatile) packet goes itself
        if self._overflowed:
            return False  # the close is on its way
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
        self._schedule(self._heartbeat.first_delay())

    def _schedule(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.close()
        self._timer = gevent.get_hub().loop.timer(delay)
        self._timer.start(self._on_timer)

    def _on_timer(self) -> None:  # runs in the hub: must not block
        if self.state is not SessionState.OPEN:
            return
        decision = self._heartbeat.on_timer()
        held, self._held_since_timer = self._held_since_timer, self._reading_held
        if decision.action is HeartbeatAction.TIMED_OUT:
            if held:  # reading was held since the last timer: the pong may be unread
                self._schedule(self.options.ping_timeout)
                self._send_ping()
                return
            logger.info("session %s: no pong within %.3g s", self.sid, self.options.ping_timeout)
            gevent.spawn(self.close, DisconnectReason.PING_TIMEOUT)
            return
        assert decision.next_delay is not None
        self._schedule(decision.next_delay)
        self._send_ping()

    def _send_ping(self) -> None:
        self._ping_sent = time.monotonic()
        self.send_packets((OutgoingPacket(engineio.PING),))

    def _on_pong(self) -> None:
        delay = self._heartbeat.on_pong()
        if delay is not None and self.state is SessionState.OPEN:
            self._schedule(delay)
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
        if kind is PacketType.MESSAGE:
            if self.state is SessionState.OPEN:
                self._receive_message(packet.data)
            return
        if self._registry.observer is not None:
            self._registry.observer.packet_received(self, packet)
        if kind is PacketType.PONG:
            self._on_pong()
        elif kind is PacketType.CLOSE:
            self.close(DisconnectReason.TRANSPORT_CLOSE, final=engineio.NOOP, linger=True)
        elif kind is PacketType.PING:
            # In v4 only the server pings; the Node reference closes such a session.
            logger.info("session %s: invalid heartbeat direction (a client ping)", self.sid)
            self.close(DisconnectReason.TRANSPORT_ERROR)
        elif kind in (PacketType.OPEN, PacketType.UPGRADE):
            raise RemoteProtocolError(f"unexpected {kind.name} packet from the client")
        # A NOOP from a client needs no answer.

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
        while self.state is SessionState.OPEN:
            try:
                message = websocket.receive()
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
        websocket.close_and_wait()

    def upgrade(self, websocket: WebSocketConnection) -> bool:
        """Run the probe and upgrade exchange on a new WebSocket; True once upgraded.

        On any failure the WebSocket is closed and the session goes on polling.
        """
        self.upgrading = True
        try:
            if not self._expect(websocket, _PROBE):
                return False
            websocket.send_packets((OutgoingPacket(Packet(PacketType.PONG, "probe")),))
            assert self.polling is not None
            # Until "5" arrives, every GET is answered at once (a NOOP when nothing else
            # is waiting): a client may start one more GET after the first NOOP, and it
            # must not hang there while the client waits for it before sending "5".
            self.probed = True
            self.polling.push((OutgoingPacket(engineio.NOOP),), None)
            if not self._expect(websocket, _UPGRADE):
                return False
            self._switch_to(websocket)
            return True
        finally:
            self.upgrading = False
            self.probed = False

    def _expect(self, websocket: WebSocketConnection, expected: str) -> bool:
        try:
            with Timeout(self.options.upgrade_timeout):
                message = websocket.receive()
        except (Timeout, RemoteProtocolError) as exc:
            logger.info("session %s: upgrade abandoned: %s", self.sid, exc or "timed out")
            websocket.close_and_wait()
            return False
        if message != expected or self.state is not SessionState.OPEN:
            logger.info("session %s: upgrade abandoned: got %r", self.sid, message)
            websocket.close_and_wait()
            return False
        return True

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
        final: Packet = engineio.CLOSE,
        linger: bool | None = None,
    ) -> None:
        """End the session.

        :param reason: why, as the layer above will be told.
        :param final: on long-polling, the packet that ends the last GET (CLOSE tells the
            client the server closed; NOOP just ends the request after a client's close).
        :param linger: on long-polling with no GET waiting, keep the session until the
            next GET has collected what is buffered and ``final``: at most ping_timeout
            after a close the server decided on, :data:`CLIENT_CLOSE_GRACE` after the
            client's own CLOSE (its last GET may be on its way). Defaults to True for
            closes the server decides on, False for failures.
        """
        if self.state is not SessionState.OPEN:
            return
        self.close_reason = reason
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        if linger is None:
            linger = reason in _SERVER_DECIDED
        if self.websocket is None and self.polling is not None and linger:
            grace = (
                CLIENT_CLOSE_GRACE
                if reason is DisconnectReason.TRANSPORT_CLOSE
                else self.options.ping_timeout
            )
            self._close_after_last_poll(final, grace)
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
        self.state = SessionState.CLOSING
        self.polling.release(OutgoingPacket(final))
        if not self.polling.get_active:
            self._close_grace = gevent.get_hub().loop.timer(grace)
            self._close_grace.start(self._finish)

    def forget(self) -> None:
        """Drop a closed session now, even if its last packets were never collected."""
        self._finish()

    def _finish(self, final: Packet = engineio.CLOSE) -> None:
        """The session is gone: forget it and release whatever still waits on it."""
        if self.state is SessionState.CLOSED:
            return
        self.state = SessionState.CLOSED
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
