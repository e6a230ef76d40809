"""``SocketIO``: the Flask extension, with Flask-SocketIO's API, on a geventsio server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

import flask
import gevent

import geventsio
from flask_ext import logs
from flask_ext.dispatch import Dispatcher
from flask_ext.handlers import BeforeEvent, ErrorHandler, Handler, Registry, namespace_name
from flask_ext.namespace import Namespace
from flask_ext.options import CLIENT_MANAGER, MessageQueue, Settings, translate
from flask_ext.running import Runner, resolve_options
from flask_ext.sending import EmitOptions, Sender, event_args
from flask_ext.testing import SocketIOTestClient


class DisconnectReasons:
    """``SocketIO.reason``: Flask-SocketIO's names for the reasons a ``disconnect``
    handler receives (the values are geventsio's, with the Node reference's strings)."""

    CLIENT_DISCONNECT = geventsio.DisconnectReason.CLIENT_NAMESPACE_DISCONNECT
    SERVER_DISCONNECT = geventsio.DisconnectReason.SERVER_NAMESPACE_DISCONNECT
    PING_TIMEOUT = geventsio.DisconnectReason.PING_TIMEOUT
    TRANSPORT_CLOSE = geventsio.DisconnectReason.TRANSPORT_CLOSE
    TRANSPORT_ERROR = geventsio.DisconnectReason.TRANSPORT_ERROR


class SocketIO(Sender):
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
        super().__init__()
        self.server_options: dict[str, Any] = {}
        self._manage_session = True
        self.async_mode = "gevent"
        self.wsgi_server: Any = None
        self._settings = Settings()
        self._registry = Registry()
        self._wsgi_app: geventsio.WSGIApp | None = None
        self._runner: Runner | None = None
        self._configure(options)
        if app is not None:
            self.init_app(app)

    def _configure(self, options: dict[str, Any], write_only: bool = True) -> None:
        merged = {**self.server_options, **options}
        if isinstance(merged.get(CLIENT_MANAGER), MessageQueue):  # ours, from before
            del merged[CLIENT_MANAGER]
        self._settings = translate(merged)
        self.server_options = merged
        self.message_queue = self._settings.message_queue
        self.channel = self._settings.channel
        if self.message_queue is not None:  # Flask-SocketIO's place to read it back
            queue = MessageQueue(self.message_queue, self.channel, write_only)
            self.server_options[CLIENT_MANAGER] = queue
        if "manage_session" in options:
            self.manage_session = bool(options["manage_session"])

    @property
    def manage_session(self) -> bool:
        """Keep a per-connection copy of the Flask session (default True); see
        docs/flask_ext.md, *Sessions and Flask-Login*."""
        return self._manage_session

    @manage_session.setter
    def manage_session(self, value: bool) -> None:
        self._manage_session = bool(value)
        if self.dispatcher is not None:
            self.dispatcher.manage_session = self._manage_session

    def init_app(self, app: flask.Flask | None, **options: Any) -> None:
        """Attach to ``app``: create the geventsio server and wrap ``app.wsgi_app`` so that
        the application serves Socket.IO at its path under any gevent WSGI server.
        ``init_app(None, message_queue=url)`` makes a write-only emitter, as
        ``SocketIO(message_queue=url)`` does.

        :raises TypeError: an unknown option.
        :raises ValueError: an unsupported option value.
        """
        self._configure(options, write_only=app is None)
        if app is None:
            return
        settings = self._settings
        logs.configure(logs.SOCKETIO_LOGGERS, settings.logger)
        logs.configure(logs.ENGINEIO_LOGGERS, settings.engineio_logger)
        server_options = dict(settings.server_options)
        if settings.message_queue is not None:
            server_options["adapter"] = geventsio.redis_adapter(
                settings.message_queue, key=settings.channel
            )
        server = geventsio.Server(**server_options)
        dispatcher = Dispatcher(app, server, self._registry, self.manage_session)
        for name in settings.namespaces:
            dispatcher.namespace(namespace_name(name))
        dispatcher.namespace("/")
        for namespace, event, function in self._registry.functions:
            dispatcher.register(namespace, event, function)
        for handlers in self._registry.class_namespaces:
            dispatcher.register_class(namespace_name(handlers.namespace), handlers)
        self.server, self.dispatcher = server, dispatcher
        self._wsgi_app = geventsio.WSGIApp(
            server,
            app.wsgi_app,
            metrics_path=settings.metrics_path,
            metrics_allow_request=settings.metrics_allow_request,
        )
        app.wsgi_app = self._wsgi_app  # type: ignore[method-assign]
        app.extensions["socketio"] = self

    def instrument(self, auth: Any, **options: Any) -> Any:
        """Serve the Socket.IO Admin UI's namespace: :meth:`geventsio.Server.instrument`
        (``auth``, ``namespace="/admin"``, ``read_only``, ``server_id``, ``mode``), after
        ``init_app``.

        :raises RuntimeError: the extension is not attached to an application yet.
        """
        if self.server is None:
            raise RuntimeError("call socketio.instrument() after init_app (or SocketIO(app))")
        return self.server.instrument(auth, **options)

    # -- handlers --------------------------------------------------------------------

    def on(self, message: str, namespace: str | None = None) -> Callable[[Handler], Handler]:
        """Decorator: handle event ``message`` (``"connect"``, ``"disconnect"``,
        ``"message"``, ``"json"``, ``"*"`` or your own) in ``namespace`` (default ``"/"``,
        ``"*"`` for every namespace). The handler gets the event's arguments only and its
        return value is the acknowledgement."""
        name = namespace_name(namespace)

        if not isinstance(message, str):
            raise TypeError(f"an event name must be a string, not {message!r}")

        def decorator(handler: Handler) -> Handler:
            self._registry.functions.append((name, message, handler))
            if self.dispatcher is not None:
                self.dispatcher.register(name, message, handler)
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
            self._registry.error_handlers["/"] = namespace
            return namespace
        name = namespace_name(namespace)

        def decorator(handler: ErrorHandler) -> ErrorHandler:
            if not callable(handler):
                raise ValueError("exception_handler must be callable")
            self._registry.error_handlers[name] = handler
            return handler

        return decorator

    def before_event(self, namespace: str | BeforeEvent | None = None) -> Any:
        """Decorator: ``f(event, *args)`` runs before every event handler of
        ``namespace`` (default ``"/"``, ``"*"`` for all; not for ``connect`` and
        ``disconnect``), in the event's Flask contexts (``request.sid``, ``session``,
        ``current_user``): per-event authorisation. It returns None to let the event
        through; anything else refuses the event and becomes the acknowledgement the
        client gets (the handler does not run); calling ``disconnect()`` refuses it too.
        ``@socketio.before_event`` alone means ``"/"``. (geventsio's ``socket.use`` in
        Flask's contexts; the class-based equivalent is :meth:`Namespace.before_event`.)
        """
        if callable(namespace):
            self._registry.before_event.setdefault("/", []).append(namespace)
            return namespace
        name = namespace_name(namespace)

        def decorator(hook: BeforeEvent) -> BeforeEvent:
            self._registry.before_event.setdefault(name, []).append(hook)
            return hook

        return decorator

    def on_error_default(self, handler: ErrorHandler) -> ErrorHandler:
        """Decorator: the error handler of namespaces that have none of their own."""
        if not callable(handler):
            raise ValueError("exception_handler must be callable")
        self._registry.default_error_handler = handler
        return handler

    def on_namespace(self, namespace_handler: Namespace) -> None:
        """Register a class-based :class:`~flask_ext.Namespace`."""
        if not isinstance(namespace_handler, Namespace):
            raise ValueError("Not a namespace instance.")
        namespace_handler._set_socketio(self)
        self._registry.class_namespaces.append(namespace_handler)
        if self.dispatcher is not None:
            name = namespace_name(namespace_handler.namespace)
            self.dispatcher.register_class(name, namespace_handler)

    # -- sending from anywhere -----------------------------------------------------------

    def emit(self, event: str, *args: Any, **options: Unpack[EmitOptions]) -> None:
        """Send an event from anywhere (a handler, an HTTP view, a background task,
        another OS thread): to every client of ``namespace`` (default ``"/"``), or to the
        room or client ``to`` (see :class:`~flask_ext.sending.EmitOptions`).

        ``emit(event, (a, b))`` sends two arguments. From an OS thread that is not the
        server's, the emit is handed to the server's gevent hub, in order.

        :raises TypeError: the arguments cannot be serialised.
        """
        self.emit_event(event, event_args(args), options, namespace="/", reply=False)

    def send(self, data: Any, json: bool = False, **options: Unpack[EmitOptions]) -> None:
        """Send a ``message`` event (``json=True``: a ``json`` event) from anywhere."""
        self.emit_event("json" if json else "message", (data,), options, namespace="/", reply=False)

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
        self.require_server()
        return SocketIOTestClient(
            app,
            self,
            namespace=namespace,
            query_string=query_string,
            headers=headers,
            auth=auth,
            flask_test_client=flask_test_client,
        )
