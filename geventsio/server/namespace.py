"""Namespaces: handlers, middleware and an adapter per name; dynamic parents by pattern."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from geventsio._types import Room, SocketId
from geventsio.adapters.base import Adapter, RoomsArgument
from geventsio.exceptions import ConnectionRefused, LocalProtocolError
from geventsio.options import RecoveryOptions
from geventsio.protocol.events import CONNECT
from geventsio.protocol.serializers import Serializer
from geventsio.protocol.socketio import Packet
from geventsio.server.broadcast import BroadcastOperator
from geventsio.server.handlers import BoundHandler, Handler, bind
from geventsio.server.socket import Socket

if TYPE_CHECKING:
    from geventsio.server.server import Server

logger = logging.getLogger(__name__)

ConnectMiddleware = Callable[[Socket, Any], None]
ErrorHandler = Callable[[Socket, Exception], Any]
NamespaceMatcher = re.Pattern[str] | Callable[[str, Any], bool]


class _Handlers:
    """Registration shared by namespaces and parent namespaces."""

    def __init__(self) -> None:
        self._handlers: dict[str, BoundHandler] = {}
        self._middlewares: list[ConnectMiddleware] = []
        self._error_handler: ErrorHandler | None = None

    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Register a handler for ``event``; usable as ``@namespace.on("chat")``.

        Event handlers get ``(socket, *args)`` and their return value is the ack.
        ``"connect"`` handlers get ``(socket)`` or ``(socket, auth)`` and may refuse by
        raising :class:`~geventsio.ConnectionRefused` or returning False;
        ``"disconnecting"`` and ``"disconnect"`` handlers get ``(socket)`` or
        ``(socket, reason)``; ``"*"`` catches events that have no handler and gets
        ``(socket, event, *args)``.
        """

        def register(function: Handler) -> Handler:
            self._handlers[event] = bind(event, function)
            return function

        return register(handler) if handler is not None else register

    def event(self, function: Handler) -> Handler:
        """Register ``function`` for the event named after it (``@namespace.event``)."""
        return self.on(function.__name__, function)  # type: ignore[no-any-return]

    def use(self, middleware: ConnectMiddleware) -> ConnectMiddleware:
        """Add a connection middleware ``middleware(socket, auth)``, run before the connect
        handler; raising :class:`~geventsio.ConnectionRefused` refuses with its data."""
        self._middlewares.append(middleware)
        return middleware

    def on_error(self, handler: ErrorHandler) -> ErrorHandler:
        """Call ``handler(socket, exception)`` when a handler of this namespace raises."""
        self._error_handler = handler
        return handler


