"""The Socket.IO event being handled, and the Flask contexts built around it.

The current event lives in a :class:`~contextvars.ContextVar`; the context-aware helpers
(``emit``, ``join_room``...) read it, and it is mirrored onto :data:`flask.request` as
``request.sid``, ``request.namespace`` and ``request.event`` for code written for
Flask-SocketIO. Each event runs in an application context and a request context of the
application, with an empty ``g`` and a request object of its own built from the plain
WSGI environ of the connection's handshake request; ``teardown_request`` and
``teardown_appcontext`` functions run after every event, as after every request.

Theory of operation (the cost per event is the point; bench/ measures it):

* What does not change between the events of a socket is made at its first event and
  kept in a :class:`SocketRequest`, weakly keyed by the socket: the environ, a request
  object to clone, the routing of the handshake URL (one ``NotFound`` per socket, not
  one per event), and the contexts themselves (:class:`EventRequestContext`: the URL
  adapter, the session copy), pushed again by the socket's next event. An event that
  finds them in use (a nested or concurrent event of the same socket: ``disconnect()``
  in a handler, ``async_handlers=True``) makes its own.
* The request object is made when first read (``request.sid``...): a handler that never
  reads it costs no request.
* On the Flask versions whose context variables this module knows (2.2 to 3.1:
  ``flask.globals._cv_app`` and ``_cv_request``) the contexts are pushed by setting those
  variables, and teardown functions and signals are only called when there are some
  (:class:`_FastPush`): what ``AppContext`` and ``RequestContext`` ``push``/``pop`` do,
  minus their bookkeeping. On another Flask their own ``push``/``pop`` are used.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import flask
import flask.globals
import werkzeug.wrappers
from flask import signals
from flask.ctx import RequestContext
from flask.sessions import SessionMixin

import geventsio

if TYPE_CHECKING:
    from flask_ext.extension import SocketIO

#: Where a socket keeps its copy of the Flask session (``manage_session=True``).
SESSION_KEY = "flask_ext.session"

_OUTSIDE_EVENT = """\
Working outside of a Socket.IO event context.

This needs the client of the Socket.IO event being handled (request.sid): call it from
a Socket.IO event handler, or name the client and namespace, for example
socketio.emit(event, data, to=sid, namespace="/chat")."""


class EventContext:
    """One event being handled (read-only by convention: a plain class is cheaper to
    make, once per event, than a frozen dataclass).

    :param socketio: the extension that dispatched it.
    :param socket: the client's socket in its namespace.
    :param event: the event name (``"connect"`` and ``"disconnect"`` included).
    :param args: the event's arguments.
    """

    __slots__ = ("args", "event", "socket", "socketio")

    def __init__(
        self, socketio: SocketIO, socket: geventsio.Socket, event: str, args: tuple[Any, ...]
    ) -> None:
        self.socketio = socketio
        self.socket = socket
        self.event = event
        self.args = args

    def __repr__(self) -> str:
        return f"<EventContext {self.event!r} of {self.socket!r}>"

    @property
    def sid(self) -> str:
        """The client's socket id (Flask-SocketIO's ``request.sid``)."""
        return self.socket.id

    @property
    def namespace(self) -> str:
        """The namespace the event arrived in."""
        return str(self.socket.namespace.name)


_current_event: ContextVar[EventContext] = ContextVar("flask_ext.current_event")


def current_event() -> EventContext:
    """The event being handled.

    :raises RuntimeError: called outside a Socket.IO event handler.
    """
    try:
        return _current_event.get()
    except LookupError:
        raise RuntimeError(_OUTSIDE_EVENT) from None


def optional_event() -> EventContext | None:
    """The event being handled, or None outside a handler."""
    return _current_event.get(None)


class ManagedSession(dict[str, Any], SessionMixin):
    """A socket's own copy of the Flask session (``manage_session=True``)."""


def request_environ(socket: geventsio.Socket) -> dict[str, Any]:
    """A WSGI environ for a request context: the handshake's plain values, an empty body."""
    environ = dict(socket.handshake.environ)
    environ["wsgi.input"] = io.BytesIO()
    environ.setdefault("wsgi.errors", sys.stderr)
    return environ


#: An event's exception handler: its return value becomes the acknowledgement, or it
#: raises.
EventErrorHandler = Callable[[EventContext, Exception], Any]


