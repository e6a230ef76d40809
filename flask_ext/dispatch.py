"""Registering the application's handlers in geventsio's namespaces, wrapped.

Each Flask-SocketIO handler becomes one geventsio handler of the same event, so geventsio
finds it with its own single lookup. The wrapper makes the :class:`EventContext`, runs
the handler with the event's arguments only, inside the Flask contexts of the
connection (:mod:`flask_ext.context`), and gives its exceptions to the application's
``on_error`` handler, whose return value becomes the acknowledgement; without one they
propagate to geventsio, which logs them and calls its error hook.

* ``connect`` is geventsio's ``connect`` (returning False refuses, as in geventsio);
  ``auth`` is passed only to handlers that take an argument (read once, at
  registration).
* ``disconnect`` is registered as geventsio's ``disconnecting`` hook, which runs while
  the client is still in its rooms, as python-socketio runs it: ``rooms()``,
  ``leave_room()`` and ``emit(..., to=room)`` work there.
* ``"*"`` (an event handler) is geventsio's catch-all, called as ``f(event, *args)``;
  a class-based namespace is registered as the catch-all and lifecycle hooks of its
  namespace (a function handler of an event wins over its method).
* ``namespace="*"`` is a geventsio parent namespace that accepts any name.

Clients cannot send the lifecycle events themselves: geventsio's codec refuses reserved
event names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import flask

import geventsio
from flask_ext.context import EventContexts
from flask_ext.event import EventContext, current_event, optional_event
from flask_ext.exceptions import ConnectionRefusedError
from flask_ext.handlers import (
    CATCH_ALL,
    CONNECT,
    DISCONNECT,
    ClassNamespace,
    Handler,
    Registry,
)

logger = logging.getLogger(__name__)

#: geventsio's hook that runs before a socket leaves its rooms.
DISCONNECTING = "disconnecting"

#: A geventsio namespace, or the parent namespace of ``"*"``.
Target = geventsio.Namespace | geventsio.ParentNamespace


def _any_namespace(name: str, auth: Any) -> bool:
    return True


def refuse_on_false(result: Any) -> None:
    """A ``connect`` handler that returns False refuses, with Flask-SocketIO's message."""
    if result is False:
        raise ConnectionRefusedError()


