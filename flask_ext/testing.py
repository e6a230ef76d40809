"""``SocketIOTestClient``: Flask-SocketIO's test client, in process, on the real server.

It is a client of :class:`geventsio.testing.InMemoryHost`: what it sends is encoded by
the real codec and handled by the real connection code, in the connection's worker
greenlet, with the real contexts. Flask-SocketIO's tests read results right after
``emit()``, so every call that sends something then waits until the server has handled
it (:meth:`geventsio.testing.InMemorySession.settle`), bounded by
:attr:`SocketIOTestClient.timeout`. An exception a handler lets escape is raised again
by the call that sent the event, as Flask-SocketIO's synchronous test client does.
"""

from __future__ import annotations

import itertools
from typing import Any

import flask
from flask.testing import EnvironBuilder
from werkzeug.test import Client

import geventsio
from flask_ext.sending import Sender
from geventsio.testing import InMemoryHost, InMemorySession, Packet, PacketType

_PLAIN = (str, int, float, bool)

#: Flask-Login's remember-me cookie (``REMEMBER_COOKIE_NAME``), besides the session's.
_REMEMBER_COOKIE = "remember_token"


def _cookie_header(app: flask.Flask, client: Client) -> str | None:
    """The ``Cookie`` header the Flask test client would send: the session cookie and
    Flask-Login's remember-me cookie, read with the client's public ``get_cookie``."""
    names = (
        app.config.get("SESSION_COOKIE_NAME", "session"),
        app.config.get("REMEMBER_COOKIE_NAME", _REMEMBER_COOKIE),
    )
    pairs = []
    for name in names:
        cookie = client.get_cookie(name)
        if cookie is not None:
            pairs.append(f"{cookie.key}={cookie.value}")
    return "; ".join(pairs) or None


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
        socketio: Sender,
        namespace: str | None = None,
        query_string: str | None = None,
        headers: dict[str, str] | None = None,
        auth: Any = None,
        flask_test_client: Client | None = None,
    ) -> None:
        self.app = app
        self.socketio = socketio
        self.server = socketio.require_server()
        self.server.async_handlers = False
        self.host = InMemoryHost(self.server)
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
        self._session: InMemorySession | None = None
        self._handshake: tuple[str | None, tuple[tuple[str, str], ...]] = (None, ())
        self.connect(namespace=namespace, query_string=query_string, headers=headers, auth=auth)

    @property
    def eio_sid(self) -> str | None:
        """The id of the client's Engine.IO session (None when it has none)."""
        return self._session.sid if self._session is not None else None

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
        self._open_session(query_string, headers)
        self._send(Packet(PacketType.CONNECT, name, auth))
        if not any(self.connected.values()):
            self._close_session()

    def disconnect(self, namespace: str | None = None) -> None:
        """Disconnect from a namespace (the whole session after the last one)."""
        name = namespace or "/"
        if not self.is_connected(name):
            raise RuntimeError("not connected")
        self._send(Packet(PacketType.DISCONNECT, name))
        self.connected.pop(name, None)
        if not any(self.connected.values()):
            self._close_session()

    def _open_session(self, query_string: str | None, headers: dict[str, str] | None) -> None:
        wanted = (
            query_string.lstrip("?") if query_string else None,
            tuple(sorted((headers or {}).items())),
        )
        session = self._session
        if session is not None and not session.closed:
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
            self._close_session()
        self._handshake = wanted
        self._session = self.host.open(self._environ(*wanted), self._receive, self._closed)

    def _environ(
        self, query_string: str | None, headers: tuple[tuple[str, str], ...]
    ) -> dict[str, Any]:
        client = self.flask_test_client
        all_headers = list(headers)
        cookie = None if client is None else _cookie_header(self.app, client)
        if cookie is not None:
            all_headers.append(("Cookie", cookie))
        builder = EnvironBuilder(
            self.app,
            path=self.server.path,
            query_string=query_string,
            headers=all_headers,
            environ_base=dict(getattr(client, "environ_base", {})),
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        return {key: value for key, value in environ.items() if isinstance(value, _PLAIN)}

    def _close_session(self) -> None:
        if self._session is not None:
            self._session.close(geventsio.DisconnectReason.TRANSPORT_CLOSE)

    def _closed(self) -> None:
        for name in self.connected:
            self.connected[name] = False

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
        self._send(Packet(PacketType.EVENT, name, [event, *args], ack_id))
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
        self._settle()
        received = [item for item in self.queue if item["namespace"] == name]
        self.queue = [item for item in self.queue if item["namespace"] != name]
        return received

    def _send(self, packet: Packet) -> None:
        """Send ``packet``, wait until the server handled it, raise what a handler raised."""
        session = self._session
        assert session is not None
        try:
            session.send(packet)
        except geventsio.LocalProtocolError as exc:  # a reserved name, bad data...
            raise TypeError(str(exc)) from exc
        self._settle()
        error = session.take_error()
        if error is not None:
            raise error

    def _settle(self) -> None:
        if self._session is not None:
            self._session.settle(self.timeout)

    # -- receiving -------------------------------------------------------------------

    def _receive(self, packet: Packet) -> None:
        kind = packet.type
        name = packet.namespace
        if kind is PacketType.EVENT:
            event, args = packet.data[0], list(packet.data[1:])
            if event in ("message", "json"):
                self.queue.append(
                    {"name": event, "args": args[0] if args else None, "namespace": name}
                )
            else:
                self.queue.append({"name": event, "args": args, "namespace": name})
        elif kind is PacketType.ACK:
            assert packet.id is not None
            self._acks[packet.id] = list(packet.data)
        elif kind is PacketType.CONNECT:
            self.connected[name] = True
            self.sids[name] = packet.data["sid"]
        elif kind is PacketType.CONNECT_ERROR:
            self.connected[name] = False
            self.connect_errors[name] = packet.data
        elif kind is PacketType.DISCONNECT:
            self.connected[name] = False
