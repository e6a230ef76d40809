"""The Engine.IO v4 client: one session over long-polling, WebSocket, or polling then
WebSocket; the I/O around :class:`~geventsio.protocol.session.ClientSession`, which holds
the rules (what each packet means, the ping deadline, the probe's packets).

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
from typing import Any, Protocol

import gevent
import gevent.event

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
from geventsio.protocol.engineio import Packet, PacketType
from geventsio.protocol.session import (
    ClientSession,
    Closed,
    Handshake,
    Message,
    SessionState,
    Step,
    Upgraded,
)

__all__ = ["EngineConnection", "EngineListener", "Handshake"]

logger = logging.getLogger(__name__)

_R = ClientDisconnectReason
_CLOSE_GRACE = 1.0  # seconds a graceful close waits for the server to end the session


class EngineListener(Protocol):
    """What the layer above (the Socket.IO manager) implements."""

    def on_engine_message(self, data: str | bytes) -> None:
        """A MESSAGE arrived (called in the reader greenlet, in order; must not block)."""

    def on_engine_close(self, reason: ClientDisconnectReason, description: str) -> None:
        """The session ended without the owner asking (called once; must not block)."""


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
        self._session: ClientSession | None = None  # once the handshake is done
        self._transport: ClientTransport | None = None
        self._retired: ClientTransport | None = None  # polling, until its last GET ends
        self.handshake: Handshake | None = None
        self._outbox: list[Packet] = []
        self._wakeup = gevent.event.Event()  # the writer has work, or should look again
        self._writer_idle = gevent.event.Event()
        self._greenlets: dict[str, gevent.Greenlet] = {}
        self._pausing = False  # the writer must park: an upgrade is switching transports

    # -- public ----------------------------------------------------------------------

    @property
    def transport(self) -> Transport | None:
        """The transport packets travel on now (``None`` before the handshake)."""
        return None if self._transport is None else self._transport.name

    @property
    def is_open(self) -> bool:
        """Whether packets sent now may still reach the server."""
        return self._session is not None and self._session.state is SessionState.OPEN

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
            # A TransportFailure wraps the real error (ConnectionRefusedError, SSLError...).
            cause = exc.__cause__ if isinstance(exc, TransportFailure) and exc.__cause__ else exc
            raise ConnectFailed(f"cannot connect to {address}: {exc}") from cause
        self._transport = transport
        assert self.handshake is not None
        self._session = ClientSession(self.handshake, time.monotonic())
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
        if self.is_open:
            self._queue(Packet(PacketType.MESSAGE, data))

    def close(self) -> None:
        """Close the session gracefully: flush what is queued, send CLOSE, give the
        server a moment to end its side, then close the transport. Silent: the listener
        is not told. Bounded by ``request_timeout`` plus one second.
        """
        if self._session is None or not self.is_open:
            self.abort()
            return
        self._queue_step(self._session.close())
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
        if self._session is not None:
            self._session.abort()
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
            transport.poll_timeout = self.handshake.heartbeat_period + self._options.request_timeout
        return transport, packets[1:]

    def _can_upgrade(self) -> bool:
        assert self._session is not None and self._transport is not None
        return (
            self._transport.name is Transport.POLLING
            and Transport.WEBSOCKET in self._transports
            and self._session.can_upgrade(Transport.WEBSOCKET.value)
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
        if self._session is None or not self._session.fail():
            return
        logger.info("engine session %s closed: %s (%s)", self.sid, reason, description)
        self.abort()
        self._listener.on_engine_close(reason, description)

    def _read_loop(self, packets: list[Packet]) -> None:
        try:
            while True:
                for packet in packets:
                    self._on_packet(packet)
                if not self.is_open:
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
        assert self._session is not None
        step = self._session.receive(packet, time.monotonic())
        self._queue_step(step)
        for event in step.events:
            if type(event) is Message:
                self._listener.on_engine_message(event.data)
            elif isinstance(event, Closed):
                raise TransportFailure(_R(event.reason.value), event.detail)

    def _queue_step(self, step: Step) -> None:
        for packet in step.send:
            self._queue(packet)

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
        session = self._session
        assert session is not None
        step = session.on_timer(time.monotonic())
        while step.timer is not None:
            gevent.sleep(step.timer)
            step = session.on_timer(time.monotonic())
        for event in step.events:
            if isinstance(event, Closed):
                self._fail(_R(event.reason.value), event.detail)

    # -- upgrade ---------------------------------------------------------------------

    def _probe(self) -> None:
        websocket: WebSocketTransport | None = None
        timeout = self._options.upgrade_timeout
        try:
            with gevent.Timeout(timeout, TimeoutError(f"upgrade took over {timeout:g}s")):
                websocket = WebSocketTransport.connect(self._endpoint, self._options, self.sid)
                websocket.send(list(ClientSession.probe().send))
                ClientSession.probe_answered(websocket.receive()[0])
                self._pausing = True
                self._wakeup.set()
                self._writer_idle.wait()  # the POST in flight, if any, is done
                assert self._session is not None
                step = self._session.complete_upgrade()
                if not any(isinstance(event, Upgraded) for event in step.events):
                    return
                websocket.send(list(step.send))
            self._retired, self._transport, websocket = self._transport, websocket, None
            logger.debug("engine session %s upgraded to websocket", self.sid)
        except (TransportFailure, OSError, RemoteProtocolError) as exc:
            logger.info("upgrade to WebSocket failed, staying on polling: %s", exc)
        finally:
            if websocket is not None:
                websocket.close()
            self._pausing = False
            self._wakeup.set()
