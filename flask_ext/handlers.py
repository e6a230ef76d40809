"""Flask-SocketIO-style handlers, found the way python-socketio finds them.

flask_ext keeps its own table of the application's handlers: functions by namespace and
event, class-based namespaces, error handlers. For an event in namespace ``ns`` the
handler is the first of:

1. the function registered for the event in ``ns``;
2. the catch-all function ``"*"`` of ``ns`` (called as ``f(event, *args)``);
3. the same two in the catch-all namespace ``"*"``;
4. the class-based namespace of ``ns``, then that of ``"*"`` (its ``trigger_event``).

``connect`` and ``disconnect`` are never caught by ``"*"`` event handlers. Their optional
argument (``auth``, ``reason``) is passed only to handlers that accept it, which is read
from the handler's signature once, when it is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from geventsio.server.handlers import positional_capacity

if TYPE_CHECKING:
    from flask_ext.namespace import Namespace

CATCH_ALL = "*"
CONNECT = "connect"
DISCONNECT = "disconnect"
LIFECYCLE = frozenset({CONNECT, DISCONNECT})

Handler = Callable[..., Any]
ErrorHandler = Callable[[Exception], Any]


def namespace_name(namespace: str | None) -> str:
    """A namespace as geventsio names it: ``None`` is ``"/"``, ``"chat"`` is ``"/chat"``;
    ``"*"`` (every namespace) stays."""
    if not namespace:
        return "/"
    if namespace == CATCH_ALL or namespace.startswith("/"):
        return namespace
    return "/" + namespace


@dataclass(frozen=True, slots=True)
class Target:
    """A handler and how many arguments of a lifecycle event it takes."""

    function: Handler
    capacity: int | None

    @classmethod
    def of(cls, function: Handler) -> Target:
        """Inspect ``function`` once."""
        if not callable(function):
            raise TypeError(f"a Socket.IO handler must be callable, not {function!r}")
        return cls(function, positional_capacity(function))

    def arguments(self, event: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """The arguments to call with: lifecycle events drop what the handler cannot take."""
        if event in LIFECYCLE and self.capacity is not None:
            return args[: self.capacity]
        return args


#: A resolved call: the function and its arguments.
Call = tuple[Handler, tuple[Any, ...]]


class HandlerTable:
    """The application's handlers, by namespace."""

    def __init__(self) -> None:
        self.functions: dict[str, dict[str, Target]] = {}
        self.class_namespaces: dict[str, Namespace] = {}
        self.error_handlers: dict[str, ErrorHandler] = {}
        self.default_error_handler: ErrorHandler | None = None

    def namespace_names(self) -> set[str]:
        """Every namespace a handler is registered for (error handlers do not count: they
        do not make a namespace accept connections)."""
        return {*self.functions, *self.class_namespaces}

    def add(self, namespace: str, event: str, function: Handler) -> None:
        """Register ``function`` for ``event`` in ``namespace``."""
        if not isinstance(event, str):
            raise TypeError(f"an event name must be a string, not {event!r}")
        self.functions.setdefault(namespace_name(namespace), {})[event] = Target.of(function)

    def add_namespace(self, namespace: Namespace) -> None:
        """Register a class-based namespace."""
        self.class_namespaces[namespace_name(namespace.namespace)] = namespace

    def resolve(self, namespace: str, event: str, args: tuple[Any, ...]) -> Call | None:
        """The handler for ``event`` in ``namespace`` and its arguments, or None."""
        for name in (namespace, CATCH_ALL):
            table = self.functions.get(name)
            if table is None:
                continue
            target = table.get(event)
            if target is not None:
                return target.function, target.arguments(event, args)
            catch_all = table.get(CATCH_ALL)
            if catch_all is not None and event not in LIFECYCLE:
                return catch_all.function, (event, *args)
        for name in (namespace, CATCH_ALL):
            class_namespace = self.class_namespaces.get(name)
            if class_namespace is not None:
                return class_namespace.resolve(event, args)
        return None

    def error_handler_for(self, namespace: str) -> ErrorHandler | None:
        """The error handler of ``namespace``, or the default one."""
        return self.error_handlers.get(namespace, self.default_error_handler)
