"""Application handlers: where they are registered, and the one greenlet that runs them.

Every piece of application code (event handlers, ``emit`` callbacks, lifecycle
handlers) runs in the dispatcher's worker greenlet, one at a time, in the order the
events arrived. The reader greenlet never waits for application code, so a slow handler
delays other handlers but never the heartbeat, nor the acknowledgements that a handler
blocked in ``call()`` waits for. This is also the one place where a handler's exception
is caught and logged.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.queue

from geventsio.exceptions import LocalProtocolError
from geventsio.protocol import events

logger = logging.getLogger(__name__)

Handler = Callable[..., Any]

#: Lifecycle events of one namespace.
SOCKET_EVENTS = frozenset({events.CONNECT, events.CONNECT_ERROR, events.DISCONNECT})
#: Lifecycle events of the connection as a whole (the JavaScript ``Manager``'s events).
MANAGER_EVENTS = frozenset(
    {"reconnect", "reconnect_attempt", "reconnect_error", "reconnect_failed"}
)
#: Names an application may not emit, nor receive from the server.
RESERVED_EVENTS = events.RESERVED_EVENTS | MANAGER_EVENTS
#: The catch-all handler, called as ``handler(event, *args)`` for events with no handler.
CATCH_ALL = events.CATCH_ALL

_STOP = object()


@dataclass(frozen=True)
class _Registered:
    function: Handler
    max_args: float  # positional arguments it accepts; lifecycle handlers get no more


def _max_positional(function: Handler) -> float:
    """How many positional arguments ``function`` accepts (``inf`` with ``*args``)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: give them all
        return math.inf
    count = 0
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return math.inf
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


class Dispatcher:
    """The handler registry and the worker greenlet that runs application code."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str | None, str], _Registered] = {}
        self._queue: gevent.queue.SimpleQueue[Any] = gevent.queue.SimpleQueue()
        self._worker: gevent.Greenlet | None = None
        self._stop_requested = False

    # -- registry --------------------------------------------------------------------

    def register(self, event: str, function: Handler, namespace: str) -> None:
        """Register (or replace) the handler of an event.

        Lifecycle handlers are inspected here, once: each is called with as many of its
        arguments as it accepts (``disconnect`` with or without the reason...).

        :raises LocalProtocolError: a bad namespace, a handler that is not callable, or
            a connection-wide event registered on a namespace other than ``/``.
        """
        if not callable(function):
            raise LocalProtocolError(f"the handler of {event!r} must be callable")
        if not isinstance(namespace, str) or not namespace.startswith("/"):
            raise LocalProtocolError(f"namespace must start with '/', got {namespace!r}")
        key: str | None = namespace
        if event in MANAGER_EVENTS:
            if namespace != "/":
                raise LocalProtocolError(f"{event!r} concerns the whole connection: no namespace")
            key = None
        limit = _max_positional(function) if event in RESERVED_EVENTS else math.inf
        self._handlers[key, event] = _Registered(function, limit)

    def namespaces(self) -> list[str]:
        """The namespaces that have handlers, in registration order."""
        seen = dict.fromkeys(ns for ns, _ in self._handlers if ns is not None)
        return list(seen)

    # -- running ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker, if it is not running (or cancel the stop it was asked)."""
        self._stop_requested = False
        if self._worker is None or self._worker.dead:
            self._worker = gevent.spawn(self._run)

    def stop(self) -> None:
        """Let the worker finish what is queued, then end."""
        self._stop_requested = True
        self._queue.put(_STOP)

    def join(self) -> None:
        """Wait for the worker to end (not from the worker itself)."""
        worker = self._worker
        if worker is not None and worker is not gevent.getcurrent():
            worker.join()

    def in_worker(self) -> bool:
        """Whether the caller is the worker greenlet (i.e. application code)."""
        return self._worker is not None and self._worker is gevent.getcurrent()

    def call_soon(self, function: Handler, *args: Any) -> None:
        """Run ``function(*args)`` in the worker, after what is already queued."""
        self._queue.put((function, args))

    def fire(
        self,
        namespace: str | None,
        event: str,
        args: tuple[Any, ...] = (),
        ack: Callable[[Any], None] | None = None,
    ) -> bool:
        """Queue the handler of an event, if there is one.

        :param namespace: the namespace, or ``None`` for a connection-wide event.
        :param ack: called in the worker with the handler's return value, when the
            server asked for an acknowledgement.
        :returns: whether a handler (or the catch-all) was found.
        """
        registered = self._handlers.get((namespace, event))
        if registered is not None:
            self.call_soon(self._invoke, registered, args[: _slice_end(registered)], ack)
            return True
        catch_all = self._handlers.get((namespace, CATCH_ALL))
        if catch_all is not None and event not in RESERVED_EVENTS:
            self.call_soon(self._invoke, catch_all, (event, *args), ack)
            return True
        if ack is not None or event not in RESERVED_EVENTS:
            logger.debug("no handler for event %r on namespace %s", event, namespace)
        return False

    @staticmethod
    def _invoke(
        registered: _Registered, args: tuple[Any, ...], ack: Callable[[Any], None] | None
    ) -> None:
        result = registered.function(*args)
        if ack is not None:
            ack(result)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                if self._stop_requested:
                    return
                continue  # a stop cancelled by start()
            function, args = item
            try:
                function(*args)
            except Exception:
                culprit = args[0].function if function is Dispatcher._invoke else function
                logger.exception("error in handler %r", culprit)


def _slice_end(registered: _Registered) -> int | None:
    return None if registered.max_args == math.inf else int(registered.max_args)
