"""Routing a geventsio server's events to the application's Flask-SocketIO handlers.

Each geventsio namespace the application uses gets three routers: ``connect``,
``disconnecting`` and the catch-all ``"*"``. A router finds the application's handler in
the :class:`~flask_ext.handlers.HandlerTable` and runs it with the event's arguments only,
inside the Flask contexts of the connection (:mod:`flask_ext.context`). Exceptions are
given to the application's ``on_error`` handler, whose return value becomes the
acknowledgement; without one they propagate to geventsio, which logs them.

The application's ``disconnect`` handler runs in geventsio's ``disconnecting`` hook, while
the client is still in its rooms, as python-socketio runs it: ``rooms()``, ``leave_room()``
and ``emit(..., to=room)`` work there. Clients cannot send the lifecycle events
themselves: geventsio's codec refuses reserved event names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flask

import geventsio
from flask_ext.context import EventContext, EventContexts, optional_event
from flask_ext.exceptions import ConnectionRefusedError
from flask_ext.handlers import (
    CATCH_ALL,
    CONNECT,
    DISCONNECT,
    Handler,
    HandlerTable,
)

if TYPE_CHECKING:
    from flask_ext.extension import SocketIO

logger = logging.getLogger(__name__)

#: The namespace the test client uses to wait until the server has handled everything it
#: sent; no namespace of the application may have this name.
TEST_BARRIER_NAMESPACE = "/flask_ext.test-client-barrier"

#: Environ key of the test client's error recorder (``recorder(exception)``).
TEST_RECORDER_KEY = "flask_ext.test_client.record_error"

_DISCONNECTED_KEY = "flask_ext.disconnected"

#: geventsio's hook that runs before a socket leaves its rooms.
DISCONNECTING = "disconnecting"


def _any_namespace(name: str, auth: Any) -> bool:
    return name != TEST_BARRIER_NAMESPACE


class Dispatcher:
    """Runs one Flask application's handlers for one geventsio server.

    :param socketio: the extension (its ``manage_session`` is read at each event).
    :param app: the Flask application whose contexts the handlers run in.
    :param server: the geventsio server.
    :param table: the application's handlers.
    """

    def __init__(
        self, socketio: SocketIO, app: flask.Flask, server: geventsio.Server, table: HandlerTable
    ) -> None:
        self.socketio = socketio
        self.app = app
        self.server = server
        self.table = table
        self.contexts = EventContexts(app, self._on_error)
        self._routed: set[str] = set()

    def route(self, name: str) -> None:
        """Accept connections to namespace ``name`` (``"*"``: any) and route its events."""
        if name in self._routed:
            return
        self._routed.add(name)
        target = self.server.of(_any_namespace if name == CATCH_ALL else name)
        target.on(CONNECT, self._on_connect)
        target.on(DISCONNECTING, self._on_disconnect)
        target.on(CATCH_ALL, self._on_event)

    # -- the routers (called by geventsio) ---------------------------------------------

    def _on_connect(self, socket: geventsio.Socket, auth: Any) -> None:
        if self._on_event(socket, CONNECT, auth) is False:
            raise ConnectionRefusedError()

    def _on_disconnect(self, socket: geventsio.Socket, reason: geventsio.DisconnectReason) -> None:
        if socket.data.get(_DISCONNECTED_KEY):  # disconnect() called from the handler
            return
        socket.data[_DISCONNECTED_KEY] = True
        self._on_event(socket, DISCONNECT, reason)

    def _on_event(self, socket: geventsio.Socket, event: str, *args: Any) -> Any:
        found = self.table.resolve(socket.namespace.name, event, args)
        if found is None:
            logger.debug(
                "socket %s: no handler for %r in %s", socket.id, event, socket.namespace.name
            )
            return geventsio.NO_ACK
        function, call_args = found
        return self.run(EventContext(self.socketio, socket, event, args), function, call_args)

    # -- running application code ------------------------------------------------------

    def run(self, event: EventContext, function: Handler, args: tuple[Any, ...]) -> Any:
        """Run ``function(*args)`` for ``event`` in its Flask contexts.

        :returns: the function's return value, or its error handler's.
        """
        try:
            return self.contexts.run(event, self.socketio.manage_session, function, args)
        except Exception as exc:
            self._escaped(event, exc)
            raise

    def _escaped(self, event: EventContext, exc: Exception) -> None:
        """``exc`` escaped the handlers of ``event``: tell the test client, if it is one
        (a refused connection is not an error)."""
        if isinstance(exc, geventsio.ConnectionRefused):
            return
        recorder = event.socket.handshake.environ.get(TEST_RECORDER_KEY)
        if recorder is not None:
            recorder(exc)

    def _on_error(self, event: EventContext, exc: Exception) -> Any:
        """A handler raised ``exc``: its namespace's error handler returns the
        acknowledgement; without one (or for a refused connection) ``exc`` propagates."""
        error_handler = self.table.error_handler_for(event.namespace)
        if error_handler is None or isinstance(exc, geventsio.ConnectionRefused):
            raise exc
        return error_handler(exc)

    def bind_callback(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap an acknowledgement callback so that it runs in Flask contexts: those of
        the event it was emitted from, or a plain application context."""
        origin = optional_event()

        def run_callback(*args: Any) -> Any:
            if origin is None:
                with self.app.app_context():
                    return callback(*args)
            return self.run(origin, callback, args)

        return run_callback
