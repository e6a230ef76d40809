"""The fast path of the Flask contexts of an event, on Flask's private API (gated).

This is the one module of flask_ext that touches Flask's private API. It is imported only
on the Flask versions it was written for (2.2 to 3.1, whose context variables are
``flask.globals._cv_app`` and ``_cv_request``; see :mod:`flask_ext.context`); elsewhere
the contexts are made with Flask's public API. Both paths run the same tests.

Theory of operation (the cost per event is the point; bench/ measures it):

* What does not change between the events of a socket is made at its first event and
  kept in a :class:`SocketRequest`, kept while the socket lives: the routing of the
  handshake URL (one ``NotFound`` per socket, not one per event) and the session copy
  (``manage_session=True``: never in ``socket.data``, which ``fetch_sockets()`` sends to
  other servers), for the socket's life; and, while the socket is among the
  :attr:`FastContexts.warm_sockets` that had an event last, its :class:`RequestBasis`
  (the environ, a request object to clone) and its contexts
  (:class:`EventRequestContext`), pushed again by the socket's next event. A socket that
  falls out of that set (an idle one) drops them (about 3 KiB) and makes them again at
  its next event. An event that finds the contexts in use (a nested or concurrent event
  of the same socket: ``disconnect()`` in a handler, ``async_handlers=True``) makes its
  own.
* The request object, ``g`` and the :class:`~flask_ext.event.EventContext` are made
  when first read (``request.sid``...): a handler that never reads them costs none.
* The contexts are pushed by running the event in a copy of a
  :class:`contextvars.Context` made once per request context, where Flask's context
  variables and the current event's are set (:class:`PushableContext`): no variable is
  set and reset per event, and the event's code sees none of the caller's variables
  and leaves none of its own behind. Teardown functions and signals are only called
  when there are some (:class:`_FastPush`): what ``AppContext`` and ``RequestContext``
  ``push``/``pop`` do, minus their bookkeeping.
* An event handler's common case (a warm socket, no ``before_event`` function, no
  teardown function nor signal receiver of the application context) is run in one call
  of its geventsio handler (:func:`_plain_event_handler`), with what ``FastContexts.run``
  and ``_FastPush.run`` would do inline.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sized
from contextvars import Context, ContextVar, Token
from functools import partial
from typing import Any, Protocol
from weakref import ref

import flask
import flask.globals
import werkzeug.wrappers
from flask import signals
from flask.ctx import AppContext, RequestContext, _AppCtxGlobals
from flask.sessions import SessionMixin

import geventsio
from flask_ext.event import (
    Args,
    CopiedRequestContext,
    EventContext,
    EventErrorHandler,
    EventSlot,
    ManagedSession,
    current_event_var,
    request_environ,
    save_session,
)


class SocketRequest:
    """What the request contexts of one socket's events share, made at its first event.

    Holds nothing of the socket itself but a weak reference, whose callback removes it
    from the dictionary of the sockets' SocketRequests when the socket goes.

    :param socket_ref: a weak reference to the socket, whose callback drops this entry
        (:func:`_forget`).
    :ivar route: how the handshake URL was routed at the first event that needed it:
        ``(url_rule, view_args, routing_exception)``.
    :ivar session: the socket's copy of the Flask session (``manage_session=True``).
    :ivar basis: the socket's environ and request template while the socket is warm
        (None once it went idle: :meth:`basis_for` makes them again).
    :ivar spare: the socket's request context and its context variables when no
        event is using them (``manage_session=True``; dropped with ``basis``).
    """

    __slots__ = ("basis", "route", "session", "socket_ref", "spare")

    def __init__(self, socket_ref: ref[geventsio.Socket]) -> None:
        self.socket_ref = socket_ref
        self.route: tuple[Any, Any, Any] | None = None
        self.spare: PushableContext | None = None
        self.session: ManagedSession | None = None
        self.basis: RequestBasis | None = None

    def basis_for(self, app: flask.Flask, socket: geventsio.Socket) -> RequestBasis:
        """The socket's :class:`RequestBasis`, made again if it was dropped."""
        basis = self.basis
        if basis is None:
            basis = self.basis = RequestBasis(app, socket)
        return basis

    def cool(self) -> None:
        """The socket went idle: drop what its next event can make again (a context in
        use keeps its own references to them)."""
        self.basis = None
        self.spare = None


