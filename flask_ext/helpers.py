"""Context-aware helpers: ``emit``, ``send``, ``join_room``... as in Flask-SocketIO.

Inside an event handler they act on the current event's socket and namespace. Outside
one (an HTTP view, a background task) they work when told the client (``to=``,
``sid=``) or asked to broadcast, and find the extension through the current Flask
application; what needs "the current client" raises :class:`RuntimeError` there.
"""

from __future__ import annotations

from typing import Any, Unpack

import flask

from flask_ext.event import current_event, optional_event
from flask_ext.sending import EmitOptions, Sender, event_args


def _sender() -> Sender:
    if not flask.has_app_context():
        current_event()  # raises the "working outside of a Socket.IO event" error
    sender = flask.current_app.extensions.get("socketio")
    if not isinstance(sender, Sender):
        raise RuntimeError(
            "this Flask application has no SocketIO extension: create "
            "SocketIO(app) or call socketio.init_app(app)"
        )
    return sender


def _namespace(namespace: str | None) -> str | None:
    """The namespace named, else the current event's (None outside one)."""
    if namespace is not None:
        return namespace
    current = optional_event()
    return current.namespace if current is not None else None


def emit(event: str, *args: Any, **options: Unpack[EmitOptions]) -> None:
    """Send an event: to the current client, or to ``to`` (a room or a client), or to
    everyone in the namespace with ``broadcast=True`` (see :class:`EmitOptions`).

    ``emit(event, (a, b))`` sends two arguments.

    :raises RuntimeError: no recipient is given, outside an event handler.
    :raises TypeError: the arguments cannot be serialised.
    """
    _sender().emit_event(
        event, event_args(args), options, namespace=_namespace(None) or "/", reply=True
    )


def send(message: Any, json: bool = False, **options: Unpack[EmitOptions]) -> None:
    """Send a ``message`` event (a ``json`` event with ``json=True``); see :func:`emit`."""
    _sender().emit_event(
        "json" if json else "message",
        (message,),
        options,
        namespace=_namespace(None) or "/",
        reply=True,
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
    socket = _sender().require_socket(to, _namespace(namespace))
    return socket.call(event, *event_args(args), timeout=timeout)


def join_room(room: str, sid: str | None = None, namespace: str | None = None) -> None:
    """Put a client (default: the current one) in a room."""
    _sender().enter_room(sid, room, namespace=_namespace(namespace))


def leave_room(room: str, sid: str | None = None, namespace: str | None = None) -> None:
    """Take a client (default: the current one) out of a room."""
    _sender().leave_room(sid, room, namespace=_namespace(namespace))


def close_room(room: str, namespace: str | None = None) -> None:
    """Empty a room (default namespace: the current event's)."""
    _sender().close_room(room, namespace=_namespace(namespace))


def rooms(sid: str | None = None, namespace: str | None = None) -> list[str]:
    """The rooms of a client (default: the current one), its own room first."""
    return _sender().rooms(sid, namespace=_namespace(namespace))


def disconnect(sid: str | None = None, namespace: str | None = None, silent: bool = False) -> None:
    """Disconnect a client (default: the current one) from a namespace."""
    _sender().disconnect(sid, namespace=_namespace(namespace))
