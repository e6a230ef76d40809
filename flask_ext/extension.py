"""``SocketIO``: the Flask extension, with Flask-SocketIO's API, on a geventsio server."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import flask
import gevent

import geventsio
from flask_ext import logs
from flask_ext.context import current_event
from flask_ext.dispatch import Dispatcher
from flask_ext.handlers import ErrorHandler, Handler, HandlerTable, namespace_name
from flask_ext.namespace import Namespace
from flask_ext.options import Settings, translate
from flask_ext.running import Runner, resolve_options
from flask_ext.testing import SocketIOTestClient


class DisconnectReasons:
    """``SocketIO.reason``: Flask-SocketIO's names for the reasons a ``disconnect``
    handler receives (the values are geventsio's, with the Node reference's strings)."""

    CLIENT_DISCONNECT = geventsio.DisconnectReason.CLIENT_NAMESPACE_DISCONNECT
    SERVER_DISCONNECT = geventsio.DisconnectReason.SERVER_NAMESPACE_DISCONNECT
    PING_TIMEOUT = geventsio.DisconnectReason.PING_TIMEOUT
    TRANSPORT_CLOSE = geventsio.DisconnectReason.TRANSPORT_CLOSE
    TRANSPORT_ERROR = geventsio.DisconnectReason.TRANSPORT_ERROR


def event_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Flask-SocketIO's convention: one tuple argument carries several event arguments."""
    if len(args) == 1 and isinstance(args[0], tuple):
        return args[0]
    return args


def skip_list(skip_sid: str | Iterable[str] | None, include_self: bool) -> list[str]:
    """The socket ids a broadcast leaves out (``include_self=False``: the current client,
    unless ``skip_sid`` names others)."""
    if skip_sid:
        return [skip_sid] if isinstance(skip_sid, str) else list(skip_sid)
    if not include_self:
        return [current_event().sid]
    return []


