"""Class-based namespaces: an ``on_<event>`` method per event, as in Flask-SocketIO."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

import geventsio
from flask_ext.event import current_event
from flask_ext.handlers import LIFECYCLE, Handler
from flask_ext.sending import EmitOptions, Sender, event_args


class Namespace:
    """Handlers of one namespace as methods: event ``my_event`` is handled by
    ``on_my_event(self, *args)``; events without a method are ignored.

    ``on_connect(self)`` or ``on_connect(self, auth)`` and ``on_disconnect(self)`` or
    ``on_disconnect(self, reason)`` are the lifecycle handlers. Methods run in the same
    Flask contexts as function handlers (``request.sid``, ``session``, ``emit()``...).
    Register an instance with :meth:`SocketIO.on_namespace`.

    :param namespace: the namespace's name (default ``"/"``).
    """

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace or "/"
        self.socketio: Sender | None = None
        self._capacities: dict[str, int | None] = {}

    def _set_socketio(self, socketio: Sender) -> None:
        """Called once, by :meth:`SocketIO.on_namespace`: inspects the lifecycle methods."""
        self.socketio = socketio
        for event in LIFECYCLE:
            method = getattr(self, "on_" + event, None)
            if method is not None:
                self._capacities[event] = geventsio.positional_capacity(method)

    def resolve(self, event: str, args: tuple[Any, ...]) -> tuple[Handler, tuple[Any, ...]]:
        """The call that handles ``event``: :meth:`trigger_event` with its arguments."""
        if event not in LIFECYCLE:
            return self._guarded_trigger, (event, *args)
        capacity = self._capacities.get(event)
        if capacity is not None:
            args = args[:capacity]
        return self._trigger, (event, *args)

    def _guarded_trigger(self, event: str, *args: Any) -> Any:
        refusal = self.before_event(event, *args)
        if refusal is not None or not current_event().socket.connected:
            return refusal
        return self._trigger(event, *args)

    def _trigger(self, event: str, *args: Any) -> Any:
        """:meth:`trigger_event`; an exception goes to the ``error(exception)`` method
        when the class has one (Flask-SocketIO 5.6's per-namespace error handler), whose
        return value is the acknowledgement."""
        try:
            return self.trigger_event(event, *args)
        except Exception as exc:
            error: Callable[[Exception], Any] | None = getattr(self, "error", None)
            if error is None or isinstance(exc, geventsio.ConnectionRefused):
                raise
            return error(exc)

    def before_event(self, event: str, *args: Any) -> Any:
        """Runs before the method of every event of this namespace (not ``connect`` and
        ``disconnect``), in the event's Flask contexts. Override it: return None to let
        the event through; anything else refuses the event and is the acknowledgement the
        client gets (the method does not run); calling ``disconnect()`` refuses it too.
        """
        return None

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Call the method for ``event``, if there is one. Override to dispatch differently.

        :returns: the method's return value, the acknowledgement.
        """
        handler: Callable[..., Any] | None = getattr(self, "on_" + (event or ""), None)
        if handler is None:
            return None
        return handler(*args)

    def _extension(self) -> Sender:
        if self.socketio is None:
            raise RuntimeError(
                f"namespace {self.namespace} is not registered: call "
                "socketio.on_namespace() with it first"
            )
        return self.socketio

    # -- Flask-SocketIO's conveniences, defaulting to this namespace --------------------

    def emit(self, event: str, *args: Any, **options: Unpack[EmitOptions]) -> None:
        """:meth:`SocketIO.emit` in this namespace (unless ``namespace`` is given)."""
        self._extension().emit_event(
            event, event_args(args), options, namespace=self.namespace, reply=False
        )

    def send(self, data: Any, json: bool = False, **options: Unpack[EmitOptions]) -> None:
        """:meth:`SocketIO.send` in this namespace."""
        self._extension().emit_event(
            "json" if json else "message", (data,), options, namespace=self.namespace, reply=False
        )

    def call(self, event: str, *args: Any, namespace: str | None = None, **kwargs: Any) -> Any:
        """:meth:`SocketIO.call` in this namespace."""
        return self._extension().call(event, *args, namespace=namespace or self.namespace, **kwargs)

    def close_room(self, room: str, namespace: str | None = None) -> None:
        """Empty a room of this namespace."""
        self._extension().close_room(room, namespace=namespace or self.namespace)

    def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        """Put the client ``sid`` in a room."""
        self._extension().enter_room(sid, room, namespace=namespace or self.namespace)

    def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        """Take the client ``sid`` out of a room."""
        self._extension().leave_room(sid, room, namespace=namespace or self.namespace)

    def rooms(self, sid: str, namespace: str | None = None) -> list[str]:
        """The rooms of the client ``sid``."""
        return self._extension().rooms(sid, namespace=namespace or self.namespace)

    def disconnect(self, sid: str, namespace: str | None = None) -> None:
        """Disconnect the client ``sid`` from this namespace."""
        self._extension().disconnect(sid, namespace=namespace or self.namespace)
