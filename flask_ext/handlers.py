"""The application's handlers as registered, before and after a server exists.

flask_ext does not dispatch events itself: each handler is wrapped
(:mod:`flask_ext.dispatch`) and registered in geventsio's own namespaces, so an event
costs one lookup, geventsio's. This module only records what the application
registered, so that ``init_app`` (delayed, or called again) can register it all on its
new server, and keeps the error handlers, which are looked up only when a handler
raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

CATCH_ALL = "*"
CONNECT = "connect"
DISCONNECT = "disconnect"
LIFECYCLE = frozenset({CONNECT, DISCONNECT})

Handler = Callable[..., Any]
ErrorHandler = Callable[[Exception], Any]
#: ``f(event, *args)``: None lets the event through; anything else refuses it and is
#: the acknowledgement.
BeforeEvent = Callable[..., Any]


def namespace_name(namespace: str | None) -> str:
    """A namespace as geventsio names it: ``None`` is ``"/"``, ``"chat"`` is ``"/chat"``;
    ``"*"`` (every namespace) stays."""
    if not namespace:
        return "/"
    if namespace == CATCH_ALL or namespace.startswith("/"):
        return namespace
    return "/" + namespace


class ClassNamespace(Protocol):
    """What the dispatcher needs of a class-based namespace (:class:`flask_ext.Namespace`)."""

    namespace: str

    def resolve(self, event: str, args: tuple[Any, ...]) -> tuple[Handler, tuple[Any, ...]]:
        """The call that handles ``event``: a function and its arguments."""


@dataclass
class Registry:
    """What the application registered, in order.

    :ivar functions: ``(namespace, event, function)``, in registration order.
    :ivar class_namespaces: class-based namespaces, in registration order.
    :ivar error_handlers: by namespace.
    :ivar default_error_handler: for namespaces without their own.
    :ivar before_event: ``@socketio.before_event`` functions by namespace (``"*"``: all).
    """

    functions: list[tuple[str, str, Handler]] = field(default_factory=list)
    class_namespaces: list[ClassNamespace] = field(default_factory=list)
    error_handlers: dict[str, ErrorHandler] = field(default_factory=dict)
    default_error_handler: ErrorHandler | None = None
    before_event: dict[str, list[BeforeEvent]] = field(default_factory=dict)

    def namespace_names(self) -> set[str]:
        """Every namespace a handler is registered for."""
        names = {namespace for namespace, _, _ in self.functions}
        return names | {namespace_name(n.namespace) for n in self.class_namespaces}

    def error_handler_for(self, namespace: str) -> ErrorHandler | None:
        """The error handler of ``namespace``, or the default one."""
        return self.error_handlers.get(namespace, self.default_error_handler)

    def before_event_for(self, namespace: str) -> list[BeforeEvent]:
        """The ``before_event`` functions of ``namespace``: those of ``"*"`` first."""
        hooks = self.before_event
        return [*hooks.get(CATCH_ALL, ()), *hooks.get(namespace, ())]