class Dispatcher:
    """Registers one Flask application's handlers on one geventsio server.

    :param app: the Flask application whose contexts the handlers run in.
    :param server: the geventsio server.
    :param registry: the application's error handlers (read when a handler raises).
    :param manage_session: keep a per-connection copy of the session (read at each
        event: ``SocketIO.manage_session`` writes it through).
    """

    def __init__(
        self,
        app: flask.Flask,
        server: geventsio.Server,
        registry: Registry,
        manage_session: bool,
    ) -> None:
        self.app = app
        self.server = server
        self.registry = registry
        self.manage_session = manage_session
        self.contexts = EventContexts(app, self._on_error)
        self._catch_all: geventsio.ParentNamespace | None = None
        #: The wrapped handlers of ``namespace="*"``: every namespace without a handler
        #: of its own for the event gets them, as in python-socketio.
        self._everywhere: list[tuple[str, Handler]] = []

    def namespace(self, name: str) -> Target:
        """The geventsio namespace ``name`` (``"*"``: any), accepting connections."""
        if name != CATCH_ALL:
            known = self.server.get_namespace(name) is not None
            namespace: geventsio.Namespace = self.server.of(name)
            if not known:
                for event, handler in self._everywhere:
                    namespace.on(event, handler)
            return namespace
        if self._catch_all is None:
            self._catch_all = self.server.of(_any_namespace)
        return self._catch_all

    # -- registering -----------------------------------------------------------------

    def register(self, namespace: str, event: str, function: Handler) -> None:
        """Register ``function`` for ``event`` in ``namespace``, wrapped."""
        if not callable(function):
            raise TypeError(f"a Socket.IO handler must be callable, not {function!r}")
        if event == CONNECT:
            hook, handler = CONNECT, self._lifecycle(CONNECT, function)
        elif event == DISCONNECT:
            hook, handler = DISCONNECTING, self._lifecycle(DISCONNECT, function)
        elif event == CATCH_ALL:
            hook, handler = CATCH_ALL, self._catch_all_handler(function)
        else:
            hook, handler = event, self._event_handler(event, function)
        self.namespace(namespace).on(hook, handler)
        if namespace == CATCH_ALL:
            self._everywhere.append((hook, handler))
            for target in self.server.all_namespaces():
                if target.handler_for(hook) is None:
                    target.on(hook, handler)

    def register_class(self, name: str, handlers: ClassNamespace) -> None:
        """Register a class-based namespace: its lifecycle methods and its catch-all."""
        run, guarded, hooks = self.run, self.guarded, self.registry.before_event
        resolve = handlers.resolve

        def connect(socket: geventsio.Socket, auth: Any) -> None:
            refuse_on_false(run(EventContext(socket, CONNECT, (auth,)), *resolve(CONNECT, (auth,))))

        def disconnecting(socket: geventsio.Socket, reason: Any) -> Any:
            return run(EventContext(socket, DISCONNECT, (reason,)), *resolve(DISCONNECT, (reason,)))

        def any_event(socket: geventsio.Socket, event: str, *args: Any) -> Any:
            function, call_args = resolve(event, args)
            target = guarded(function) if hooks else function
            return run(EventContext(socket, event, args), target, call_args)

        def trigger(event: str, *args: Any) -> Any:
            function, call_args = resolve(event, args)
            return function(*call_args)

        target = self.namespace(name)
        target.on(CONNECT, connect)
        target.on(DISCONNECTING, disconnecting)
        target.on(CATCH_ALL, self.contexts.event_handler(None, trigger, any_event, self, hooks))

    # The two wrappers below are the per-event path: what they look up is bound once.

    def _event_handler(self, event: str, function: Handler) -> Handler:
        run, guarded, hooks = self.contexts.run, self.guarded, self.registry.before_event

        def handle(socket: geventsio.Socket, *args: Any) -> Any:
            target = guarded(function) if hooks else function
            return run(EventContext(socket, event, args), self.manage_session, target, args)

        return self.contexts.event_handler(event, function, handle, self, hooks)

    def _catch_all_handler(self, function: Handler) -> Handler:
        run, guarded, hooks = self.contexts.run, self.guarded, self.registry.before_event

        def handle(socket: geventsio.Socket, event: str, *args: Any) -> Any:
            target = guarded(function) if hooks else function
            context = EventContext(socket, event, args)
            return run(context, self.manage_session, target, (event, *args))

        return self.contexts.event_handler(None, function, handle, self, hooks)

    def guarded(self, function: Handler) -> Handler:
        """``function`` behind the ``before_event`` functions of the current event's
        namespace: the first that returns something other than None refuses the event
        (its value is the acknowledgement), as does one that disconnects the client."""
        registry = self.registry

        def call(*args: Any) -> Any:
            event = current_event()
            for hook in registry.before_event_for(event.namespace):
                refusal = hook(event.event, *event.args)
                if refusal is not None or not event.socket.connected:
                    return refusal
            return function(*args)

        return call

    def _lifecycle(self, event: str, function: Handler) -> Handler:
        """``connect(auth)`` / ``disconnect(reason)``: the argument only for handlers
        that take one."""
        run = self.run
        takes = geventsio.positional_capacity(function)

        def handle(socket: geventsio.Socket, argument: Any) -> Any:
            args = (argument,)
            result = run(EventContext(socket, event, args), function, args[:takes])
            if event == CONNECT:
                refuse_on_false(result)
            return result

        return handle

    # -- running application code ------------------------------------------------------

    def run(self, event: EventContext, function: Handler, args: tuple[Any, ...]) -> Any:
        """Run ``function(*args)`` for ``event`` in its Flask contexts.

        :returns: the function's return value, or its error handler's.
        """
        return self.contexts.run(event, self.manage_session, function, args)

    def _on_error(self, event: EventContext, exc: Exception) -> Any:
        """A handler raised ``exc``: its namespace's error handler returns the
        acknowledgement; without one (or for a refused connection) ``exc`` propagates."""
        error_handler = self.registry.error_handler_for(event.namespace)
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
