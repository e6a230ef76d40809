"""Sending from flask_ext: emit/send parameters read once, and the room utilities.

``emit`` and ``send`` exist four times in Flask-SocketIO's API (the context-aware
helpers, ``SocketIO``'s methods, ``Namespace``'s methods); here their keyword arguments
are declared once (:class:`EmitOptions`) and read once (:meth:`Sender.emit_event`).

A :class:`Sender` acts on geventsio objects: inside a handler the current event's
:class:`geventsio.Socket` itself (no id turned into a string and looked up again);
given a client id, the socket found through the namespace's public ``get_socket``.
``SocketIO.emit`` may be called from any OS thread: the emit is handed to the server's
hub (:meth:`geventsio.Server.run_threadsafe`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypedDict

import geventsio
from flask_ext.dispatch import Dispatcher
from flask_ext.event import current_event, optional_event
from flask_ext.handlers import namespace_name


class EmitOptions(TypedDict, total=False):
    """The keyword arguments of every ``emit`` and ``send``.

    :ivar namespace: the namespace (default: the current event's for the helpers,
        ``"/"`` for ``SocketIO.emit``, its own for a ``Namespace``).
    :ivar to: a room or a client id (``room`` is the older name).
    :ivar include_self: False leaves the current client out of a broadcast.
    :ivar skip_sid: a client id, or several, to leave out.
    :ivar callback: called with each recipient's acknowledgement arguments, in the
        Flask contexts of the event it was emitted from.
    :ivar broadcast: the helpers: send to the whole namespace, not the current client.
    :ivar ignore_queue: accepted and ignored (Flask-SocketIO's).
    """

    namespace: str | None
    to: Any
    room: Any
    include_self: bool
    skip_sid: str | Iterable[str] | None
    callback: Callable[..., Any] | None
    broadcast: bool
    ignore_queue: bool


def event_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Flask-SocketIO's convention: one tuple argument carries several event arguments."""
    if len(args) == 1 and isinstance(args[0], tuple):
        return args[0]
    return args


def _skipped(options: EmitOptions) -> list[str]:
    skip_sid = options.get("skip_sid")
    if skip_sid:
        return [skip_sid] if isinstance(skip_sid, str) else list(skip_sid)
    if not options.get("include_self", True):
        return [current_event().sid]
    return []


class Sender:
    """Sends events and manages rooms on a geventsio server (``SocketIO`` is one).

    :ivar server: the geventsio server (None until ``init_app``).
    :ivar dispatcher: runs acknowledgement callbacks in Flask contexts.
    :ivar message_queue: the Redis URL of a write-only emitter (no server).
    """

    def __init__(self) -> None:
        self.server: geventsio.Server | None = None
        self.dispatcher: Dispatcher | None = None
        self.message_queue: str | None = None
        self.channel = "socket.io"
        self._emitter: Any = None

    def require_server(self) -> geventsio.Server:
        """The server.

        :raises RuntimeError: not attached to an application yet.
        """
        if self.server is None:
            raise RuntimeError(
                "SocketIO is not attached to an application yet: pass the "
                "app to SocketIO() or call init_app(app)"
            )
        return self.server

    # -- sending ---------------------------------------------------------------------

    def emit_event(
        self,
        event: str,
        args: tuple[Any, ...],
        options: EmitOptions,
        *,
        namespace: str,
        reply: bool,
    ) -> None:
        """Send ``event`` as ``options`` say.

        :param namespace: the namespace when ``options`` names none.
        :param reply: without ``to`` and ``broadcast``, send to the current client (the
            helpers); else to the whole namespace.
        :raises TypeError: the arguments cannot be serialised.
        :raises RuntimeError: the current client is needed outside an event handler.
        """
        name = namespace_name(options.get("namespace") or namespace)
        to = options.get("to")
        if to is None:
            to = options.get("room")
        skip = _skipped(options)  # the current event read only where needed
        if to is None and reply and not options.get("broadcast"):
            current = current_event()
            same = current.namespace == name
            to = current.socket if same and not skip else current.sid
        callback = options.get("callback")
        if self.server is None and self.message_queue is not None:
            self._emit_through_queue(self.message_queue, event, args, name, to, skip, callback)
            return
        server = self.require_server()
        server.run_threadsafe(self._deliver, server, event, args, name, to, skip, callback)

    def _deliver(
        self,
        server: geventsio.Server,
        event: str,
        args: tuple[Any, ...],
        name: str,
        to: Any,
        skip: list[str],
        callback: Callable[..., Any] | None,
    ) -> None:
        bound = None if callback is None else self._bind(callback)
        if isinstance(to, geventsio.Socket):
            to.emit(event, *args, callback=bound)
            return
        target = server.get_namespace(name)
        if target is None:
            return
        operator = target.to(to) if to is not None else target.except_()
        if skip:
            operator = operator.except_(*skip)
        if bound is None:
            operator.emit(event, *args)
            return
        for socket in operator.fetch_sockets():
            socket.emit(event, *args, callback=bound)

    def _bind(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        assert self.dispatcher is not None
        return self.dispatcher.bind_callback(callback)

    def _emit_through_queue(
        self,
        url: str,
        event: str,
        args: tuple[Any, ...],
        namespace: str,
        to: Any,
        skip: list[str],
        callback: Callable[..., Any] | None,
    ) -> None:
        """Write-only mode (``SocketIO(message_queue=...)`` without an app): emit through
        Redis to the servers of the cluster."""
        if callback is not None:
            raise ValueError("callbacks need a server: a write-only SocketIO cannot take acks")
        if self._emitter is None:
            self._emitter = geventsio.RedisEmitter(url, key=self.channel)
        emitter = self._emitter.of(namespace)
        if skip:
            emitter = emitter.except_(*skip)
        if to is not None:
            emitter = emitter.to(to)
        emitter.emit(event, *args)

    def call(
        self,
        event: str,
        *args: Any,
        to: str | None = None,
        room: str | None = None,
        namespace: str | None = None,
        timeout: float = 60,
        ignore_queue: bool = False,
    ) -> Any:
        """Send an event to one client and wait for its acknowledgement.

        :returns: the acknowledgement's argument (a tuple for several, None for none).
        :raises geventsio.AckTimeout: no answer within ``timeout`` seconds.
        :raises geventsio.NotConnected: the client is not (or no longer) connected.
        :raises TypeError: the arguments cannot be serialised.
        """
        sid = to if to is not None else room
        if sid is None:
            raise ValueError("call() needs to=, the client to ask")
        return self.require_socket(sid, namespace).call(event, *event_args(args), timeout=timeout)

    # -- rooms and clients -----------------------------------------------------------

    def find_socket(self, sid: str | None, namespace: str | None) -> geventsio.Socket | None:
        """Client ``sid`` in ``namespace`` (default ``"/"``); ``sid=None``: the current
        event's socket (in its namespace unless another is named)."""
        current = optional_event()
        if sid is None:
            current = current or current_event()
            if namespace is None or namespace_name(namespace) == current.namespace:
                return current.socket
            sid = current.sid
        elif current is not None and current.sid == sid and namespace is None:
            return current.socket
        target = self.require_server().get_namespace(namespace_name(namespace))
        return None if target is None else target.get_socket(sid)

    def require_socket(self, sid: str | None, namespace: str | None) -> geventsio.Socket:
        """:meth:`find_socket`, or :class:`geventsio.NotConnected`."""
        socket = self.find_socket(sid, namespace)
        if socket is None:
            raise geventsio.NotConnected(f"no client {sid} in namespace {namespace or '/'}")
        return socket

    def close_room(self, room: str, namespace: str | None = None) -> None:
        """Empty a room: every client in it leaves it."""
        target = self.require_server().get_namespace(namespace_name(namespace))
        if target is not None:
            target.close_room(room)

    def enter_room(self, sid: str | None, room: str, namespace: str | None = None) -> None:
        """Put a client in a room (a no-op if it is not connected, as in Flask-SocketIO)."""
        socket = self.find_socket(sid, namespace)
        if socket is not None:
            socket.join(room)

    def leave_room(self, sid: str | None, room: str, namespace: str | None = None) -> None:
        """Take a client out of a room (a no-op if it is not connected)."""
        socket = self.find_socket(sid, namespace)
        if socket is not None:
            socket.leave(room)

    def rooms(self, sid: str | None, namespace: str | None = None) -> list[str]:
        """The rooms of a client, its own room (its sid) first."""
        socket = self.find_socket(sid, namespace)
        if socket is None:
            return []
        own = str(socket.id)
        return [own, *sorted(str(room) for room in socket.rooms if room != own)]

    def disconnect(self, sid: str | None, namespace: str | None = None) -> None:
        """Disconnect a client from a namespace (a no-op if it already left)."""
        socket = self.find_socket(sid, namespace)
        if socket is not None:
            socket.disconnect()