class Namespace(_Handlers):
    """A namespace with its connected sockets of this process and its adapter.

    :param server: the server.
    :param name: the namespace's name (``"/"``, ``"/admin"``...).
    :param parent: the dynamic parent it was created from, if any.
    """

    def __init__(self, server: Server, name: str, parent: ParentNamespace | None = None) -> None:
        super().__init__()
        self.server = server
        self.name = name
        self.parent = parent
        self.sockets: dict[SocketId, Socket] = {}
        #: Sockets between their CONNECT and the end of their admission.
        self.admitting = 0
        self._ack_ids = itertools.count()
        self._server_side: dict[str, Handler] = {}
        # A dynamic child gets its adapter (and, on Redis, its subscriptions) only when
        # it is first used: a refused connection leaves nothing behind.
        self._adapter: Adapter | None = server.adapter_factory(self) if parent is None else None

    def __repr__(self) -> str:
        return f"<Namespace {self.name} sockets={len(self.sockets)}>"

    @property
    def serializer(self) -> Serializer:
        """The server's packet format."""
        return self.server.serializer

    @property
    def recovery(self) -> RecoveryOptions | None:
        """The server's connection state recovery options (None: off)."""
        return self.server.recovery

    @property
    def adapter(self) -> Adapter:
        """The namespace's adapter: its rooms, and its broadcasts."""
        adapter = self._adapter
        if adapter is None:
            adapter = self._adapter = self.server.adapter_factory(self)
        return adapter

    def close_adapter(self) -> None:
        """Close the adapter, if the namespace ever had one (shutdown, or a child removed)."""
        if self._adapter is not None:
            self._adapter.close()

    def next_ack_id(self) -> int:
        """A fresh ack id (unique in this namespace, so a broadcast can share one)."""
        return next(self._ack_ids)

    def get_socket(self, socket_id: str) -> Socket | None:
        """The connected socket of this process with this id, if any."""
        return self.sockets.get(SocketId(socket_id))

    def broadcast_namespaces(self) -> list[Namespace]:
        """A namespace broadcasts in itself."""
        return [self]

    # -- handlers --------------------------------------------------------------------

    def handler_for(self, event: str) -> BoundHandler | None:
        """This namespace's handler for ``event``, or its parent's."""
        handler = self._handlers.get(event)
        if handler is None and self.parent is not None:
            handler = self.parent._handlers.get(event)
        return handler

    def _all_middlewares(self) -> list[ConnectMiddleware]:
        inherited = self.parent._middlewares if self.parent is not None else []
        return [*inherited, *self._middlewares]

    def report_error(self, socket: Socket, exc: Exception) -> None:
        """Pass a handler's exception to the error handler (namespace, parent, server)."""
        handler = self._error_handler
        if handler is None and self.parent is not None:
            handler = self.parent._error_handler
        handler = handler or self.server.error_handler
        if handler is None:
            return
        try:
            handler(socket, exc)
        except Exception:
            logger.exception("the error handler raised")

    def run_hook(self, event: str, socket: Socket, *args: Any) -> Any:
        """Run a lifecycle hook (disconnecting, disconnect) if there is one."""
        handler = self.handler_for(event)
        if handler is None:
            return None
        return socket.call_lifecycle(handler, *args)

    # -- connecting ------------------------------------------------------------------

    def admit(self, socket: Socket, auth: Any, missed: Sequence[Packet] = ()) -> None:
        """Run middlewares, then (the socket in the namespace and in its own room) the
        connect handler for a new socket. A dynamic child joins its parent's children
        once the middlewares accepted its first socket.

        A recovered socket (``socket.recovered``) gets its rooms back and ``missed``
        queued first; it skips the middlewares when the recovery options say so.

        :raises ConnectionRefused: the socket may not connect.
        """
        socket.connected = True  # handlers may emit and join; packets are held until ack
        for packet in missed:
            socket.write_packet(packet)
        skip = socket.recovered and self.recovery is not None and self.recovery.skip_middlewares
        self.admitting += 1
        try:
            for middleware in () if skip else self._all_middlewares():
                middleware(socket, auth)
            if self.parent is not None:
                self.parent.adopt(self)
            self.sockets[socket.id] = socket
            self.adapter.add_all(socket.id, [Room(socket.id), *socket.restored_rooms])
            handler = self.handler_for(CONNECT)
            if handler is not None and handler.call_with(socket, auth) is False:
                raise ConnectionRefused("Connection refused")
        except BaseException:
            socket.connected = False
            self.remove(socket)
            raise
        finally:
            self.admitting -= 1
            if not socket.connected:
                self.discard_if_empty()

    def remove(self, socket: Socket) -> None:
        """Forget a socket that left (its rooms with it)."""
        if self._adapter is not None:
            self._adapter.delete_all(socket.id)
        if self.sockets.get(socket.id) is socket:
            del self.sockets[socket.id]

    def discard_if_empty(self) -> None:
        """A socket is gone for good: a dynamic child left empty may be removed (see
        :meth:`ParentNamespace.discard`)."""
        if self.parent is not None and not self.sockets and not self.admitting:
            self.parent.discard(self)

    # -- broadcasting ----------------------------------------------------------------

    def to(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """Broadcast to the sockets in these rooms."""
        return BroadcastOperator(self).to(*rooms)

    def in_(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """The same as :meth:`to` (``in`` is a keyword)."""
        return self.to(*rooms)

    def except_(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """Broadcast to every socket but those in these rooms."""
        return BroadcastOperator(self).except_(*rooms)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Broadcast and wait at most ``seconds`` for acknowledgements."""
        return BroadcastOperator(self).timeout(seconds)

    @property
    def volatile(self) -> BroadcastOperator:
        """Broadcast, dropping the packet for clients that cannot take it now."""
        return BroadcastOperator(self).volatile

    @property
    def local(self) -> BroadcastOperator:
        """Broadcast to this process's sockets only."""
        return BroadcastOperator(self).local

    def emit(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Send an event to every socket of the namespace (see BroadcastOperator.emit)."""
        BroadcastOperator(self).emit(event, *args, **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> None:
        """Emit a ``message`` event to every socket."""
        BroadcastOperator(self).send(*args, **kwargs)

    def call(self, event: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """Emit to every socket and wait for every acknowledgement."""
        return BroadcastOperator(self).call(event, *args, timeout=timeout)

    def fetch_sockets(self) -> list[Any]:
        """Every socket of the namespace."""
        return BroadcastOperator(self).fetch_sockets()

    def sockets_join(self, *rooms: RoomsArgument) -> None:
        """Make every socket join rooms."""
        BroadcastOperator(self).sockets_join(*rooms)

    def sockets_leave(self, *rooms: RoomsArgument) -> None:
        """Make every socket leave rooms."""
        BroadcastOperator(self).sockets_leave(*rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket."""
        BroadcastOperator(self).disconnect_sockets(close)

    def close_room(self, room: Room | str) -> None:
        """Empty a room: every socket in it leaves it."""
        BroadcastOperator(self).in_(room).sockets_leave(room)

    # -- between servers -----------------------------------------------------------------

    def on_server_side(self, event: str, handler: Handler | None = None) -> Any:
        """Handle an event that another server of the cluster sent with
        ``server_side_emit``; usable as a decorator. The handler gets the arguments; its
        return value is the reply when the sender asked for replies."""

        def register(function: Handler) -> Handler:
            self._server_side[event] = function
            return function

        return register(handler) if handler is not None else register

    def server_side_handler(self, event: str) -> Handler | None:
        """The handler registered with :meth:`on_server_side` for ``event``."""
        return self._server_side.get(event)

    def server_side_emit(
        self,
        event: str,
        *args: Any,
        callback: Callable[[list[Any]], None] | None = None,
        timeout: float | None = None,
    ) -> int:
        """Send an event to the other servers of the cluster (none in one process).

        :param callback: called once with the replies that arrived within ``timeout``.
        :returns: how many servers the event was sent to.
        """
        return self.adapter.server_side_emit(event, list(args), on_reply=callback, timeout=timeout)

    def server_side_call(self, event: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """Send an event to the other servers and wait for one reply from each.

        :raises AckTimeout: not every server replied in time.
        """
        return self.adapter.server_side_call(event, *args, timeout=timeout)


class ParentNamespace(_Handlers):
    """Namespaces created on demand for names that match a pattern or a predicate.

    Handlers and middleware registered here apply to every child; broadcasting here
    reaches every child.

    A child exists (in :attr:`children`, with an adapter) from the moment the middlewares
    accept its first socket. Until then it is *pending*: shared by the sockets connecting
    to it, reachable by no broadcast, and forgotten if they are all refused. The number
    of children (pending ones included) is capped by the server's
    ``max_child_namespaces``: a CONNECT over the cap gets a ``connect_error``. With the
    server's ``cleanup_empty_child_namespaces`` (Node's ``cleanupEmptyChildNamespaces``),
    a child whose last socket left is removed and its adapter closed.

    :param server: the server.
    :param matcher: a compiled regular expression (full match) or ``f(name, auth)``.
    """

    def __init__(self, server: Server, matcher: NamespaceMatcher) -> None:
        super().__init__()
        if not isinstance(matcher, re.Pattern) and not callable(matcher):
            raise LocalProtocolError(
                f"a dynamic namespace needs a compiled pattern or a callable, not {matcher!r}"
            )
        self.server = server
        self.matcher = matcher
        self.children: dict[str, Namespace] = {}
        self._pending: dict[str, Namespace] = {}
        self._cap_reported = False

    def matches(self, name: str, auth: Any) -> bool:
        """Whether a namespace name belongs to this parent."""
        if isinstance(self.matcher, re.Pattern):
            return self.matcher.fullmatch(name) is not None
        return bool(self.matcher(name, auth))

    def child(self, name: str) -> Namespace:
        """The child namespace called ``name``, pending if it has no socket admitted yet.

        :raises ConnectionRefused: a new child would pass ``max_child_namespaces``.
        """
        namespace = self.children.get(name) or self._pending.get(name)
        if namespace is not None:
            return namespace
        cap = self.server.max_child_namespaces
        if len(self.children) + len(self._pending) >= cap:
            logger.log(
                logging.DEBUG if self._cap_reported else logging.WARNING,
                "dynamic namespace %s refused: this parent has %d children (max_child_namespaces)",
                name[:64],
                cap,
            )
            self._cap_reported = True
            raise ConnectionRefused("Too many namespaces")
        namespace = self._pending[name] = Namespace(self.server, name, parent=self)
        return namespace

    def adopt(self, namespace: Namespace) -> None:
        """The middlewares accepted a socket of a pending child: it exists from now on."""
        if self._pending.get(namespace.name) is namespace:
            del self._pending[namespace.name]
            self.children[namespace.name] = namespace

    def discard(self, namespace: Namespace) -> None:
        """Forget an empty child: always when it never admitted a socket, and with
        ``cleanup_empty_child_namespaces`` once its last socket left."""
        name = namespace.name
        if self._pending.get(name) is namespace:
            del self._pending[name]
        elif self.children.get(name) is namespace and self.server.cleanup_empty_child_namespaces:
            del self.children[name]
        else:
            return
        namespace.close_adapter()
        logger.debug("dynamic namespace %s removed (empty)", name)

    def broadcast_namespaces(self) -> list[Namespace]:
        """A parent broadcasts in every child."""
        return list(self.children.values())

    def to(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """Broadcast to these rooms of every child."""
        return BroadcastOperator(self).to(*rooms)

    def in_(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """The same as :meth:`to` (``in`` is a keyword)."""
        return self.to(*rooms)

    def except_(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """Broadcast in every child but to these rooms."""
        return BroadcastOperator(self).except_(*rooms)

    def emit(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Send an event to every socket of every child."""
        BroadcastOperator(self).emit(event, *args, **kwargs)

    def fetch_sockets(self) -> list[Any]:
        """Every socket of every child."""
        return BroadcastOperator(self).fetch_sockets()

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of every child."""
        BroadcastOperator(self).disconnect_sockets(close)
