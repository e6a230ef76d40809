"""The connection to one server: an Engine.IO session, the namespaces multiplexed on it,
and the reconnection loop (the JavaScript client's ``Manager``).

Theory of operation. :meth:`Manager.connect` makes the first connection in the caller's
greenlet and raises if it fails; from then on a *supervisor* greenlet waits for the
session to end and, unless the end was deliberate, reconnects with exponential backoff,
each new session sending CONNECT for every namespace still active. Invariants:

* Only the current session is heard: each session's listener carries its generation,
  and a stale one is ignored.
* No reconnection after "io server disconnect" (every namespace closed by the server),
  "io client disconnect" (:meth:`disconnect`), nor once attempts are exhausted.
* :meth:`_finish` closes the sockets, lets the dispatcher drain, and only then sets
  ``_finished``, which :meth:`wait` awaits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event

from geventsio.backoff import Backoff
from geventsio.client.dispatch import Dispatcher
from geventsio.client.engine import EngineConnection
from geventsio.client.errors import (
    DELIBERATE_REASONS,
    ClientDisconnectReason,
    ConnectFailed,
    NamespaceRefused,
)
from geventsio.client.options import ClientOptions
from geventsio.client.socket import Encoded, Socket
from geventsio.client.transports import Endpoint
from geventsio.exceptions import LocalProtocolError, NotConnected, RemoteProtocolError
from geventsio.options import Transport
from geventsio.protocol.serializers import PacketDecoder
from geventsio.protocol.socketio import DecoderLimits

logger = logging.getLogger(__name__)

Auth = dict[str, Any] | Callable[[], dict[str, Any] | None] | None


@dataclass(frozen=True)
class Target:
    """Where to connect and how."""

    endpoint: Endpoint
    transports: tuple[Transport, ...]
    auth: Auth


class _SessionListener:
    """Forwards one session's events to the manager while it is the current one."""

    def __init__(self, manager: Manager, generation: int) -> None:
        self._manager = manager
        self._generation = generation

    def on_engine_message(self, data: str | bytes) -> None:
        if self._manager.generation == self._generation:
            self._manager.on_message(data)

    def on_engine_close(self, reason: ClientDisconnectReason, description: str) -> None:
        if self._manager.generation == self._generation:
            self._manager.on_session_lost(reason, description)