class SocketIO:
    """The Socket.IO extension of a Flask application.

    ``SocketIO(app, **options)``, or ``SocketIO(**options)`` then ``init_app(app)`` in an
    application factory. The options are Flask-SocketIO's (``cors_allowed_origins``,
    ``ping_interval``, ``manage_session``...) and geventsio's server options; an unknown
    option is a :class:`TypeError`. See ``docs/flask_ext.md``.

    :ivar server: the :class:`geventsio.Server` (None until ``init_app``).
    :ivar manage_session: keep a per-connection copy of the Flask session (default True).
    """

    reason = DisconnectReasons

    def __init__(self, app: flask.Flask | None = None, **options: Any) -> None:
        self.server: geventsio.Server | None = None
        self.server_options: dict[str, Any] = {}
        self.manage_session = True
        self.async_mode = "gevent"
        self.wsgi_server: Any = None
        self._settings = Settings()
        self._table = HandlerTable()
        self._dispatcher: Dispatcher | None = None
        self._wsgi_app: geventsio.WSGIApp | None = None
        self._runner: Runner | None = None
        self._emitter: Any = None
        self._configure(options)
        if app is not None:
            self.init_app(app)

    def _configure(self, options: dict[str, Any]) -> None:
        merged = {**self.server_options, **options}
        self._settings = translate(merged)
        self.server_options = merged
        if "manage_session" in options:
            self.manage_session = bool(options["manage_session"])

    def init_app(self, app: flask.Flask, **options: Any) -> None:
        """Attach to ``app``: create the geventsio server and wrap ``app.wsgi_app`` so that
        the application serves Socket.IO at its path under any gevent WSGI server.

        :raises TypeError: an unknown option.
        :raises ValueError: an unsupported option value.
        """
        self._configure(options)
        settings = self._settings
        logs.configure(logs.SOCKETIO_LOGGERS, settings.logger)
        logs.configure(logs.ENGINEIO_LOGGERS, settings.engineio_logger)
        server_options = dict(settings.server_options)
        if settings.message_queue is not None:
            server_options["adapter"] = geventsio.redis_adapter(
                settings.message_queue, key=settings.channel
            )
        server = geventsio.Server(**server_options)
        dispatcher = Dispatcher(self, app, server, self._table)
        accepted = {"/", *self._table.namespace_names(), *settings.namespaces}
        for name in sorted(namespace_name(name) for name in accepted):
            dispatcher.route(name)
        self.server, self._dispatcher = server, dispatcher
        self._wsgi_app = geventsio.WSGIApp(server, app.wsgi_app)
        app.wsgi_app = self._wsgi_app  # type: ignore[method-assign]
        app.extensions["socketio"] = self

    def _require_server(self) -> geventsio.Server:
        if self.server is None:
            raise RuntimeError(
                "SocketIO is not attached to an application yet: pass the "
                "app to SocketIO() or call init_app(app)"
            )
        return self.server

    def _require_dispatcher(self) -> Dispatcher:
        self._require_server()
        assert self._dispatcher is not None
        return self._dispatcher

    # -- handlers --------------------------------------------------------------------

    def on(self, message: str, namespace: str | None = None) -> Callable[[Handler], Handler]:
        """Decorator: handle event ``message`` (``"connect"``, ``"disconnect"``,
        ``"message"``, ``"json"``, ``"*"`` or your own) in ``namespace`` (default ``"/"``,
        ``"*"`` for every namespace). The handler gets the event's arguments only and its
        return value is the acknowledgement."""
        name = namespace_name(namespace)

        def decorator(handler: Handler) -> Handler:
            self._table.add(name, message, handler)
            self._route(name)
            return handler

        return decorator

    def on_event(self, message: str, handler: Handler, namespace: str | None = None) -> None:
        """:meth:`on` without the decorator."""
        self.on(message, namespace=namespace)(handler)

    def event(self, *args: Any, **kwargs: Any) -> Any:
        """Decorator naming the event after the function: ``@socketio.event`` or
        ``@socketio.event(namespace="/chat")``."""
        if len(args) == 1 and not kwargs and callable(args[0]):
            return self.on(args[0].__name__)(args[0])

        def decorator(handler: Handler) -> Handler:
            return self.on(handler.__name__, *args, **kwargs)(handler)

        return decorator

    def on_error(self, namespace: str | ErrorHandler | None = None) -> Any:
        """Decorator: ``f(exception)`` handles exceptions of the handlers of ``namespace``
        (default ``"/"``); its return value becomes the acknowledgement."""
        if callable(namespace):  # used bare: @socketio.on_error
            self._table.error_handlers["/"] = namespace
            return namespace
        name = namespace_name(namespace)

        def decorator(handler: ErrorHandler) -> ErrorHandler:
            if not callable(handler):
                raise ValueError("exception_handler must be callable")
            self._table.error_handlers[name] = handler
            return handler

        return decorator

    def on_error_default(self, handler: ErrorHandler) -> ErrorHandler:
        """Decorator: the error handler of namespaces that have none of their own."""
        if not callable(handler):
            raise ValueError("exception_handler must be callable")
        self._table.default_error_handler = handler
        return handler

    def on_namespace(self, namespace_handler: Namespace) -> None:
        """Register a class-based :class:`~flask_ext.Namespace`."""
        if not isinstance(namespace_handler, Namespace):
            raise ValueError("Not a namespace instance.")
        namespace_handler._set_socketio(self)
        self._table.add_namespace(namespace_handler)
        self._route(namespace_name(namespace_handler.namespace))

    def _route(self, namespace: str) -> None:
        if self._dispatcher is not None:
            self._dispatcher.route(namespace)

    # -- sending from anywhere -----------------------------------------------------------

    def emit(
        self,
        event: str,
        *args: Any,
        namespace: str | None = None,
        to: Any = None,
        room: Any = None,
        include_self: bool = True,
        skip_sid: str | Iterable[str] | None = None,
        callback: Callable[..., Any] | None = None,
        ignore_queue: bool = False,
    ) -> None:
        """Send an event from anywhere (a handler, an HTTP view, a background task): to
        every client of ``namespace`` (default ``"/"``), or to the room or client ``to``.

        ``emit(event, (a, b))`` sends two arguments. ``callback`` is called with each
        recipient's acknowledgement arguments. ``include_self=False`` leaves out the
        client of the current event; ``skip_sid`` leaves out the given clients.

        :raises TypeError: the arguments cannot be serialised.
        """
        self.send_event(
            event,
            event_args(args),
            namespace or "/",
            to if to is not None else room,
            skip_list(skip_sid, include_self),
            callback,
        )

    def send_event(
        self,
        event: str,
        args: tuple[Any, ...],
        namespace: str,
        to: Any,
        skip: list[str],
        callback: Callable[..., Any] | None,
    ) -> None:
        """Send ``event`` in ``namespace`` to ``to`` (everyone when None) but ``skip``."""
        if self.server is None and self._settings.message_queue is not None:
            self._emit_through_queue(event, args, namespace, to, skip, callback)
            return
        target = self._find_namespace(namespace)
        if target is None:
            return
        operator = target if to is None else target.to(to)  # the namespace: everyone
        if skip:
            operator = operator.except_(*skip)
        try:
            if callback is None:
                operator.emit(event, *args)
                return
            bound = self._require_dispatcher().bind_callback(callback)
            for socket in operator.fetch_sockets():
                socket.emit(event, *args, callback=bound)
        except geventsio.LocalProtocolError as exc:
            raise TypeError(str(exc)) from exc

    def _emit_through_queue(
        self,
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
        url = self._settings.message_queue
        assert url is not None
        if self._emitter is None:
            self._emitter = geventsio.RedisEmitter(url, key=self._settings.channel)
        emitter = self._emitter.of(namespace)
        if skip:
            emitter = emitter.except_(*skip)
        if to is not None:
            emitter = emitter.to(to)
        try:
            emitter.emit(event, *args)
        except geventsio.LocalProtocolError as exc:
            raise TypeError(str(exc)) from exc

    def send(
        self,
        data: Any,
        json: bool = False,
        namespace: str | None = None,
        to: Any = None,
        room: Any = None,
        include_self: bool = True,
        skip_sid: str | Iterable[str] | None = None,
        callback: Callable[..., Any] | None = None,
        ignore_queue: bool = False,
    ) -> None:
        """Send a ``message`` event (``json=True``: a ``json`` event) from anywhere."""
        self.send_event(
            "json" if json else "message",
            (data,),
            namespace or "/",
            to if to is not None else room,
            skip_list(skip_sid, include_self),
            callback,
        )

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
        """
        sid = to if to is not None else room
        if sid is None:
            raise ValueError("call() needs to=, the client to ask")
        socket = self._require_socket(sid, namespace)
        try:
            return socket.call(event, *event_args(args), timeout=timeout)
        except geventsio.LocalProtocolError as exc:
            raise TypeError(str(exc)) from exc

    def close_room(self, room: str, namespace: str | None = None) -> None:
        """Empty a room: every client in it leaves it."""
        target = self._find_namespace(namespace or "/")
        if target is not None:
            target.close_room(room)

    def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        """Put client ``sid`` in a room (a no-op if it is not connected, as in
        Flask-SocketIO)."""
        socket = self._find_socket(sid, namespace)
        if socket is not None:
            socket.join(room)

    def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        """Take client ``sid`` out of a room (a no-op if it is not connected)."""
        socket = self._find_socket(sid, namespace)
        if socket is not None:
            socket.leave(room)

    def rooms(self, sid: str, namespace: str | None = None) -> list[str]:
        """The rooms of client ``sid``, its own room (its sid) first."""
        socket = self._find_socket(sid, namespace)
        if socket is None:
            return []
        own = str(socket.id)
        return [own, *sorted(str(room) for room in socket.rooms if room != own)]

    def disconnect(self, sid: str, namespace: str | None = None) -> None:
        """Disconnect client ``sid`` from a namespace (a no-op if it already left)."""
        socket = self._find_socket(sid, namespace)
        if socket is not None:
            socket.disconnect()

    def _find_namespace(self, name: str) -> Any:
        """The geventsio namespace called ``name``, without creating one."""
        server = self._require_server()
        name = namespace_name(name)
        namespace = server.namespaces.get(name)
        if namespace is None:
            for parent in server.parent_namespaces:
                namespace = parent.children.get(name)
                if namespace is not None:
                    break
        return namespace

    def _find_socket(self, sid: str, namespace: str | None) -> geventsio.Socket | None:
        target = self._find_namespace(namespace or "/")
        return None if target is None else target.sockets.get(sid)

    def _require_socket(self, sid: str, namespace: str | None) -> geventsio.Socket:
        socket = self._find_socket(sid, namespace)
        if socket is None:
            raise geventsio.NotConnected(f"no client {sid} in namespace {namespace or '/'}")
        return socket

    # -- greenlets -------------------------------------------------------------------

    def start_background_task(
        self, target: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> gevent.Greenlet[..., Any]:
        """Run ``target(*args, **kwargs)`` in a new greenlet (``.join()`` waits for it)."""
        return gevent.spawn(target, *args, **kwargs)

    def sleep(self, seconds: float = 0) -> None:
        """Sleep without blocking other clients (``gevent.sleep``)."""
        gevent.sleep(seconds)

    # -- running -----------------------------------------------------------------------

    def run(
        self,
        app: flask.Flask,
        host: str | None = None,
        port: int | None = None,
        *,
        debug: bool | None = None,
        use_reloader: bool | None = None,
        log_output: bool | None = None,
        reloader_options: dict[str, Any] | None = None,
        extra_files: list[str] | None = None,
        allow_unsafe_werkzeug: bool = False,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        """Serve ``app`` on gevent (geventsio's pywsgi handler) until :meth:`stop`, SIGINT
        or SIGTERM. ``debug`` adds the Werkzeug debugger and, unless ``use_reloader`` is
        False, the reloader; ``log_output`` logs each request (default: ``debug``).
        ``allow_unsafe_werkzeug`` is accepted and ignored (Werkzeug's server is not used).
        """
        if self._wsgi_app is None or app.extensions.get("socketio") is not self:
            self.init_app(app)
        assert self._wsgi_app is not None
        options = resolve_options(
            app,
            host,
            port,
            debug,
            use_reloader,
            log_output,
            reloader_options,
            extra_files,
            certfile,
            keyfile,
        )
        self._runner = Runner(self._wsgi_app, app, options)

        def started(server: Any) -> None:
            self.wsgi_server = server

        try:
            self._runner.run(started)
        finally:
            self._runner = None
            self.wsgi_server = None

    def stop(self) -> None:
        """Stop the server started by :meth:`run` (from a handler or an HTTP view): the
        clients are told the server is shutting down, and ``run()`` returns.

        :raises RuntimeError: ``run()`` is not running.
        """
        if self._runner is None:
            raise RuntimeError("SocketIO.stop(): the server was not started with run()")
        self._runner.stop()

    # -- testing -----------------------------------------------------------------------

    def test_client(
        self,
        app: flask.Flask,
        namespace: str | None = None,
        query_string: str | None = None,
        headers: dict[str, str] | None = None,
        auth: Any = None,
        flask_test_client: Any = None,
    ) -> SocketIOTestClient:
        """A connected in-process test client (see :class:`~flask_ext.SocketIOTestClient`)."""
        return SocketIOTestClient(
            app,
            self,
            namespace=namespace,
            query_string=query_string,
            headers=headers,
            auth=auth,
            flask_test_client=flask_test_client,
        )
