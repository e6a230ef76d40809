"""Context-aware helpers: ``emit``, ``send``, ``join_room``... as in Flask-SocketIO.

Inside an event handler they default to the client and namespace of the event being
handled. Outside one (an HTTP view, a background task) they work when told the client
(``to=``, ``sid=``) or asked to broadcast, and find the extension through the current
Flask application; what needs "the current client" raises :class:`RuntimeError` there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import flask

from flask_ext.context import EventContext, current_event, optional_event
from flask_ext.extension import event_args, skip_list

if TYPE_CHECKING:
    from flask_ext.extension import SocketIO


def _extension(event: EventContext | None) -> SocketIO:
    if event is not None:
        return event.socketio
    if not flask.has_app_context():
        current_event()  # raises the "working outside of a Socket.IO event" error
    socketio: SocketIO | None = flask.current_app.extensions.get("socketio")
    if socketio is None:
        raise RuntimeError(
            "this Flask application has no SocketIO extension: create "
            "SocketIO(app) or call socketio.init_app(app)"
        )
    return socketio


def _namespace(namespace: str | None, event: EventContext | None) -> str:
    if namespace is not None:
        return namespace
    return event.namespace if event is not None else "/"


def _client(sid: str | None) -> str:
    return sid if sid is not None else current_event().sid


def emit(
    event: str,
    *args: Any,
    namespace: str | None = None,
    to: Any = None,
    room: Any = None,
    include_self: bool = True,
    skip_sid: str | Iterable[str] | None = None,
    callback: Callable[..., Any] | None = None,
    broadcast: bool = False,
    ignore_queue: bool = False,
) -> None:
    """Send an event: to the current client, or to ``to`` (a room or a client), or to
    everyone in the namespace with ``broadcast=True``.

    ``emit(event, (a, b))`` sends two arguments. ``include_self=False`` leaves the current
    client out of a broadcast; ``callback`` receives each acknowledgement's arguments.

    :raises RuntimeError: no recipient is given, outside an event handler.
    :raises TypeError: the arguments cannot be serialised.
    """
    current = optional_event()
    target = to if to is not None else room
    if target is None and not broadcast:
        target = current_event().sid
    _extension(current).send_event(
        event,
        event_args(args),
        _namespace(namespace, current),
        target,
        skip_list(skip_sid, include_self),
        callback,
    )


def send(
    message: Any,
    json: bool = False,
    namespace: str | None = None,
    to: Any = None,
    room: Any = None,
    include_self: bool = True,
    skip_sid: str | Iterable[str] | None = None,
    callback: Callable[..., Any] | None = None,
    broadcast: bool = False,
    ignore_queue: bool = False,
) -> None:
    """Send a ``message`` event (a ``json`` event with ``json=True``); see :func:`emit`."""
    current = optional_event()
    target = to if to is not None else room
    if target is None and not broadcast:
        target = current_event().sid
    _extension(current).send_event(
        "json" if json else "message",
        (message,),
        _namespace(namespace, current),
        target,
        skip_list(skip_sid, include_self),
        callback,
    )


def call(
    event: str,
    *args: Any,
    to: str | None = None,
    namespace: str | None = None,
    timeout: float = 60,
    ignore_queue: bool = False,
) -> Any:
    """Send an event to a client (default: the current one) and wait for its ack."""
    current = optional_event()
    return _extension(current).call(
        event, *args, to=_client(to), namespace=_namespace(namespace, current), timeout=timeout
    )


def join_room(room: str, sid: str | None = None, namespace: str | None = None) -> None:
    """Put a client (default: the current one) in a room."""
    current = optional_event()
    _extension(current).enter_room(_client(sid), room, namespace=_namespace(namespace, current))


def leave_room(room: str, sid: str | None = None, namespace: str | None = None) -> None:
    """Take a client (default: the current one) out of a room."""
    current = optional_event()
    _extension(current).leave_room(_client(sid), room, namespace=_namespace(namespace, current))


def close_room(room: str, namespace: str | None = None) -> None:
    """Empty a room (default namespace: the current event's)."""
    current = optional_event()
    _extension(current).close_room(room, namespace=_namespace(namespace, current))


def rooms(sid: str | None = None, namespace: str | None = None) -> list[str]:
    """The rooms of a client (default: the current one), its own room first."""
    current = optional_event()
    return _extension(current).rooms(_client(sid), namespace=_namespace(namespace, current))


def disconnect(sid: str | None = None, namespace: str | None = None, silent: bool = False) -> None:
    """Disconnect a client (default: the current one) from a namespace."""
    current = optional_event()
    _extension(current).disconnect(_client(sid), namespace=_namespace(namespace, current))