class Manager:
    """One server connection and its namespaces.

    :param options: the client options.
    :param dispatcher: runs the application's handlers.
    """

    def __init__(self, options: ClientOptions, dispatcher: Dispatcher) -> None:
        self._options = options
        self._dispatcher = dispatcher
        self._backoff = Backoff(
            options.reconnection_delay,
            options.reconnection_delay_max,
            options.randomization_factor,
            random=options.random,
        )
        self.generation = 0
        self._target: Target | None = None
        self._engine: EngineConnection | None = None
        self._decoder: PacketDecoder = self._options.codec.decoder(DecoderLimits())
        self._sockets: dict[str, Socket] = {}
        self._lost: gevent.event.AsyncResult[tuple[ClientDisconnectReason, str]] = (
            gevent.event.AsyncResult()
        )
        self._supervisor: gevent.Greenlet | None = None
        self._stop = gevent.event.Event()
        self._finished = gevent.event.Event()
        self._finished.set()

    # -- state -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Connected to every namespace still wanted (and there is one)."""
        sockets = [s for s in self._sockets.values() if s.active]
        engine = self._engine
        return (
            bool(sockets)
            and engine is not None
            and engine.is_open
            and all(s.connected for s in sockets)
        )

    @property
    def transport(self) -> Transport | None:
        """The transport of the current session, if any."""
        engine = self._engine
        return None if engine is None or not engine.is_open else engine.transport

    def sid(self, namespace: str) -> str | None:
        """The socket id of a namespace, while it is connected."""
        socket = self._sockets.get(namespace)
        return None if socket is None else socket.sid

    def recovered(self, namespace: str) -> bool:
        """Whether the namespace's last connection resumed its previous session."""
        socket = self._sockets.get(namespace)
        return socket is not None and socket.connected and socket.recovered

    def socket(self, namespace: str) -> Socket:
        """The socket of a namespace, to emit on.

        :raises NotConnected: not connected at all, or not to this namespace.
        """
        if self._finished.is_set() or self._stop.is_set():
            raise NotConnected("the client is not connected: call connect() first")
        socket = self._sockets.get(namespace)
        if socket is None:
            raise NotConnected(f"namespace {namespace!r} was not requested in connect()")
        return socket

    # -- connecting ------------------------------------------------------------------

    def connect(self, target: Target, namespaces: list[str], wait_timeout: float) -> None:
        """Connect to every namespace, or raise; then reconnect by itself when needed.

        :raises ConnectFailed: see :meth:`geventsio.client.Client.connect`.
        :raises LocalProtocolError: already connected.
        """
        if not self._finished.is_set():
            raise LocalProtocolError("already connected or connecting: disconnect() first")
        self._finished.clear()
        self._stop.clear()
        self._supervisor = None  # none until the first connection is made
        self._backoff.reset()
        self._target = target
        self._sockets = {ns: Socket(ns, self, self._dispatcher, self._options) for ns in namespaces}
        self._dispatcher.start()
        try:
            self._first_connection(wait_timeout)
        except BaseException as exc:
            if isinstance(exc, ConnectFailed) and not isinstance(exc, NamespaceRefused):
                for socket in self._sockets.values():
                    if socket.active and not socket.connected:
                        self._dispatcher.fire(socket.namespace, "connect_error", (exc,))
            self._shutdown()
            raise
        self._supervisor = gevent.spawn(self._supervise)

    def _first_connection(self, wait_timeout: float) -> None:
        timer = gevent.Timeout(wait_timeout)
        timer.start()
        try:
            self._open_session()
            for socket in list(self._sockets.values()):
                socket.settled.get()
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            assert self._target is not None
            address = self._target.endpoint.address
            raise ConnectFailed(f"not connected to {address} within {wait_timeout:g}s") from None
        finally:
            timer.close()

    def _open_session(self) -> None:
        """Open a new Engine.IO session and send CONNECT for every active namespace.

        :raises ConnectFailed: the session could not be opened, or the auth callable
            failed.
        """
        assert self._target is not None
        self.generation += 1
        self._lost = gevent.event.AsyncResult()
        self._decoder = self._options.codec.decoder(DecoderLimits())
        engine = EngineConnection(
            self._target.endpoint,
            self._options,
            self._target.transports,
            _SessionListener(self, self.generation),
        )
        engine.open()
        self._engine = engine
        try:
            for socket in self._sockets.values():
                if socket.active:
                    socket.send_connect(self._auth_payload())
        except Exception as exc:
            engine.abort()
            self._engine = None
            raise ConnectFailed(f"cannot send CONNECT: {exc}") from exc

    def _auth_payload(self) -> dict[str, Any] | None:
        assert self._target is not None
        auth = self._target.auth
        payload = auth() if callable(auth) else auth
        if payload is not None and not isinstance(payload, dict):
            raise LocalProtocolError(f"auth must be a dict (or None), got {type(payload).__name__}")
        return payload

    # -- the session's events (in its reader greenlet) -------------------------------

    def on_message(self, data: str | bytes) -> None:
        """Decode a MESSAGE and hand the packet to its namespace."""
        try:
            packet = self._decoder.feed(data)
        except RemoteProtocolError as exc:
            logger.info("closing the connection: parse error: %s", exc)
            engine, self._engine = self._engine, None
            if engine is not None:
                engine.abort()
            self.on_session_lost(ClientDisconnectReason.PARSE_ERROR, str(exc))
            return
        if packet is None:
            return
        socket = self._sockets.get(packet.namespace)
        if socket is None or not socket.active:
            logger.debug("ignoring a packet for namespace %s", packet.namespace)
            return
        socket.on_packet(packet)

    def on_session_lost(self, reason: ClientDisconnectReason, description: str) -> None:
        """The session ended by itself: tell the namespaces, wake the supervisor."""
        self._engine = None
        for socket in self._sockets.values():
            if socket.active:
                socket.on_connection_lost(reason, description)
        self._lost.set((reason, description))

    # -- SocketOwner -----------------------------------------------------------------

    def write(self, pieces: Encoded) -> None:
        """Send one encoded packet on the current session."""
        engine = self._engine
        if engine is not None:
            for piece in pieces:
                engine.send(piece)

    def socket_closed(self, socket: Socket) -> None:
        """A namespace was closed by the server; with none left, close the connection."""
        if any(s.active for s in self._sockets.values()) or self._supervisor is None:
            return
        self._stop.set()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        self._lost.set((ClientDisconnectReason.IO_SERVER_DISCONNECT, "no namespace left"))

    # -- reconnecting ----------------------------------------------------------------

    def _supervise(self) -> None:
        while True:
            reason, _ = self._lost.get()
            if (
                self._stop.is_set()
                or reason in DELIBERATE_REASONS
                or not self._options.reconnection
                or not any(s.active for s in self._sockets.values())
                or not self._reconnect()
            ):
                break
        self._finish()

    def _reconnect(self) -> bool:
        """Try until connected (True), out of attempts or stopped (False)."""
        backoff = self._backoff
        while True:
            if backoff.attempts >= self._options.reconnection_attempts:
                backoff.reset()
                logger.info("reconnection failed: out of attempts")
                self._dispatcher.fire(None, "reconnect_failed")
                return False
            if self._stop.wait(backoff.duration()):
                return False
            attempt = backoff.attempts
            self._dispatcher.fire(None, "reconnect_attempt", (attempt,))
            try:
                self._open_session()
            except ConnectFailed as exc:
                logger.info("reconnection attempt %d failed: %s", attempt, exc)
                self._dispatcher.fire(None, "reconnect_error", (exc,))
                for socket in self._sockets.values():
                    if socket.active:
                        self._dispatcher.fire(socket.namespace, "connect_error", (exc,))
                continue
            logger.info("reconnected after %d attempt(s)", attempt)
            backoff.reset()
            self._dispatcher.fire(None, "reconnect", (attempt,))
            return True

    # -- ending ----------------------------------------------------------------------

    def disconnect(self) -> None:
        """Disconnect every namespace, close the connection, stop reconnecting."""
        if self._finished.is_set():
            return
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and supervisor is not gevent.getcurrent():
            supervisor.kill()  # wherever it is, even in _finish(): that is re-entrant
        self._stop.set()
        self._shutdown()

    def _shutdown(self) -> None:
        for socket in self._sockets.values():
            socket.disconnect()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        self._finish()

    def _finish(self) -> None:
        """Close everything for good. Every step is idempotent, so a caller killed
        midway (the supervisor, by :meth:`disconnect`) leaves the rest to the next."""
        self._stop.set()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.abort()
        for socket in self._sockets.values():
            socket.close(NotConnected("the client is disconnected"))
        self._dispatcher.stop()
        self._dispatcher.join()
        self._finished.set()

    def wait(self) -> None:
        """Block until the client is disconnected for good and its handlers have run.

        :raises LocalProtocolError: called from a handler (it would wait for itself).
        """
        if self._dispatcher.in_worker():
            raise LocalProtocolError("wait() called from a handler would never return")
        self._finished.wait()
        self._dispatcher.join()