class RequestBasis:
    """What a socket's request objects are made from.

    :ivar environ: the socket's WSGI environ (:func:`request_environ`).
    :ivar template: the request the socket's request contexts are created with (never
        handed to application code: it only gives them their URL adapter).
    """

    __slots__ = ("_clone", "environ", "template")

    def __init__(self, app: flask.Flask, socket: geventsio.Socket) -> None:
        self.environ = request_environ(socket)
        self.template: flask.Request = app.request_class(self.environ)
        self.template.json_module = app.json
        # A request made from the environ only holds what werkzeug's Request.__init__
        # read from it: copying the template's attributes makes the same object, faster,
        # unless the application's request class adds an __init__ of its own.
        self._clone = type(self.template).__init__ is werkzeug.wrappers.Request.__init__

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


class EventAppContext(AppContext):
    """The application context of a socket's events, pushed again for each: its ``g``
    is made when first read in an event, so that an event that never reads it costs
    none.

    :ivar made_g: the event's ``g`` once made; set to None when an event ends.
    """

    def __init__(self, app: flask.Flask) -> None:
        self.made_g: _AppCtxGlobals | None = None
        super().__init__(app)

    @property
    def g(self) -> _AppCtxGlobals:
        """The event's ``g``: empty at each event."""
        g = self.made_g
        if g is None:
            g = self.made_g = self.app.app_ctx_globals_class()
        return g

    @g.setter
    def g(self, g: _AppCtxGlobals) -> None:
        self.made_g = g


