"""``SocketIOTestClient``: Flask-SocketIO's test client, in process, on the real server.

Theory of operation. The client plays one Engine.IO session. :class:`_TestEngineSocket`
has the part of geventsio's ``EngineSocket`` that the Socket.IO layer uses (``sid``,
``environ``, ``transport``, ``writable``, ``send_packets``, ``close``). What the client
sends is encoded by the real Socket.IO codec and handed to ``Server.on_engine_message``,
as the transports do; what the server sends arrives in ``send_packets`` and is decoded by
the real codec. Handlers therefore run through the real connection code, in the
connection's worker greenlet, with the real contexts.

Flask-SocketIO's tests read results right after ``emit()``. So every call that sends
something then waits until the server has handled it: it sends a CONNECT for a namespace
that never exists (the barrier) and waits for its CONNECT_ERROR. The server handles one
connection's packets in order, so once that answer is back everything sent before it has
been handled: handlers ran, acknowledgements and events were written. Waits are bounded
by :attr:`SocketIOTestClient.timeout`. An exception a handler lets escape is raised again
by the call that sent the event, as Flask-SocketIO's synchronous test client does.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import flask
from flask.testing import EnvironBuilder
from gevent.event import Event

import geventsio
from flask_ext.dispatch import TEST_BARRIER_NAMESPACE, TEST_RECORDER_KEY
from geventsio.options import Transport
from geventsio.protocol import socketio as codec

if TYPE_CHECKING:
    from flask_ext.extension import SocketIO

_PLAIN = (str, int, float, bool)


class _TestEngineSocket:
    """The Engine.IO session of a test client (the surface the Socket.IO layer uses)."""

    def __init__(
        self,
        server: geventsio.Server,
        environ: dict[str, Any],
        on_packet: Callable[[codec.Packet], None],
        on_close: Callable[[], None],
    ) -> None:
        self.sid = geventsio.EngineSid(secrets.token_urlsafe(15))
        self.environ = environ
        self.transport = Transport.POLLING
        self.closed = False
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

    def send_packets(self, packets: Sequence[Any]) -> None:
        """Decode what the server sends (Engine.IO MESSAGE packets)."""
        for outgoing in packets:
            if self.closed:
                return
            if outgoing.packet.type.name != "MESSAGE":
                continue
            packet = self._decoder.feed(outgoing.packet.data)
            if packet is not None:
                self._on_packet(packet)

    def close(
        self, reason: geventsio.DisconnectReason = geventsio.DisconnectReason.FORCED_CLOSE, **_: Any
    ) -> None:
        """End the session (the server's side hears ``reason``)."""
        if self.closed:
            return
        self.closed = True
        self._server.on_engine_close(cast(Any, self), reason)
        self._on_close()


class SocketIOTestClient:
    """A Socket.IO client for tests, as Flask-SocketIO's: ``socketio.test_client(app)``.

    :param app: the Flask application (builds the handshake request).
    :param socketio: the application's :class:`~flask_ext.SocketIO`.
    :param namespace: the namespace to connect to (default ``"/"``).
    :param query_string: the handshake's query string (``"a=1"`` or ``"?a=1"``).
    :param headers: extra handshake headers.
    :param auth: the auth payload the ``connect`` handler receives.
    :param flask_test_client: a Flask test client whose cookies (the session, a login)
        the handshake carries.

    The server handles this client's events one by one, in order: creating a test client
    sets the server's ``async_handlers`` to False, as Flask-SocketIO's does.
    """

    #: Seconds a call waits for the server to handle what it sent.
    timeout = 30.0

    def __init__(
        self,
        app: flask.Flask,
        socketio: SocketIO,
        namespace: str | None = None,
        query_string: str | None = None,
        headers: dict[str, str] | None = None,
        auth: Any = None,
        flask_test_client: Any = None,
    ) -> None:
        if socketio.server is None:
            raise RuntimeError("SocketIO is not attached to an application yet")
        self.app = app
        self.socketio = socketio
        self.server = socketio.server
        self.server.async_handlers = False
        self.flask_test_client = flask_test_client
        #: Namespaces and whether they are connected.
        self.connected: dict[str, bool] = {}
        #: Socket ids by namespace.
        self.sids: dict[str, str] = {}
        #: The CONNECT_ERROR payloads of refused namespaces.
        self.connect_errors: dict[str, Any] = {}
        self.queue: list[dict[str, Any]] = []
        self._acks: dict[int, list[Any]] = {}
        self._ack_ids = itertools.count(1)
        self._replies: dict[str, Event] = {}
        self._errors: list[Exception] = []
        self._engine: _TestEngineSocket | None = None
        self._handshake: tuple[str | None, tuple[tuple[str, str], ...]] = (None, ())
        self.connect(namespace=namespace, query_string=query_string, headers=headers, auth=auth)

    @property
    def eio_sid(self) -> str | None:
        """The id of the client's Engine.IO session (None when it has none)."""
        return self._engine.sid if self._engine is not None else None

    def get_sid(self, namespace: str | None = None) -> str | None:
        """The socket id the server gave this client in ``namespace``."""
        return self.sids.get(namespace or "/")

    def is_connected(self, namespace: str | None = None) -> bool:
        """Whether ``namespace`` (default ``"/"``) is connected."""
        return self.connected.get(namespace or "/", False)

    # -- connecting ------------------------------------------------------------------

    def connect(
        self,
        namespace: str | None = None,
        query_string: str | None = None,
        headers: dict[str, str] | None = None,
        auth: Any = None,
    ) -> None:
        """Connect to a namespace; returns once the server accepted or refused it.

        The query string and headers belong to the Engine.IO session: a client that is
        connected to some namespace cannot connect to another with different ones.
        """
        name = namespace or "/"
        if self.is_connected(name):
            return
        self._open_engine(query_string, headers)
        reply = self._expect(name)
        self._send(codec.Packet(codec.PacketType.CONNECT, name, auth))
        self._wait(reply, f"the connection to {name}")
        if not any(self.connected.values()):
            self._close_engine()
        self._raise_errors()

    def disconnect(self, namespace: str | None = None) -> None:
        """Disconnect from a namespace (the whole session after the last one)."""
        name = namespace or "/"
        if not self.is_connected(name):
            raise RuntimeError("not connected")
        self._send(codec.Packet(codec.PacketType.DISCONNECT, name))
        self._barrier()
        self.connected.pop(name, None)
        if not any(self.connected.values()):
            self._close_engine()
        self._raise_errors()

    def _open_engine(self, query_string: str | None, headers: dict[str, str] | None) -> None:
        wanted = (
            query_string.lstrip("?") if query_string else None,
            tuple(sorted((headers or {}).items())),
        )
        engine = self._engine
        if engine is not None and not engine.closed:
            same = (query_string is None or wanted[0] == self._handshake[0]) and (
                headers is None or wanted[1] == self._handshake[1]
            )
            if same:
                return
            if any(self.connected.values()):
                raise ValueError(
                    "this test client is connected with another query string "
                    "or headers: use a second test client"
                )
            self._close_engine()
        self._handshake = wanted
        self._engine = _TestEngineSocket(
            self.server, self._environ(*wanted), self._receive, self._engine_closed
        )
        self.server.on_engine_connect(cast(Any, self._engine))

    def _environ(
        self, query_string: str | None, headers: tuple[tuple[str, str], ...]
    ) -> dict[str, Any]:
        client = self.flask_test_client
        builder = EnvironBuilder(
            self.app,
            path=self.server.engine.options.path,
            query_string=query_string,
            headers=list(headers),
            environ_base=dict(getattr(client, "environ_base", {})),
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        if client is not None:
            client._add_cookies_to_wsgi(environ)  # Werkzeug's test client's cookie jar
        plain: dict[str, Any] = {
            key: value for key, value in environ.items() if isinstance(value, _PLAIN)
        }
        plain[TEST_RECORDER_KEY] = self._errors.append
        return plain

    def _close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close(geventsio.DisconnectReason.TRANSPORT_CLOSE)

    def _engine_closed(self) -> None:
        for name in self.connected:
            self.connected[name] = False
        replies, self._replies = self._replies, {}
        for reply in replies.values():
            reply.set()

    # -- sending ---------------------------------------------------------------------

    def emit(
        self,
        event: str,
        *args: Any,
        callback: bool = False,
        namespace: str | None = None,
        broadcast: bool = False,
    ) -> Any:
        """Send an event and wait until the server has handled it.

        :param callback: ask for an acknowledgement and return it (its argument, or the
            list of its arguments when there are several or none).
        :param broadcast: accepted and ignored, as by Flask-SocketIO's test client (a
            client cannot broadcast; the handler decides).
        :raises RuntimeError: the namespace is not connected.
        :raises TypeError: the arguments cannot be serialised.
        """
        name = namespace or "/"
        if not self.is_connected(name):
            raise RuntimeError("not connected")
        ack_id = next(self._ack_ids) if callback else None
        self._send(codec.Packet(codec.PacketType.EVENT, name, [event, *args], ack_id))
        self._barrier()
        self._raise_errors()
        if ack_id is None:
            return None
        ack = self._acks.pop(ack_id, None)
        if ack is None:
            return None
        return ack[0] if len(ack) == 1 else ack

    def send(
        self, data: Any, json: bool = False, callback: bool = False, namespace: str | None = None
    ) -> Any:
        """Send a ``message`` event (``json=True``: a ``json`` event); see :meth:`emit`."""
        return self.emit(
            "json" if json else "message", data, callback=callback, namespace=namespace
        )

    def get_received(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """The events received in ``namespace`` since the last call, oldest first, as
        ``{"name", "args", "namespace"}`` dicts (``args`` is a list, but the bare value
        for ``message`` and ``json`` events, as in Flask-SocketIO).

        :raises RuntimeError: the namespace is not connected.
        """
        name = namespace or "/"
        if not self.is_connected(name):
            raise RuntimeError("not connected")
        self._barrier()
        received = [item for item in self.queue if item["namespace"] == name]
        self.queue = [item for item in self.queue if item["namespace"] != name]
        return received

    def _send(self, packet: codec.Packet) -> None:
        engine = self._engine
        assert engine is not None
        try:
            parts = codec.encode(packet)
        except geventsio.LocalProtocolError as exc:
            raise TypeError(str(exc)) from exc
        for part in parts:
            self.server.on_engine_message(cast(Any, engine), part)

    # -- waiting ---------------------------------------------------------------------

    def _expect(self, namespace: str) -> Event:
        reply = Event()
        self._replies[namespace] = reply
        return reply

    def _wait(self, reply: Event, what: str) -> None:
        if self._engine is None or self._engine.closed:
            return
        if not reply.wait(self.timeout):
            raise RuntimeError(
                f"the server did not finish handling {what} within "
                f"{self.timeout} s (a handler is still running)"
            )

    def _barrier(self) -> None:
        """Wait until the server has handled everything sent so far."""
        if self._engine is None or self._engine.closed:
            return
        reply = self._expect(TEST_BARRIER_NAMESPACE)
        self._send(codec.Packet(codec.PacketType.CONNECT, TEST_BARRIER_NAMESPACE))
        self._wait(reply, "what this client sent")

    def _raise_errors(self) -> None:
        if self._errors:
            error = self._errors[0]
            self._errors.clear()
            raise error

    # -- receiving -------------------------------------------------------------------

    def _receive(self, packet: codec.Packet) -> None:
        kind = packet.type
        name = packet.namespace
        if kind is codec.PacketType.EVENT:
            event, args = packet.data[0], list(packet.data[1:])
            if event in ("message", "json"):
                self.queue.append(
                    {"name": event, "args": args[0] if args else None, "namespace": name}
                )
            else:
                self.queue.append({"name": event, "args": args, "namespace": name})
        elif kind is codec.PacketType.ACK:
            assert packet.id is not None
            self._acks[packet.id] = list(packet.data)
        elif kind is codec.PacketType.CONNECT:
            self.connected[name] = True
            self.sids[name] = packet.data["sid"]
            self._resolve(name)
        elif kind is codec.PacketType.CONNECT_ERROR:
            if name != TEST_BARRIER_NAMESPACE:
                self.connected[name] = False
                self.connect_errors[name] = packet.data
            self._resolve(name)
        elif kind is codec.PacketType.DISCONNECT:
            self.connected[name] = False

    def _resolve(self, namespace: str) -> None:
        reply = self._replies.pop(namespace, None)
        if reply is not None:
            reply.set()
