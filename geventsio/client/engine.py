"""The Engine.IO v4 client: one session over long-polling, WebSocket, or polling then
WebSocket.

Theory of operation. :meth:`EngineConnection.open` does the handshake in the caller's
greenlet, then three greenlets run the session:

* the *reader* calls ``transport.receive()`` and handles packets in arrival order,
  handing MESSAGE data to the listener (which must not block);
* the *writer* sends everything queued by :meth:`EngineConnection.send` in order, all
  pending packets in one write (one POST, or one ``sendall`` of frames);
* the *watchdog* closes the session with "ping timeout" when no ping arrived within
  ``pingInterval + pingTimeout`` of the last one (or of the handshake).

A polling session offered ``websocket`` also runs a *probe*, as engine.io-client does:
open a WebSocket with the sid, send ``2probe``, await ``3probe``; then park the writer
(after the POST in flight), send ``5`` on the WebSocket and switch. The reader finishes
the GET in flight (the server ends it once upgraded), handles what it brought, then
closes polling and reads the WebSocket. Invariants: packets go out on exactly one
transport at a time, in order; packets are read in the order the server sent them (the
last GET before anything from the WebSocket); a failed probe leaves polling as it was.

The listener hears of a close exactly once, and only when the owner did not ask for it:
:meth:`close` and :meth:`abort` are silent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import gevent
import gevent.event

from geventsio import _json
from geventsio.client.errors import ClientDisconnectReason, ConnectFailed
from geventsio.client.options import ClientOptions
from geventsio.client.transports import (
    ClientTransport,
    Endpoint,
    PollingTransport,
    TransportFailure,
    WebSocketTransport,
)
from geventsio.exceptions import RemoteProtocolError
from geventsio.options import Transport
from geventsio.protocol.engineio import CLOSE, UPGRADE, Packet, PacketType

logger = logging.getLogger(__name__)

_R = ClientDisconnectReason
_PROBE = "probe"
_CLOSE_GRACE = 1.0  # seconds a graceful close waits for the server to end the session


class EngineListener(Protocol):
    """What the layer above (the Socket.IO manager) implements."""

    def on_engine_message(self, data: str | bytes) -> None:
        """A MESSAGE arrived (called in the reader greenlet, in order; must not block)."""

    def on_engine_close(self, reason: ClientDisconnectReason, description: str) -> None:
        """The session ended without the owner asking (called once; must not block)."""


@dataclass(frozen=True)
class Handshake:
    """The data of the server's OPEN packet, times in seconds."""

    sid: str
    upgrades: tuple[str, ...]
    ping_interval: float
    ping_timeout: float
    max_payload: int

    @classmethod
    def parse(cls, packet: Packet) -> Handshake:
        """Read an OPEN packet.

        :raises RemoteProtocolError: not an OPEN packet, or missing fields.
        """
        if packet.type is not PacketType.OPEN or not isinstance(packet.data, str):
            raise RemoteProtocolError(f"expected an OPEN packet, got {packet.type.name}")
        try:
            data = _json.loads(packet.data)
            return cls(
                sid=str(data["sid"]),
                upgrades=tuple(str(u) for u in data.get("upgrades", ())),
                ping_interval=float(data["pingInterval"]) / 1000,
                ping_timeout=float(data["pingTimeout"]) / 1000,
                max_payload=int(data.get("maxPayload", 1_000_000)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RemoteProtocolError(f"malformed OPEN packet {packet.data[:100]!r}") from exc


class _State(Enum):
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class EngineConnection:
    """One Engine.IO session to a server.

    :param endpoint: the server, Engine.IO path and extra headers.
    :param options: the client options.
    :param transports: the transports allowed, the first one used for the handshake.
    :param listener: told about messages and unrequested closes.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        options: ClientOptions,
        transports: Sequence[Transport],
        listener: EngineListener,
    ) -> None:
        self._endpoint = endpoint
        self._options = options
        self._transports = tuple(transports)
        self._listener = listener
        self._state = _State.OPENING
        self._transport: ClientTransport | None = None
        self._retired: ClientTransport | None = None  # polling, until its last GET ends
        self.handshake: Handshake | None = None
        self._outbox: list[Packet] = []
        self._wakeup = gevent.event.Event()  # the writer has work, or should look again
        self._writer_idle = gevent.event.Event()
        self._greenlets: dict[str, gevent.Greenlet] = {}
        self._ping_deadline = 0.0
        self._pausing = False  # the writer must park: an upgrade is switching transports

    # -- public ----------------------------------------------------------------------

    @property
    def transport(self) -> Transport | None:
        """The transport packets travel on now (``None`` before the handshake)."""
        return None if self._transport is None else self._transport.name

    @property
    def is_open(self) -> bool:
        """Whether packets sent now may still reach the server."""
        return self._state is _State.OPEN

    def open(self) -> None:
        """Do the handshake and start the session's greenlets.

        :raises ConnectFailed: the server could not be reached, refused, or did not
            answer within ``request_timeout``; the cause is chained.
        """
        address = self._endpoint.address
        timeout = self._options.request_timeout
        try:
            with gevent.Timeout(timeout, TimeoutError(f"no handshake within {timeout:g}s")):
                transport, packets = self._handshake()
        except (TransportFailure, OSError, RemoteProtocolError) as exc:
            self._state = _State.CLOSED
            # A TransportFailure wraps the real error (ConnectionRefusedError, SSLError...).
            cause = exc.__cause__ if isinstance(exc, TransportFailure) and exc.__cause__ else exc
            raise ConnectFailed(f"cannot connect to {address}: {exc}") from cause
        self._transport = transport
        self._ping_deadline = time.monotonic() + self._heartbeat_period()
        self._state = _State.OPEN
        self._spawn("reader", self._read_loop, packets)
        self._spawn("writer", self._write_loop)
        self._spawn("watchdog", self._watch)
        if self._can_upgrade():
            self._spawn("probe", self._probe)
        logger.debug("engine session %s open on %s", self.sid, transport.name.value)

    @property
    def sid(self) -> str | None:
        """The Engine.IO session id."""
        return None if self.handshake is None else self.handshake.sid

    def send(self, data: str | bytes) -> None:
        """Queue a MESSAGE; dropped when the session is no longer open."""
        if self._state is _State.OPEN:
            self._queue(Packet(PacketType.MESSAGE, data))

    def close(self) -> None:
        """Close the session gracefully: flush what is queued, send CLOSE, give the
        server a moment to end its side, then close the transport. Silent: the listener
        is not told. Bounded by ``request_timeout`` plus one second.
        """
        if self._state is not _State.OPEN:
            self.abort()
            return
        self._queue(CLOSE)
        self._state = _State.CLOSING
        self._stop("watchdog", "probe")
        self._pausing = False
        self._wakeup.set()
        self._writer_idle.wait(timeout=self._options.request_timeout)
        assert self._transport is not None
        self._transport.finish()
        reader = self._greenlets.get("reader")
        if reader is not None and reader is not gevent.getcurrent():
            reader.join(timeout=_CLOSE_GRACE)
        self.abort()

    def abort(self) -> None:
        """Close the session at once, silently (the listener is not told)."""
        self._state = _State.CLOSED
        self._shutdown()

    # -- opening ---------------------------------------------------------------------

    def _handshake(self) -> tuple[ClientTransport, list[Packet]]:
        transport: ClientTransport
        if self._transports[0] is Transport.POLLING:
            transport = PollingTransport(self._endpoint, self._options)
        else:
            transport = WebSocketTransport.connect(self._endpoint, self._options, None)
        try:
            packets = transport.receive()
            self.handshake = Handshake.parse(packets[0])
        except BaseException:
            transport.close()
            raise
        if isinstance(transport, PollingTransport):
            transport.sid = self.handshake.sid
            transport.poll_timeout = self._heartbeat_period() + self._options.request_timeout
        return transport, packets[1:]

    def _heartbeat_period(self) -> float:
        assert self.handshake is not None
        return self.handshake.ping_interval + self.handshake.ping_timeout

    def _can_upgrade(self) -> bool:
        assert self.handshake is not None and self._transport is not None
        return (
            self._transport.name is Transport.POLLING
            and Transport.WEBSOCKET in self._transports
            and "websocket" in self.handshake.upgrades
        )

    # -- greenlets -------------------------------------------------------------------

    def _spawn(self, name: str, function: Callable[..., None], *args: Any) -> None:
        self._greenlets[name] = gevent.spawn(function, *args)

    def _stop(self, *names: str) -> None:
        current = gevent.getcurrent()
        for name in names:
            greenlet = self._greenlets.pop(name, None)
            if greenlet is not None and greenlet is not current:
                greenlet.kill()

    def _shutdown(self) -> None:
        self._stop("watchdog", "probe", "writer", "reader")
        for transport in (self._transport, self._retired):
            if transport is not None:
                transport.close()

    def _fail(self, reason: ClientDisconnectReason, description: str) -> None:
        """The session died on its own: close everything, tell the listener once."""
        if self._state is not _State.OPEN:
            return
        logger.info("engine session %s closed: %s (%s)", self.sid, reason, description)
        self.abort()
        self._listener.on_engine_close(reason, description)

    def _read_loop(self, packets: list[Packet]) -> None:
        try:
            while True:
                for packet in packets:
                    self._on_packet(packet)
                if self._state is not _State.OPEN:
                    return
                packets = self._receive()
        except TransportFailure as exc:
            self._fail(exc.reason, exc.description)

    def _receive(self) -> list[Packet]:
        """The next packets, from polling until the last GET after an upgrade returns."""
        transport = self._transport
        assert transport is not None
        try:
            packets = transport.receive()
        except TransportFailure:
            if transport is self._transport:
                raise
            packets = []  # the last GET of an upgraded session: its end does not matter
        if transport is not self._transport:
            # Upgraded meanwhile: polling is done. Node ends this last GET with a CLOSE
            # that only concerns polling (engine.io-client ignores it too).
            transport.close()
            self._retired = None
            packets = [p for p in packets if p.type is not PacketType.CLOSE]
        return packets

    def _on_packet(self, packet: Packet) -> None:
        handler = self._PACKET_HANDLERS.get(packet.type)
        if handler is None:
            logger.debug("ignoring unexpected %s packet", packet.type.name)
        else:
            handler(self, packet)

    def _on_ping(self, packet: Packet) -> None:
        if self._state is _State.OPEN:
            self._ping_deadline = time.monotonic() + self._heartbeat_period()
            self._queue(Packet(PacketType.PONG, packet.data))

    def _on_message(self, packet: Packet) -> None:
        if self._state is _State.OPEN:
            self._listener.on_engine_message(packet.data)

    def _on_close(self, packet: Packet) -> None:
        raise TransportFailure(_R.TRANSPORT_CLOSE, "session closed by the server")

    def _ignore(self, packet: Packet) -> None:
        pass

    _PACKET_HANDLERS: dict[PacketType, Callable[[EngineConnection, Packet], None]] = {
        PacketType.PING: _on_ping,
        PacketType.MESSAGE: _on_message,
        PacketType.CLOSE: _on_close,
        PacketType.NOOP: _ignore,
    }

    def _queue(self, packet: Packet) -> None:
        self._outbox.append(packet)
        self._writer_idle.clear()  # set again once the writer has sent it (or is parked)
        self._wakeup.set()

    def _write_loop(self) -> None:
        try:
            while True:
                while not self._outbox or self._pausing:
                    self._writer_idle.set()
                    self._wakeup.wait()
                    self._wakeup.clear()
                self._writer_idle.clear()
                transport = self._transport
                assert transport is not None
                transport.send(self._take_batch(transport.name))
        except TransportFailure as exc:
            self._fail(exc.reason, exc.description)
        finally:
            self._writer_idle.set()  # nothing more will be sent: nobody should wait

    def _take_batch(self, transport: Transport) -> list[Packet]:
        """Everything queued; for polling, no more than the server's maxPayload allows."""
        assert self.handshake is not None
        if transport is Transport.WEBSOCKET or len(self._outbox) == 1:
            batch, self._outbox = self._outbox, []
            return batch
        size, count = 0, 0
        for packet in self._outbox:
            size += 2 + (
                len(packet.data) * 4 // 3
                if isinstance(packet.data, bytes)
                else len(packet.data.encode())
            )
            if count and size > self.handshake.max_payload:
                break
            count += 1
        batch, self._outbox = self._outbox[:count], self._outbox[count:]
        return batch

    def _watch(self) -> None:
        while (remaining := self._ping_deadline - time.monotonic()) > 0:
            gevent.sleep(remaining)
        self._fail(_R.PING_TIMEOUT, f"no ping within {self._heartbeat_period():g}s")

    # -- upgrade ---------------------------------------------------------------------

    def _probe(self) -> None:
        websocket: WebSocketTransport | None = None
        timeout = self._options.upgrade_timeout
        try:
            with gevent.Timeout(timeout, TimeoutError(f"upgrade took over {timeout:g}s")):
                websocket = WebSocketTransport.connect(self._endpoint, self._options, self.sid)
                websocket.send([Packet(PacketType.PING, _PROBE)])
                answer = websocket.receive()
                if answer[0] != Packet(PacketType.PONG, _PROBE):
                    raise RemoteProtocolError(f"unexpected probe answer {answer[0]!r}")
                self._pausing = True
                self._wakeup.set()
                self._writer_idle.wait()  # the POST in flight, if any, is done
                if self._state is not _State.OPEN:
                    return
                websocket.send([UPGRADE])
            self._retired, self._transport, websocket = self._transport, websocket, None
            logger.debug("engine session %s upgraded to websocket", self.sid)
        except (TransportFailure, OSError, RemoteProtocolError) as exc:
            logger.info("upgrade to WebSocket failed, staying on polling: %s", exc)
        finally:
            if websocket is not None:
                websocket.close()
            self._pausing = False
            self._wakeup.set()