class EventRequestContext(RequestContext):
    """The request context of a Socket.IO event, with its application context.

    Pushed again for each event of its socket: an event sets ``slot.event`` (the
    context is ready since it was made or since the last event's :meth:`end`). Each
    event gets a new ``g`` and a new request object, made when first read. The handshake URL
    is routed once per socket and the result replayed (``match_request`` is Flask's hook
    for this).

    :param shared: what the socket's events share.
    :param basis: the socket's environ and request template (kept by the context: the
        socket may drop its own while an event uses this one).
    :ivar app_context: the application context pushed with it.
    """

    def __init__(
        self,
        app: flask.Flask,
        session: SessionMixin | None,
        shared: SocketRequest,
        basis: RequestBasis,
    ) -> None:
        self.shared = shared
        self.basis = basis
        self.slot = EventSlot()
        self._request: flask.Request | None = None
        super().__init__(app, basis.environ, request=basis.template, session=session)
        self._request = None  # the template gave the URL adapter; events get their own
        self.app_context = EventAppContext(app)

    @property
    def request(self) -> flask.Request:
        """The event's request object, made on first use."""
        request = self._request
        if request is None:
            request = self._request = self.basis.request_for(self.app, self.event)
            self._route(request)
        return request

    @request.setter
    def request(self, request: flask.Request) -> None:
        self._request = request

    @property
    def event(self) -> EventContext:
        """The event being handled in this context."""
        event = self.slot.event
        if event is None:
            raise RuntimeError("this Socket.IO request context has no event")
        return event

    def end(self) -> None:
        """The event is over: close its request object, if it was made, and get ready
        for the next event (which only puts itself in ``slot``): ``g`` made again when
        read, no cached flashed messages."""
        request = self._request
        slot = self.slot
        slot.made = slot.socket = slot.args = self._request = self.flashes = None
        self.app_context.made_g = None
        if request is not None:
            close_request(request)

    @property
    def _after_request_functions(self) -> list[Any]:
        """``after_this_request()`` functions never run for an event (there is no
        response): each use of Flask's private list gets a new one, dropped, so that a
        request context pushed again collects none from event to event."""
        return []

    @_after_request_functions.setter
    def _after_request_functions(self, functions: list[Any]) -> None:
        """``RequestContext.__init__`` sets the list: ignored."""

    def copy(self) -> RequestContext:
        """A plain request context with this event's request object and session, where
        the event is current (what ``flask.copy_current_request_context`` pushes in
        another greenlet)."""
        return CopiedRequestContext(
            self.app, self.basis.environ, self.request, self.session, self.event
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
                # (nor in the exception it was raised from: werkzeug's NoMatch, whose
                # frames hold this socket, which this cached route would keep for good)
                error.__traceback__ = error.__context__ = error.__cause__ = None
            self.shared.route = (request.url_rule, request.view_args, error)
            return
        rule, view_args, error = route
        request.url_rule = rule
        request.view_args = None if view_args is None else dict(view_args)
        request.routing_exception = error


class PushableContext:
    """A socket's :class:`EventRequestContext` with the context variables its events run
    in (:meth:`_FastPush.variables`), copied for each event. (Kept apart from the request
    context, which the variables hold.)

    :ivar context: the request context.
    :ivar in_request: the variables with the request context pushed.
    """

    __slots__ = ("_fewer", "context", "in_request")

    def __init__(self, context: EventRequestContext, push: _FastPush) -> None:
        self.context = context
        self.in_request = push.variables(context, REQUEST)
        self._fewer: list[Context | None] = [None, None]  # EVENT, APP: when needed

    def copy(self, depth: int, push: _FastPush) -> Context:
        """A copy of the variables with the contexts pushed to ``depth`` (:data:`EVENT`
        or :data:`APP`)."""
        variables = self._fewer[depth]
        if variables is None:
            variables = self._fewer[depth] = push.variables(self.context, depth)
        return variables.copy()


class FastContexts:
    """Runs handlers in the Flask contexts of their event, for one application.

    :param app: the Flask application.
    :param on_error: called, in the event's contexts, with an exception a handler
        raised: returns the acknowledgement, or raises.
    :param warm_sockets: how many sockets (those that had an event last) keep their
        environ, request template and contexts between events; the others keep only
        their session and routing.
    """

    #: The default of ``warm_sockets``: every socket of a busy server that is sending
    #: stays warm in practice, and 5,000 idle sockets hold ~3 KiB each only for these.
    WARM_SOCKETS = 256

    def __init__(
        self, app: flask.Flask, on_error: EventErrorHandler, warm_sockets: int | None = None
    ) -> None:
        self.app = app
        self.on_error = on_error
        #: Each socket's SocketRequest, by the socket's id(): the callback of its weak
        #: reference to the socket removes it while the socket is being freed, before
        #: another object can have that id (a WeakKeyDictionary without its Python
        #: call and without a weak reference made per look-up).
        self._sockets: dict[int, SocketRequest] = {}
        #: The warm sockets' SocketRequests, the least recently used first.
        self._warm: OrderedDict[SocketRequest, None] = OrderedDict()
        self._warm_limit = max(1, self.WARM_SOCKETS if warm_sockets is None else warm_sockets)
        self._push = _FastPush(self)

    def run(
        self, event: EventContext, manage_session: bool, function: Callable[..., Any], args: Args
    ) -> Any:
        """``function(*args)`` in the Flask contexts of ``event``, which is made current
        (:func:`flask_ext.event.current_event`)."""
        shared = self._sockets.get(id(event.socket))
        if shared is None:
            shared = self._add(event.socket)
        try:
            self._warm.move_to_end(shared)  # the warmest now
        except KeyError:
            self._warm_up(shared)
        if not manage_session:
            return self._run_unmanaged(shared, event, function, args)
        pushable = shared.spare
        shared.spare = None  # in use: a nested or concurrent event makes its own
        if pushable is None:
            session = self._managed_session(shared, event)
            pushable = PushableContext(self._context(shared, event, session), self._push)
        context = pushable.context
        context.slot.made = event
        try:
            return self._push.run(pushable, function, args)
        finally:
            context.end()
            if context.basis is shared.basis:  # not if the socket cooled meanwhile
                shared.spare = pushable

    def event_handler(
        self,
        name: str | None,
        function: Callable[..., Any],
        general: Callable[..., Any],
        settings: HandlerSettings,
        hooks: Sized,
    ) -> Callable[..., Any]:
        """geventsio's handler of event ``name``: ``function(*args)`` in the event's
        contexts, as ``general`` (the dispatcher's wrapper, which calls :meth:`run`)
        would run it, in one call when it can (see :func:`_plain_event_handler`). With
        ``name`` None, geventsio's catch-all: ``function(event, *args)``."""
        return _plain_event_handler(self, name, function, general, settings, hooks)

    def socket_request(self, socket: geventsio.Socket) -> SocketRequest | None:
        """What the events of ``socket`` share, if it had any."""
        return self._sockets.get(id(socket))

    def _add(self, socket: geventsio.Socket) -> SocketRequest:
        key = id(socket)
        shared = SocketRequest(ref(socket, partial(_forget, self, key)))
        self._sockets[key] = shared
        return shared

    def _warm_up(self, shared: SocketRequest) -> None:
        """``shared`` was cold and had an event: it is the warmest; the coldest beyond
        the limit cool. (No check-then-act on the dictionary: a handler may run in
        another thread.)"""
        warm = self._warm
        warm[shared] = None
        while len(warm) > self._warm_limit:
            try:
                coldest, _ = warm.popitem(last=False)
            except KeyError:
                break
            coldest.cool()

    def _context(
        self, shared: SocketRequest, event: EventContext, session: SessionMixin | None
    ) -> EventRequestContext:
        return EventRequestContext(
            self.app, session, shared, shared.basis_for(self.app, event.socket)
        )

    def call(self, context: EventRequestContext, function: Callable[..., Any], args: Any) -> Any:
        """``function(*args)``, or ``on_error`` with its exception."""
        try:
            return function(*args)
        except Exception as exc:
            return self.on_error(context.event, exc)

    def _run_unmanaged(
        self,
        shared: SocketRequest,
        event: EventContext,
        function: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> Any:
        """``manage_session=False``: the session is opened at each event, and saved."""
        context = self._context(shared, event, None)
        context.slot.made = event
        try:
            variables = self._push.variables(context, EVENT)
            return variables.run(self._push_unmanaged, context, function, args)
        finally:
            context.end()

    def _push_unmanaged(
        self, context: EventRequestContext, function: Callable[..., Any], args: Args
    ) -> Any:
        # Through Any: mypyc cannot enter a context manager whose __enter__ a Flask base
        # class defines.
        app_context: Any = context.app_context
        request_context: Any = context
        with app_context, request_context:
            result = self.call(context, function, args)
            save_session(self.app, context.session)
            return result

    def _managed_session(self, shared: SocketRequest, event: EventContext) -> ManagedSession:
        """The socket's copy of the session, taken from the handshake's cookie at its
        first event."""
        session = shared.session
        if session is None:
            opening = self._context(shared, event, None)
            opening.slot.made = event
            try:
                session = ManagedSession(self._push.open_session(opening))
            finally:
                opening.end()
            shared.session = session
        return session


class _FastPush:
    """Runs an event's code in its application and request contexts, as
    ``AppContext.push``/``pop`` and ``RequestContext.push``/``pop`` would: the same
    teardown functions and signals, in the same order, in the same contexts, with the
    same exception; but no call that would find no teardown function and no signal
    receiver, and none of the contexts' bookkeeping for being pushed several times at
    once (an event's contexts never are).

    The contexts are pushed by running the event in a copy of a
    :class:`contextvars.Context` where Flask's context variables (``flask.globals._cv_app``
    and ``_cv_request``, Flask 2.2 to 3.1: see
    :func:`flask_ext.context.fast_path_available`) and :data:`current_event_var` are
    already set (:class:`PushableContext`): a copy costs less than one variable set and
    reset, and what the event's code sets in it is dropped with it. Only what must run
    with the request context popped (``teardown_appcontext`` functions, the application
    context's signals) makes it set and reset variables, in a copy of a context with
    fewer of them set.
    """

    def __init__(self, contexts: FastContexts) -> None:
        self.app = contexts.app
        self.on_error = contexts.on_error
        self._cv_app: ContextVar[Any] = flask.globals._cv_app
        self._cv_request: ContextVar[Any] = flask.globals._cv_request

    def variables(self, context: EventRequestContext, depth: int) -> Context:
        """A new :class:`contextvars.Context` (none of the caller's variables) with
        ``context``'s event current and, by ``depth``, its application context
        (:data:`APP`) and request context (:data:`REQUEST`) pushed."""
        values: list[tuple[ContextVar[Any], Any]] = [(current_event_var, context.slot)]
        if depth >= APP:
            values.append((self._cv_app, context.app_context))
        if depth >= REQUEST:
            values.append((self._cv_request, context))
        variables = Context()
        variables.run(_set_all, values)
        return variables

    def open_session(self, context: EventRequestContext) -> SessionMixin:
        """Open the session of ``context``'s request as ``RequestContext.push`` does, the
        contexts pushed, but no teardown after it: this is not an event."""
        return self.variables(context, REQUEST).run(self._open_session, context)

    def _open_session(self, context: EventRequestContext) -> SessionMixin:
        app = self.app
        interface = app.session_interface
        session = interface.open_session(app, context.request)
        return session if session is not None else interface.make_null_session(app)

    def run(self, pushable: PushableContext, function: Callable[..., Any], args: Any) -> Any:
        """``function(*args)`` (or the error handler) with ``pushable``'s contexts
        pushed."""
        app = self.app
        if signals.appcontext_popped.receivers:
            return pushable.copy(EVENT, self).run(self._in_event, pushable.context, function, args)
        if (
            app.teardown_appcontext_funcs
            or signals.appcontext_tearing_down.receivers
            or signals.appcontext_pushed.receivers
        ):
            return pushable.copy(APP, self).run(self._in_app, pushable.context, function, args)
        return pushable.in_request.copy().run(self._in_request, pushable.context, function, args)

    def _in_event(
        self, context: EventRequestContext, function: Callable[..., Any], args: Any
    ) -> Any:
        """Push the application context, run, pop it (only the event is current)."""
        return self._in_app(context, function, args, self._cv_app.set(context.app_context))

    def _in_app(
        self,
        context: EventRequestContext,
        function: Callable[..., Any],
        args: Any,
        app_token: Token[Any] | None = None,
    ) -> Any:
        """Push the request context, run, pop it, tear the application context down
        (the application context is pushed: by this event if ``app_token``, which then
        pops it and sends ``appcontext_popped`` after the teardown, as
        ``AppContext.pop`` does)."""
        app = self.app
        error: BaseException | None = None
        try:
            return self._push_request(context, function, args)
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                self._teardown_app(error)
            finally:
                if app_token is not None:
                    self._cv_app.reset(app_token)
            if app_token is not None and signals.appcontext_popped.receivers:
                signals.appcontext_popped.send(app, _async_wrapper=app.ensure_sync)

    def _push_request(
        self, context: EventRequestContext, function: Callable[..., Any], args: Any
    ) -> Any:
        app = self.app
        if signals.appcontext_pushed.receivers:
            signals.appcontext_pushed.send(app, _async_wrapper=app.ensure_sync)
        request_token = self._cv_request.set(context)
        try:
            return self._in_request(context, function, args)
        finally:
            self._cv_request.reset(request_token)

    def _in_request(
        self, context: EventRequestContext, function: Callable[..., Any], args: Any
    ) -> Any:
        """Run, then the request's teardown (the request context is pushed)."""
        app = self.app
        error: BaseException | None = None
        try:
            try:
                return function(*args)
            except Exception as exc:
                return self.on_error(context.event, exc)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if app.teardown_request_funcs or signals.request_tearing_down.receivers:
                app.do_teardown_request(error)

    def _teardown_app(self, error: BaseException | None) -> None:
        app = self.app
        if app.teardown_appcontext_funcs or signals.appcontext_tearing_down.receivers:
            app.do_teardown_appcontext(error)


class HandlerSettings(Protocol):
    """What a handler reads of its dispatcher at each event."""

    manage_session: bool


def _plain_event_handler(
    contexts: FastContexts,
    name: str | None,
    function: Callable[..., Any],
    general: Callable[..., Any],
    settings: HandlerSettings,
    hooks: Sized,
) -> Callable[..., Any]:
    """The handler of event ``name`` (see :meth:`FastContexts.event_handler`).

    The common case, a warm socket's event with its contexts spare, ``manage_session``,
    no ``before_event`` function, and no teardown function nor signal receiver but for
    the request's teardown, is what :meth:`FastContexts.run` and :meth:`_FastPush.run`
    do, in this one call: the event is put in its slot as its parts (its
    :class:`EventContext` made only if read), ``function`` and the error handler run in
    the copy of the socket's context variables directly (an event of one argument
    without ``*args``: a call with ``*args`` costs more than the rest). Anything else
    is ``general``'s. (The signals' receivers and the application's teardown functions
    are read in the containers Flask and blinker only ever change, never replace.)
    """
    shared_for, warmest = contexts._sockets.get, contexts._warm.move_to_end
    app, on_error = contexts.app, contexts.on_error
    app_teardowns, request_teardowns = app.teardown_appcontext_funcs, app.teardown_request_funcs
    popped, pushed = signals.appcontext_popped.receivers, signals.appcontext_pushed.receivers
    app_down = signals.appcontext_tearing_down.receivers
    request_down = signals.request_tearing_down.receivers

    def handle(socket: geventsio.Socket, *args: Any) -> Any:
        shared = shared_for(id(socket))
        if (
            shared is None
            or (pushable := shared.spare) is None
            or hooks
            or not settings.manage_session
            or popped
            or pushed
            or app_down
            or app_teardowns
        ):
            return general(socket, *args)
        try:
            warmest(shared)
        except KeyError:  # cooled by another thread since: the general path warms it
            return general(socket, *args)
        shared.spare = None  # in use: a nested or concurrent event makes its own
        context = pushable.context
        slot, app_context = context.slot, context.app_context
        slot.socket = socket
        if name is None:  # the catch-all: (event, *args)
            slot.name, slot.args = args[0], args[1:]
        else:
            slot.name = name
            slot.args = args
        variables = pushable.in_request.copy()
        error: BaseException | None = None
        try:
            try:
                if len(args) == 1:
                    return variables.run(function, args[0])
                return variables.run(function, *args)
            except Exception as exc:
                return variables.run(on_error, context.event, exc)
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                if request_teardowns or request_down:
                    variables.run(app.do_teardown_request, error)
            finally:  # context.end(), inline: one call less
                request = context._request
                slot.made = slot.socket = slot.args = context._request = context.flashes = None
                app_context.made_g = None
                if request is not None:
                    close_request(request)
                if context.basis is shared.basis:  # not if the socket cooled meanwhile
                    shared.spare = pushable

    return handle


def close_request(request: flask.Request) -> None:
    """Close the request object of an event that is over."""
    request.close()
    request.environ["werkzeug.request"] = None


def _forget(contexts: FastContexts, key: int, socket_ref: ref[Any]) -> None:
    """The callback of a socket's weak reference (``socket_ref``): drop its entry, kept
    by id ``key``. (It holds ``contexts``, one per extension, for as long as the socket
    lives: a compiled FastContexts cannot be weakly referenced.)"""
    shared = contexts._sockets.get(key)
    if shared is not None and shared.socket_ref is socket_ref:
        contexts._sockets.pop(key, None)


#: How much of an event's contexts a set of context variables has pushed
#: (:meth:`_FastPush.variables`): the event only, its application context too, or its
#: request context too.
EVENT, APP, REQUEST = 0, 1, 2


def _set_all(values: list[tuple[ContextVar[Any], Any]]) -> None:
    for variable, value in values:
        variable.set(value)
