"""The Socket.IO server: namespaces over Engine.IO connections."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from geventsio._types import DisconnectReason, EngineSid
from geventsio.adapters.base import Adapter, NamespaceView, RestoredSession, RoomsArgument
from geventsio.adapters.memory import InMemoryAdapter
from geventsio.adapters.recovery import SessionAwareAdapter
from geventsio.engine.interface import EngineSession
from geventsio.engine.lending import LendingWatch
from geventsio.engine.observer import combine
from geventsio.engine.server import EngineServer, StartResponse
from geventsio.exceptions import ConnectionRefused
from geventsio.options import EngineOptions, RecoveryOptions, RecoverySetting
from geventsio.protocol.serializers import Serializer, serializer_named
from geventsio.protocol.socketio import DecoderLimits, Packet, PacketType
from geventsio.server.admin.auth import AuthOption
from geventsio.server.admin.ui import AdminUI
from geventsio.server.broadcast import BroadcastOperator
from geventsio.server.connection import Connection
from geventsio.server.handlers import Handler
from geventsio.server.namespace import ErrorHandler, Namespace, NamespaceMatcher, ParentNamespace
from geventsio.server.observer import Observer, ServerObservers
from geventsio.server.socket import Socket
from geventsio.server.threadsafe import HubHandoff
from geventsio.server.workers import WorkerPool

logger = logging.getLogger(__name__)

AdapterFactory = Callable[[NamespaceView], Adapter]


class Server:
    """A Socket.IO v5 server (Engine.IO v4 underneath), for the official clients; with
    the engine option ``allow_eio3``, also Socket.IO v4 on Engine.IO v3 for
    socket.io-client 2.x (see :mod:`geventsio.server.dialect`).

    :param adapter: builds the adapter of each namespace (default: in memory, keeping
        packets for recovery when ``connection_state_recovery`` is on).
    :param connection_state_recovery: off by default; True, or a mapping of
        :class:`~geventsio.options.RecoveryOptions` names (``max_disconnection_duration``,
        ``skip_middlewares``, ``max_buffered_packets``), lets a client that lost its
        connection briefly come back with the same socket id, rooms, ``data`` and the
        broadcasts it missed (see docs/recovery.md).
    :param connect_timeout: seconds a new connection has to join a namespace.
    :param max_attachments: binary attachments one incoming packet may have.
    :param max_json_depth: nesting allowed in an incoming packet's JSON.
    :param async_handlers: run each incoming event in its own greenlet (events of one
        client may then be handled out of order); default False: in order, one by one.
    :param max_queued_events: packets (events, namespace connects and disconnects) one
        connection may have waiting for its handlers; when that many wait, the server
        stops reading that client until its handlers have worked the queue down to half
        (back-pressure: nothing is dropped, order is kept).
    :param max_concurrent_handlers: with ``async_handlers``, event handlers of one
        connection that may run at once; when that many run, the server stops reading
        that client until half of them have returned (the same back-pressure).
    :param cleanup_empty_child_namespaces: remove a dynamic child namespace (and close
        its adapter) when its last socket leaves (Node's ``cleanupEmptyChildNamespaces``).
    :param max_child_namespaces: children one dynamic parent may have at once; a client
        connecting to one more gets a ``connect_error`` ("Too many namespaces").
    :param serializer: the packet format, ``"json"`` (Socket.IO's default parser) or
        ``"msgpack"`` (clients using the npm ``socket.io-msgpack-parser``; needs the
        ``msgpack`` extra). Every client of the server must use the same one.
    :param engine_options: Engine.IO options (see :class:`~geventsio.EngineOptions`):
        ``ping_interval``, ``ping_timeout``, ``max_payload``, ``cors_allowed_origins``,
        ``path``, ``transports``, ``cookie``, ``allow_request``...
    """

    def __init__(
        self,
        *,
        adapter: AdapterFactory | None = None,
        connection_state_recovery: RecoverySetting = None,
        connect_timeout: float = 45.0,
        max_attachments: int = 10,
        max_json_depth: int = 32,
        async_handlers: bool = False,
        max_queued_events: int = 1000,
        max_concurrent_handlers: int = 100,
        cleanup_empty_child_namespaces: bool = False,
        serializer: str = "json",
        max_child_namespaces: int = 10_000,
        **engine_options: Any,
    ) -> None:
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        if max_queued_events <= 0:
            raise ValueError("max_queued_events must be positive")
        if max_concurrent_handlers <= 0:
            raise ValueError("max_concurrent_handlers must be positive")
        self.max_concurrent_handlers = max_concurrent_handlers
        if max_child_namespaces <= 0:
            raise ValueError("max_child_namespaces must be positive")
        self.cleanup_empty_child_namespaces = cleanup_empty_child_namespaces
        self.max_child_namespaces = max_child_namespaces
        #: The recovery options, or None when connection state recovery is off.
        self.recovery: RecoveryOptions | None = RecoveryOptions.from_setting(
            connection_state_recovery
        )
        if adapter is None:
            adapter = SessionAwareAdapter if self.recovery is not None else InMemoryAdapter
        self.adapter_factory: AdapterFactory = adapter
        self.connect_timeout = connect_timeout
        #: The packet format of every connection (see the ``serializer`` parameter).
        self.serializer: Serializer = serializer_named(serializer)
        self.decoder_limits = DecoderLimits(
            max_attachments=max_attachments, max_depth=max_json_depth
        )
        self.async_handlers = async_handlers
        self.max_queued_events = max_queued_events
        self.error_handler: ErrorHandler | None = None
        self.engine = EngineServer(self, EngineOptions(**engine_options))
        #: Told of what happens (metrics, the Admin UI); see :meth:`add_observer`.
        self.observer: Observer | None = None
        #: The greenlets that run the connections' queued work, and their WebSockets'
        #: readers (a parked greenlet costs a switch to start, a new one a fresh stack).
        self.workers = WorkerPool()
        self.engine.spawn = self.workers.submit
        #: Starts a relay reader for a WebSocket whose reader runs a job that blocked.
        self.lending = LendingWatch()
        self.connections: dict[EngineSid, Connection] = {}
        self.namespaces: dict[str, Namespace] = {}
        self.parent_namespaces: list[ParentNamespace] = []
        self._handoff = HubHandoff()
        main = self.of("/")
        if self.recovery is not None and not main.adapter.keeps_sessions:
            logger.warning(
                "connection_state_recovery is on, but %s keeps no sessions: clients will "
                "get fresh sessions (use the default adapter or the Redis Streams one)",
                type(main.adapter).__name__,
            )

    def add_observer(self, observer: Observer) -> None:
        """Tell ``observer`` too of what happens from now on (engine events included)."""
        self.observer = combine(self.observer, observer, ServerObservers)
        self.engine.observer = self.observer

    def instrument(
        self,
        auth: AuthOption,
        namespace: str = "/admin",
        read_only: bool = False,
        server_id: str | None = None,
        mode: str = "development",
    ) -> AdminUI:
        """Serve the Socket.IO Admin UI's namespace (https://admin.socket.io), as Node's
        ``instrument()`` from ``@socket.io/admin-ui`` and python-socketio's do.

        :param auth: ``{"username": ..., "password": <bcrypt hash>}`` (a list of them, or
            ``f(auth_payload) -> bool``); ``None`` for none, which logs a warning. The
            ``admin`` extra (``bcrypt``) checks hashes; :func:`geventsio.hash_password`
            makes one.
        :param namespace: the namespace the UI connects to.
        :param read_only: offer no actions (join, leave, disconnect, emit).
        :param server_id: this server's name in the UI (default: host name and pid).
        :param mode: ``"development"`` (every socket, room and event is reported) or
            ``"production"`` (the server stats only).
        :raises ValueError: a bad option (a password that is not a bcrypt hash...).
        """
        return AdminUI(
            self,
            auth=auth,
            namespace=namespace,
            read_only=read_only,
            server_id=server_id,
            mode=mode,
        )

    # -- namespaces and handlers --------------------------------------------------------

    def of(self, name: str | NamespaceMatcher) -> Any:
        """The namespace called ``name`` (created on first use), or a dynamic parent
        namespace for a compiled regular expression or a ``f(name, auth)`` predicate."""
        if isinstance(name, str):
            if not name.startswith("/"):
                name = "/" + name
            namespace = self.get_namespace(name)
            if namespace is None:
                namespace = self.namespaces[name] = Namespace(self, name)
            return namespace
        parent = ParentNamespace(self, name)
        self.parent_namespaces.append(parent)
        return parent

    def on(self, event: str, handler: Handler | None = None, namespace: str = "/") -> Any:
        """Register a handler in a namespace (default ``"/"``); usable as a decorator."""
        return self.of(namespace).on(event, handler)

    def event(self, function: Handler) -> Handler:
        """Register ``function`` for the event named after it, in ``"/"``."""
        return self.of("/").event(function)  # type: ignore[no-any-return]

    def use(self, middleware: Callable[[Socket, Any], None], namespace: str = "/") -> Any:
        """Add a connection middleware to a namespace (default ``"/"``)."""
        return self.of(namespace).use(middleware)

    def on_error(self, handler: ErrorHandler) -> ErrorHandler:
        """Call ``handler(socket, exception)`` when any handler raises (namespaces may
        have their own)."""
        self.error_handler = handler
        return handler

    def get_namespace(self, name: str) -> Namespace | None:
        """The namespace serving ``name`` (static, or an existing dynamic child), without
        creating one."""
        namespace = self.namespaces.get(name)
        if namespace is None:
            for parent in self.parent_namespaces:
                if name in parent.children:
                    return parent.children[name]
        return namespace

    def _namespace_for(self, name: str, auth: Any) -> Namespace | None:
        namespace = self.get_namespace(name)
        if namespace is not None:
            return namespace
        for parent in self.parent_namespaces:
            try:
                matched = parent.matches(name, auth)
            except Exception:
                logger.exception("the dynamic namespace matcher raised for %r", name)
                continue
            if matched:
                return parent.child(name)  # may refuse: too many children
        return None

    # -- the main namespace's broadcasts ---------------------------------------------

    def to(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """Broadcast in ``"/"`` to the sockets in these rooms."""
        return self.of("/").to(*rooms)  # type: ignore[no-any-return]

    in_ = to

    def except_(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """Broadcast in ``"/"`` to every socket but those in these rooms."""
        return self.of("/").except_(*rooms)  # type: ignore[no-any-return]

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Broadcast in ``"/"`` and wait at most ``seconds`` for acknowledgements."""
        return self.of("/").timeout(seconds)  # type: ignore[no-any-return]

    @property
    def volatile(self) -> BroadcastOperator:
        """Broadcast in ``"/"``, dropping the packet for busy clients."""
        return self.of("/").volatile  # type: ignore[no-any-return]

    @property
    def local(self) -> BroadcastOperator:
        """Broadcast in ``"/"`` to this process's sockets only."""
        return self.of("/").local  # type: ignore[no-any-return]

    def emit(
        self,
        event: str,
        *args: Any,
        to: RoomsArgument | None = None,
        namespace: str = "/",
        **kwargs: Any,
    ) -> None:
        """Send an event from anywhere (a handler, a background greenlet, a plain HTTP
        view, another OS thread): to every socket of ``namespace``, or to the rooms in
        ``to``. From another OS thread the emit is handed to the server's thread (see
        :meth:`run_threadsafe`); errors are then logged, not raised.

        :raises NotSerialisable: the arguments cannot be serialised (a ``TypeError``).
        """
        operator = BroadcastOperator(self.of(namespace))
        if to is not None:
            operator = operator.to(to)
        self._handoff.call(operator.emit, event, *args, **kwargs)

    def run_threadsafe(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` in the OS thread the server was made in (its gevent
        hub's): at once when called from that thread, else as soon as the hub can, with
        the calls made from each thread kept in order. No monkey-patching is needed: the
        hand-off is gevent's thread-safe async watcher. Exceptions raised by a handed-over
        call are logged."""
        self._handoff.call(function, *args)

    def send(self, *args: Any, **kwargs: Any) -> None:
        """Emit a ``message`` event (see :meth:`emit`)."""
        self.emit("message", *args, **kwargs)

    def call(
        self, event: str, *args: Any, timeout: float | None = None, namespace: str = "/"
    ) -> list[Any]:
        """Emit to every socket of a namespace and wait for their acknowledgements."""
        return self.of(namespace).call(event, *args, timeout=timeout)  # type: ignore[no-any-return]

    def fetch_sockets(self, namespace: str = "/") -> list[Any]:
        """Every socket of a namespace."""
        return self.of(namespace).fetch_sockets()  # type: ignore[no-any-return]

    def sockets_join(self, *rooms: RoomsArgument) -> None:
        """Make every socket of ``"/"`` join rooms (``sio.in_(room).sockets_join`` to
        select)."""
        self.of("/").sockets_join(*rooms)

    def sockets_leave(self, *rooms: RoomsArgument) -> None:
        """Make every socket of ``"/"`` leave rooms."""
        self.of("/").sockets_leave(*rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of ``"/"``."""
        self.of("/").disconnect_sockets(close)

    def on_server_side(self, event: str, handler: Handler | None = None) -> Any:
        """Handle an event another server of the cluster sent (namespace ``"/"``)."""
        return self.of("/").on_server_side(event, handler)

    def server_side_emit(self, event: str, *args: Any, **kwargs: Any) -> int:
        """Send an event to the other servers of the cluster (namespace ``"/"``)."""
        return self.of("/").server_side_emit(event, *args, **kwargs)  # type: ignore[no-any-return]

    def server_side_call(self, event: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """Send an event to the other servers and wait for their replies."""
        return self.of("/").server_side_call(event, *args, timeout=timeout)  # type: ignore[no-any-return]

    def close_room(self, room: str, namespace: str = "/") -> None:
        """Empty a room."""
        self.of(namespace).close_room(room)

    # -- serving ---------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The URL path the server answers at (the ``path`` option, normalised:
        ``"/socket.io/"`` by default)."""
        return self.engine.options.path

    def handle_request(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Serve one Engine.IO request (WSGIApp routes the Socket.IO path here)."""
        return self.engine.handle_request(environ, start_response)

    def shutdown(self, *, refuse_new: bool = False) -> None:
        """Close every connection; clients hear "transport close" and reconnect.

        :param refuse_new: the process is going away: refuse new connections (503) so
            that reconnecting clients find another server.
        """
        if self.observer is not None:
            self.observer.server_closing()
        if self.recovery is not None:
            # Keep every session before any client hears of the shutdown, so that a
            # client reconnecting at once to another server finds its session there.
            for connection in list(self.connections.values()):
                for socket in list(connection.sockets.values()):
                    socket.on_close(DisconnectReason.SERVER_SHUTTING_DOWN)
        self.engine.close_all(refuse_new=refuse_new)
        for namespace in self.all_namespaces():
            namespace.close_adapter()
        self.workers.close()
        self.lending.stop()
        self._handoff.close()

    def all_namespaces(self) -> list[Namespace]:
        """Every namespace: static ones and the children of dynamic parents."""
        children = [c for parent in self.parent_namespaces for c in parent.children.values()]
        return [*self.namespaces.values(), *children]

    # -- the engine's events -------------------------------------------------------------

    def on_engine_connect(self, socket: EngineSession) -> Connection:
        """A new Engine.IO session: wait for its namespace CONNECTs. Its messages and its
        close go straight to the returned :class:`Connection`."""
        connection = self.connections[socket.sid] = Connection(self, socket)
        if connection.dialect.joins_main_namespace:  # socket.io-client 2.x sends no CONNECT
            connection.run_soon(self.connect_namespace, connection, "/", {})
        return connection

    def on_engine_message(self, socket: EngineSession, data: str | bytes) -> None:
        """An Engine.IO message of a session that is not handed its Connection (an
        in-memory session of :mod:`geventsio.testing`): a Socket.IO packet or attachment."""
        connection = self.connections.get(socket.sid)
        if connection is not None:
            connection.on_engine_message(socket, data)

    def on_engine_close(self, socket: EngineSession, reason: DisconnectReason) -> None:
        """An Engine.IO session ended (as :meth:`on_engine_message`)."""
        connection = self.connections.get(socket.sid)
        if connection is not None:
            connection.on_engine_close(socket, reason)

    def connection_closed(self, connection: Connection) -> None:
        """Forget a connection whose Engine.IO session ended."""
        if self.connections.get(connection.engine.sid) is connection:
            del self.connections[connection.engine.sid]

    def connect_namespace(self, connection: Connection, name: str, auth: Any) -> None:
        """Handle a CONNECT packet (in the connection's worker)."""
        if connection.closed:
            return
        if name in connection.sockets:
            logger.info("connection %s: already connected to %s", connection.engine.sid, name)
            return
        try:
            namespace = self._namespace_for(name, auth)
        except ConnectionRefused as refusal:
            # The namespace itself is refused: an object in both dialects, as Node's
            # {"message": "Invalid namespace"}.
            self._refuse(connection, name, refusal.error_payload())
            return
        if namespace is None:
            self._refuse(connection, name, {"message": "Invalid namespace"})
            return
        restored = self._restore_session(namespace, auth) if connection.dialect.recovers else None
        socket = Socket(namespace, connection, auth, restored.state if restored else None)
        try:
            namespace.admit(socket, auth, restored.missed if restored else ())
        except ConnectionRefused as refusal:
            logger.info(
                "connection %s: %s refused: %s", connection.engine.sid, name, refusal.message
            )
            self._refuse_admission(connection, name, refusal)
            return
        except Exception as exc:
            logger.exception("connection %s: connecting to %s failed", connection.engine.sid, name)
            namespace.report_error(socket, exc)
            self._refuse_admission(connection, name, ConnectionRefused("Internal server error"))
            return
        if not socket.connected:  # disconnect() was called while connecting
            namespace.remove(socket)
            namespace.discard_if_empty()
            self._refuse_admission(connection, name, ConnectionRefused())
            return
        if connection.closed:
            socket.on_close(DisconnectReason.TRANSPORT_CLOSE)
            return
        connection.namespace_connected(socket)  # the connection owns its sockets
        socket.acknowledge_connect()

    def _restore_session(self, namespace: Namespace, auth: Any) -> RestoredSession | None:
        """The session a client asks to recover (``pid`` and ``offset`` in its auth), if
        recovery is on and the adapter still has it."""
        if self.recovery is None or not isinstance(auth, dict):
            return None
        pid, offset = auth.get("pid"), auth.get("offset")
        if not isinstance(pid, str) or not isinstance(offset, str):
            return None
        try:
            return namespace.adapter.restore_session(pid, offset)
        except Exception:
            logger.exception("restoring session in %s failed; a fresh one follows", namespace.name)
            return None

    def _refuse(self, connection: Connection, name: str, payload: Any) -> None:
        connection.write_packet(Packet(PacketType.CONNECT_ERROR, name, payload))

    def _refuse_admission(
        self, connection: Connection, name: str, refusal: ConnectionRefused
    ) -> None:
        """A middleware or the connect handler refused: the payload is the dialect's."""
        self._refuse(connection, name, connection.dialect.refusal_payload(refusal))
