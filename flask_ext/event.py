"""The Socket.IO event being handled: a :class:`~contextvars.ContextVar`.

The context-aware helpers (``emit``, ``join_room``...) read it; it is mirrored onto
:data:`flask.request` as ``request.sid``, ``request.namespace`` and ``request.event`` for
code written for Flask-SocketIO.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from contextvars import Context, ContextVar, Token
from typing import Any

import flask
import flask.ctx
from flask.sessions import SessionMixin

import geventsio

_OUTSIDE_EVENT = """\
Working outside of a Socket.IO event context.

This needs the client of the Socket.IO event being handled (request.sid): call it from
a Socket.IO event handler, or name the client and namespace, for example
socketio.emit(event, data, to=sid, namespace="/chat")."""


class EventContext:
    """One event being handled (read-only by convention: a plain slotted class is
    cheaper to make, once per event, than a frozen dataclass).

    :param socket: the client's socket in its namespace.
    :param event: the event name (``"connect"`` and ``"disconnect"`` included).
    :param args: the event's arguments.
    """

    __slots__ = ("args", "event", "socket")

    def __init__(self, socket: geventsio.Socket, event: str, args: tuple[Any, ...]) -> None:
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
        return self.socket.namespace.name


#: An event's exception handler: its return value becomes the acknowledgement, or it
#: raises.
EventErrorHandler = Callable[[EventContext, Exception], Any]

#: A handler's positional arguments.
Args = tuple[Any, ...]

#: Runs ``function(*args)`` for an event, made current, in its Flask contexts:
#: ``run(event, manage_session, function, args)``.
EventRunner = Callable[[EventContext, bool, Callable[..., Any], Args], Any]


class EventSlot:
    """Where the contexts of a handler find its event: :data:`current_event_var` holds
    a slot, not the event, so that contexts made once for many events (a socket's, in
    :mod:`flask_ext.fastpath`) need no context variable set per event.

    An event is put in the slot made (``slot.event = event``) or, on the fast path, as
    its parts (``socket``, ``name``, ``args`` set, ``made`` None): its
    :class:`EventContext` is then made when first read, so that an event whose handler
    never asks for it costs none. ``slot.event = None`` empties the slot.

    :ivar made: the event's :class:`EventContext`, once made.
    :ivar socket: the socket of an event put in as parts (else None).
    :ivar name: its name.
    :ivar args: its arguments.
    """

    __slots__ = ("args", "made", "name", "socket")

    def __init__(self, event: EventContext | None = None) -> None:
        self.made = event
        self.socket: geventsio.Socket | None = None
        self.name = ""
        self.args: Args | None = None

    @property
    def event(self) -> EventContext | None:
        """The event being handled; None once it is over (a context copied in a handler
        and run after it sees no event, as it sees no ``flask.request``)."""
        event = self.made
        if event is None:
            socket = self.socket
            if socket is None:
                return None
            event = self.made = EventContext(socket, self.name, self.args or ())
        return event

    @event.setter
    def event(self, event: EventContext | None) -> None:
        self.made = event
        self.socket = self.args = None


current_event_var: ContextVar[EventSlot] = ContextVar("flask_ext.current_event")


def current_event() -> EventContext:
    """The event being handled.

    :raises RuntimeError: called outside a Socket.IO event handler.
    """
    slot = current_event_var.get(None)
    event = None if slot is None else slot.made or slot.event
    if event is None:
        raise RuntimeError(_OUTSIDE_EVENT)
    return event


def optional_event() -> EventContext | None:
    """The event being handled, or None outside a handler."""
    slot = current_event_var.get(None)
    return None if slot is None else slot.made or slot.event


class CopiedRequestContext(flask.ctx.RequestContext):
    """The copy of an event's request context that ``flask.copy_current_request_context``
    pushes in another greenlet: there, the event is current too, as ``request.sid`` is,
    so that ``emit()``, ``join_room()``... without ``to=`` act on the event's client (as
    in Flask-SocketIO, whose helpers read ``request.sid``).

    :param event: the event whose request context is copied.
    """

    def __init__(
        self,
        app: flask.Flask,
        environ: dict[str, Any],
        request: flask.Request,
        session: SessionMixin | None,
        event: EventContext,
    ) -> None:
        super().__init__(app, environ, request=request, session=session)
        self.event = event
        self._event_tokens: list[Token[EventSlot]] = []

    def copy(self) -> CopiedRequestContext:
        """A copy of this copy, with the same event."""
        return CopiedRequestContext(
            self.app, self.request.environ, self.request, self.session, self.event
        )

    def push(self) -> None:
        """Push the request context, then make the event current."""
        super().push()
        self._event_tokens.append(current_event_var.set(EventSlot(self.event)))

    def pop(self, *args: Any, **kwargs: Any) -> None:
        """Pop the request context (its teardown functions see the event), then the
        event."""
        try:
            super().pop(*args, **kwargs)
        finally:
            current_event_var.reset(self._event_tokens.pop())


def request_environ(socket: geventsio.Socket) -> dict[str, Any]:
    """A WSGI environ for a request context: the handshake's plain values, an empty body."""
    environ = dict(socket.handshake.environ)
    environ["wsgi.input"] = io.BytesIO()
    environ.setdefault("wsgi.errors", sys.stderr)
    return environ


class ManagedSession(dict[str, Any], SessionMixin):
    """A socket's own copy of the Flask session (``manage_session=True``)."""


def save_session(app: flask.Flask, session: SessionMixin) -> None:
    """``manage_session=False``: let the session interface store changes (server-side
    sessions are shared with HTTP this way; a cookie session cannot be written back)."""
    if getattr(session, "modified", True):
        app.session_interface.save_session(app, session, app.response_class())


def making_current(runner: EventRunner) -> EventRunner:
    """``runner``, run in a new :class:`contextvars.Context` where the event is current
    (:func:`current_event`): the event's code sees none of the caller's context
    variables, and what it sets in them is dropped after it, as in a greenlet of its
    own."""

    def run(event: EventContext, managed: bool, function: Callable[..., Any], args: Args) -> Any:
        slot = EventSlot(event)
        try:
            return Context().run(_run_current, slot, runner, event, managed, function, args)
        finally:
            slot.event = None

    return run


def _run_current(
    slot: EventSlot,
    runner: EventRunner,
    event: EventContext,
    managed: bool,
    function: Callable[..., Any],
    args: Args,
) -> Any:
    current_event_var.set(slot)
    return runner(event, managed, function, args)