class SocketRequest:
    """What the request contexts of one socket's events share, made at its first event.

    :ivar environ: the socket's WSGI environ (:func:`request_environ`).
    :ivar route: how the handshake URL was routed at the first event that needed it:
        ``(url_rule, view_args, routing_exception)``.
    :ivar spare: the socket's request context when no event is using it
        (``manage_session=True``).
    :ivar template: the request the socket's request contexts are created with (never
        handed to application code: it only gives them their URL adapter).
    """

    __slots__ = ("_clone", "environ", "route", "spare", "template")

    def __init__(self, app: flask.Flask, socket: geventsio.Socket) -> None:
        self.environ = request_environ(socket)
        self.template: flask.Request = app.request_class(self.environ)
        self.template.json_module = app.json
        # A request made from the environ only holds what werkzeug's Request.__init__
        # read from it: copying the template's attributes makes the same object, faster,
        # unless the application's request class adds an __init__ of its own.
        self._clone = type(self.template).__init__ is werkzeug.wrappers.Request.__init__
        self.route: tuple[Any, Any, Any] | None = None
        self.spare: EventRequestContext | None = None

    def request_for(self, app: flask.Flask, event: EventContext) -> flask.Request:
        """A fresh request object for ``event``, with ``sid``, ``namespace`` and ``event``."""
        template = self.template
        if self._clone:
            request = object.__new__(type(template))
            state = vars(request)
            state.update(vars(template))
            self.environ["werkzeug.request"] = request  # as Request.__init__ does
        else:
            request = app.request_class(self.environ)
            request.json_module = app.json
            state = vars(request)
        state["sid"] = event.socket.id
        state["namespace"] = event.namespace
        state["recovered"] = event.socket.recovered  # connection state recovery
        state["event"] = {"message": event.event, "args": event.args}
        return request


class EventRequestContext(RequestContext):
    """The request context of a Socket.IO event, with its application context.

    Pushed again for each event of its socket (:meth:`begin` sets the event). Each event
    gets a new ``g`` and a new request object, made when first read. The handshake URL
    is routed once per socket and the result replayed (``match_request`` is Flask's hook
    for this).

    :param shared: what the socket's events share.
    :ivar app_context: the application context pushed with it.
    """

    def __init__(
        self, app: flask.Flask, session: SessionMixin | None, shared: SocketRequest
    ) -> None:
        self.shared = shared
        self._event: EventContext | None = None
        self._request: flask.Request | None = None
        super().__init__(app, shared.environ, request=shared.template, session=session)
        self._request = None  # the template gave the URL adapter; events get their own
        self.app_context = app.app_context()

    @property
    def request(self) -> flask.Request:
        """The event's request object, made on first use."""
        request = self._request
        if request is None:
            request = self._request = self.shared.request_for(self.app, self.event)
            self._route(request)
        return request

    @request.setter
    def request(self, request: flask.Request) -> None:
        self._request = request

    @property
    def event(self) -> EventContext:
        """The event being handled in this context."""
        if self._event is None:
            raise RuntimeError("this Socket.IO request context has no event")
        return self._event

    def begin(self, event: EventContext) -> None:
        """Get ready for ``event``: an empty ``g``, a new request object, no cached
        flashed messages."""
        self.app_context.g = self.app.app_ctx_globals_class()
        self._event = event
        self._request = None
        self.flashes = None
        # after_this_request() functions never run for an event (there is no response);
        # a request context pushed again must not collect them from event to event.
        # (Flask's private list: the attribute is read defensively.)
        pending = getattr(self, "_after_request_functions", None)
        if pending:
            pending.clear()

    def end(self) -> None:
        """The event is over: close its request object, if it was made."""
        request = self._request
        self._event = self._request = None
        if request is not None:
            request.close()
            request.environ["werkzeug.request"] = None

    def copy(self) -> RequestContext:
        """A plain request context with this event's request object and session (what
        ``flask.copy_current_request_context`` pushes in another greenlet)."""
        return RequestContext(
            self.app, self.shared.environ, request=self.request, session=self.session
        )

    def match_request(self) -> None:
        """Routing is done when the request object is made (see :meth:`_route`)."""

    def _route(self, request: flask.Request) -> None:
        route = self.shared.route
        if route is None:
            if self.url_adapter is None:
                return
            super().match_request()
            error = request.routing_exception
            if error is not None:  # keep no frame of this event alive with the socket
                error.__traceback__ = None
            self.shared.route = (request.url_rule, request.view_args, error)
            return
        rule, view_args, error = route
        request.url_rule = rule
        request.view_args = None if view_args is None else dict(view_args)
        request.routing_exception = error


def _save_session(app: flask.Flask, context: RequestContext) -> None:
    """``manage_session=False``: let the session interface store changes (server-side
    sessions are shared with HTTP this way; a cookie session cannot be written back)."""
    session = context.session
    if getattr(session, "modified", True):
        app.session_interface.save_session(app, session, app.response_class())


