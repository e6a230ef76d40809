"""The Flask contexts of a Socket.IO event.

Each event runs in an application context and a request context of the application,
with an empty ``g`` and a request object of its own built from the plain WSGI environ of
the connection's handshake request; ``teardown_request`` and ``teardown_appcontext``
functions run after every event, as after every request. ``request.sid``,
``request.namespace`` and ``request.event`` describe the event.

The session: with ``manage_session=True`` each client has its own copy of the Flask
session, taken from the handshake's cookie at its first event and kept by flask_ext
(never in ``socket.data``: ``fetch_sockets()`` sends that to every server of a
cluster). With ``manage_session=False`` the session is opened from the session interface
at every event (a live session: a server-side session changed by an HTTP request is seen
by the next event), and saved after it.

Each event runs in a :class:`contextvars.Context` of its own, where it is current
(:func:`flask_ext.event.current_event`): its code sees none of the caller's context
variables, and what it sets in them is dropped after it, as in a greenlet of its own.

Two ways to make the contexts: Flask's public API (``app.request_context(environ)``,
pushed and popped per event), on any Flask; and a fast path on Flask's private context
variables (:mod:`flask_ext.fastpath`), taken only on the Flask versions it was written
for (:func:`fast_path_available`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Callable, Sized
from typing import Any
from weakref import WeakKeyDictionary

import flask
import flask.ctx
from flask.sessions import SessionMixin

import geventsio
from flask_ext.event import (
    Args,
    CopiedRequestContext,
    EventContext,
    EventErrorHandler,
    EventRunner,
    ManagedSession,
    making_current,
    request_environ,
    save_session,
)

Handler = Callable[..., Any]

#: :attr:`EventContexts.event_handler`.
HandlerFactory = Callable[[str | None, Handler, Handler, Any, Sized], Handler]

#: The Flask versions :mod:`flask_ext.fastpath` was written for: ``[first, end)``.
FAST_PATH_FLASK = ((2, 2), (3, 2))


def flask_version() -> tuple[int, int]:
    """The installed Flask's major and minor version."""
    major, minor = importlib.metadata.version("flask").split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def fast_path_available() -> bool:
    """Whether the installed Flask is one the fast path was written for."""
    first, end = FAST_PATH_FLASK
    return first <= flask_version() < end


def _general_handler(
    name: str | None, function: Handler, general: Handler, settings: Any, hooks: Sized
) -> Handler:
    return general


class _PublicRequestContext(flask.ctx.RequestContext):
    """Flask's request context of an event, whose copy (what
    ``flask.copy_current_request_context`` pushes) makes the event current too."""

    def __init__(
        self,
        app: flask.Flask,
        environ: dict[str, Any],
        session: SessionMixin | None,
        event: EventContext,
    ) -> None:
        super().__init__(app, environ, session=session)
        self.event = event

    def copy(self) -> CopiedRequestContext:
        """The copy, with this request object and session, where the event is current."""
        return CopiedRequestContext(
            self.app, self.request.environ, self.request, self.session, self.event
        )


class _SocketState:
    """What the public path keeps per socket: the environ and the session copy."""

    __slots__ = ("__weakref__", "environ", "session")

    def __init__(self, socket: geventsio.Socket) -> None:
        self.environ = request_environ(socket)
        self.session: ManagedSession | None = None


class EventContexts:
    """Runs handlers in the Flask contexts of their event, for one application.

    :param app: the Flask application.
    :param on_error: called, in the event's contexts, with an exception a handler
        raised: returns the acknowledgement, or raises.
    :param fast: take the fast path (default: when :func:`fast_path_available`).
    :ivar run: ``run(event, manage_session, function, args)``: ``function(*args)`` with
        ``event`` current, in its Flask contexts; an exception goes to ``on_error``,
        whose return value is returned. (An attribute: the chosen path's own method,
        one call less per event.)
    :ivar event_handler: ``event_handler(name, function, general, settings, hooks)``:
        geventsio's handler of event ``name`` (None: its catch-all), given ``general``,
        the dispatcher's wrapper of ``function`` (which calls ``run``): ``general``
        itself, or on the fast path one that does the same in fewer calls
        (:meth:`flask_ext.fastpath.FastContexts.event_handler`).
    """

    run: EventRunner
    event_handler: HandlerFactory

    def __init__(
        self, app: flask.Flask, on_error: EventErrorHandler, fast: bool | None = None
    ) -> None:
        self.app = app
        self.on_error = on_error
        self._states: WeakKeyDictionary[geventsio.Socket, _SocketState] = WeakKeyDictionary()
        # Before Flask 3.2 a request context reuses the application context already pushed
        # for its app: a fresh one first, so that an event nested in another (disconnect()
        # in a handler) gets its own g. From 3.2 a request context is an application
        # context of its own (Flask's contexts were merged).
        self._separate_app_context = flask_version() < (3, 2)
        if fast_path_available() if fast is None else fast:
            from flask_ext.fastpath import FastContexts

            fast_contexts = FastContexts(app, on_error)
            self.run = fast_contexts.run  # makes the event current itself
            self.event_handler = fast_contexts.event_handler
        else:
            self.run = making_current(self._run_public)
            self.event_handler = _general_handler

    def _contexts(
        self, environ: dict[str, Any], session: SessionMixin | None, event: EventContext
    ) -> contextlib.ExitStack:
        """The contexts of ``event``, entered by ``with``, made with Flask's public
        constructors and given ``session`` (None: the session interface opens it)."""
        with contextlib.ExitStack() as stack:  # what was pushed is popped if a push fails
            if self._separate_app_context:  # Flask < 3.2
                stack.enter_context(self.app.app_context())
                stack.enter_context(_PublicRequestContext(self.app, environ, session, event))
            else:  # Flask 3.2: AppContext(app, request=..., session=...)
                request = self.app.request_class(environ)
                request.json_module = self.app.json
                app_context: Any = flask.ctx.AppContext
                stack.enter_context(app_context(self.app, request=request, session=session))
            return stack.pop_all()

    def _managed_session(self, state: _SocketState) -> ManagedSession:
        """The socket's copy of the session, opened from the handshake's cookie at its
        first event by the session interface."""
        if state.session is None:
            app = self.app
            request = app.request_class(state.environ)
            opened = app.session_interface.open_session(app, request)
            state.session = ManagedSession(opened or {})
        return state.session

    def _run_public(
        self, event: EventContext, manage_session: bool, function: Handler, args: Args
    ) -> Any:
        state = self._states.get(event.socket)
        if state is None:
            state = self._states[event.socket] = _SocketState(event.socket)
        managed = self._managed_session(state) if manage_session else None
        with self._contexts(state.environ, managed, event):
            request = flask.request
            request.sid = event.sid  # type: ignore[attr-defined]
            request.namespace = event.namespace  # type: ignore[attr-defined]
            request.recovered = event.socket.recovered  # type: ignore[attr-defined]
            request.event = {"message": event.event, "args": event.args}  # type: ignore[attr-defined]
            try:
                result = function(*args)
            except Exception as exc:
                result = self.on_error(event, exc)
            if managed is None:
                save_session(self.app, flask.session)
            return result
