"""The Socket.IO event being handled, and the Flask contexts built around it.

The current event lives in a :class:`~contextvars.ContextVar`; the context-aware helpers
(``emit``, ``join_room``...) read it, and it is mirrored onto :data:`flask.request` as
``request.sid``, ``request.namespace`` and ``request.event`` for code written for
Flask-SocketIO. Each event gets a fresh application context and a fresh request context
built from the plain WSGI environ of the connection's handshake request, so ``g`` starts
empty and ``teardown_request`` functions run after every event, as after every request.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import flask
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


@dataclass(frozen=True, slots=True)
class EventContext:
    """One event being handled.

    :param socketio: the extension that dispatched it.
    :param socket: the client's socket in its namespace.
    :param event: the event name (``"connect"`` and ``"disconnect"`` included).
    :param args: the event's arguments.
    """

    socketio: SocketIO
    socket: geventsio.Socket
    event: str
    args: tuple[Any, ...]

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


def _managed_session(
    app: flask.Flask, socket: geventsio.Socket, environ: dict[str, Any]
) -> ManagedSession:
    session: ManagedSession | None = socket.data.get(SESSION_KEY)
    if session is None:
        with app.request_context(environ):
            session = ManagedSession(flask.session)
        socket.data[SESSION_KEY] = session
    return session


def _save_session(app: flask.Flask, context: RequestContext) -> None:
    """``manage_session=False``: let the session interface store changes (server-side
    sessions are shared with HTTP this way; a cookie session cannot be written back)."""
    session = context.session
    if getattr(session, "modified", True):
        app.session_interface.save_session(app, session, app.response_class())


@contextmanager
def event_context(app: flask.Flask, event: EventContext, manage_session: bool) -> Iterator[None]:
    """Make ``event`` current, inside fresh application and request contexts of ``app``."""
    token = _current_event.set(event)
    try:
        environ = request_environ(event.socket)
        with app.app_context():
            session = _managed_session(app, event.socket, environ) if manage_session else None
            context = RequestContext(app, environ, session=session)
            with context:
                vars(context.request).update(
                    sid=event.sid,
                    namespace=event.namespace,
                    event={"message": event.event, "args": event.args},
                )
                yield
                if not manage_session:
                    _save_session(app, context)
    finally:
        _current_event.reset(token)