class EventContexts:
    """Runs handlers in the Flask contexts of their event, for one application.

    :param app: the Flask application.
    :param on_error: called, in the event's contexts, with an exception a handler
        raised: returns the acknowledgement, or raises.
    """

    def __init__(self, app: flask.Flask, on_error: EventErrorHandler) -> None:
        self.app = app
        self.on_error = on_error
        self._sockets: WeakKeyDictionary[geventsio.Socket, SocketRequest] = WeakKeyDictionary()
        self._fast = _FastPush(self) if _FastPush.available() else None
        self._push = self._fast.run if self._fast is not None else self._plain_push

    def run(
        self,
        event: EventContext,
        manage_session: bool,
        function: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> Any:
        """``function(*args)`` with ``event`` current, in its Flask contexts."""
        token = _current_event.set(event)
        try:
            shared = self._sockets.get(event.socket)
            if shared is None:
                shared = self._sockets[event.socket] = SocketRequest(self.app, event.socket)
            if not manage_session:
                return self._run_unmanaged(shared, event, function, args)
            context = shared.spare
            shared.spare = None  # in use: a nested or concurrent event makes its own
            if context is None:
                session = self._managed_session(shared, event)
                context = EventRequestContext(self.app, session, shared)
            context.begin(event)
            try:
                return self._push(context, function, args)
            finally:
                context.end()
                shared.spare = context
        finally:
            _current_event.reset(token)

    def call(self, context: EventRequestContext, function: Callable[..., Any], args: Any) -> Any:
        """``function(*args)``, or ``on_error`` with its exception."""
        try:
            return function(*args)
        except Exception as exc:
            return self.on_error(context.event, exc)

    def _plain_push(
        self, context: EventRequestContext, function: Callable[..., Any], args: Any
    ) -> Any:
        """What :class:`_FastPush` does, with the contexts' own push and pop."""
        with context.app_context, context:
            return self.call(context, function, args)

    def _run_unmanaged(
        self,
        shared: SocketRequest,
        event: EventContext,
        function: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> Any:
        """``manage_session=False``: the session is opened at each event, and saved."""
        context = EventRequestContext(self.app, None, shared)
        context.begin(event)
        try:
            with context.app_context, context:
                result = self.call(context, function, args)
                _save_session(self.app, context)
                return result
        finally:
            context.end()

    def _managed_session(self, shared: SocketRequest, event: EventContext) -> ManagedSession:
        """The socket's copy of the session, taken from the handshake's cookie at its
        first event."""
        session: ManagedSession | None = event.socket.data.get(SESSION_KEY)
        if session is None:
            if self._fast is not None:  # the session interface sees the event's contexts
                opening = EventRequestContext(self.app, None, shared)
                opening.begin(event)
                try:
                    session = ManagedSession(self._fast.open_session(opening))
                finally:
                    opening.end()
            else:  # this also runs the teardown functions, once per socket
                with self.app.request_context(shared.environ):
                    session = ManagedSession(flask.session)
            event.socket.data[SESSION_KEY] = session
        return session


class _FastPush:
    """Pushes an event's application and request contexts and pops them as
    ``AppContext.push``/``pop`` and ``RequestContext.push``/``pop`` do: the same context
    variables set and reset, the same teardown functions and signals in the same order
    with the same exception, but no call that would find no teardown function and no
    signal receiver, and none of the contexts' bookkeeping for being pushed several
    times at once (an event's contexts never are).

    It sets Flask's private context variables ``flask.globals._cv_app`` and
    ``_cv_request`` (Flask 2.2 to 3.1); :meth:`available` says whether they are there.
    """

    def __init__(self, contexts: EventContexts) -> None:
        self.app = contexts.app
        self.on_error = contexts.on_error
        self._cv_app: ContextVar[Any] = flask.globals._cv_app
        self._cv_request: ContextVar[Any] = flask.globals._cv_request

    @staticmethod
    def available() -> bool:
        """Whether this Flask has the context variables of Flask 2.2 to 3.1."""
        names = ("_cv_app", "_cv_request")
        return all(isinstance(getattr(flask.globals, n, None), ContextVar) for n in names)

    def open_session(self, context: EventRequestContext) -> SessionMixin:
        """Open the session of ``context``'s request as ``RequestContext.push`` does, the
        contexts pushed, but no teardown after it: this is not an event."""
        app = self.app
        app_token = self._cv_app.set(context.app_context)
        request_token = self._cv_request.set(context)
        try:
            interface = app.session_interface
            session = interface.open_session(app, context.request)
            return session if session is not None else interface.make_null_session(app)
        finally:
            self._cv_request.reset(request_token)
            self._cv_app.reset(app_token)

    def run(self, context: EventRequestContext, function: Callable[..., Any], args: Any) -> Any:
        """``function(*args)`` (or the error handler) with ``context`` and its application
        context pushed."""
        app = self.app
        error: BaseException | None = None
        app_token = self._cv_app.set(context.app_context)
        try:
            if signals.appcontext_pushed.receivers:
                signals.appcontext_pushed.send(app, _async_wrapper=app.ensure_sync)
            request_token = self._cv_request.set(context)
            try:
                try:
                    return function(*args)
                except Exception as exc:
                    return self.on_error(context.event, exc)
            except BaseException as exc:
                error = exc
                raise
            finally:
                try:
                    if app.teardown_request_funcs or signals.request_tearing_down.receivers:
                        app.do_teardown_request(error)
                finally:
                    self._cv_request.reset(request_token)
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                if app.teardown_appcontext_funcs or signals.appcontext_tearing_down.receivers:
                    app.do_teardown_appcontext(error)
            finally:
                self._cv_app.reset(app_token)
            if signals.appcontext_popped.receivers:
                signals.appcontext_popped.send(app, _async_wrapper=app.ensure_sync)
