"""Node-style events on the engine's objects: ``on(event, listener)``.

The engine server and its sessions emit the events the Node reference's ``engine.io``
emits (``connection_error``, ``headers``, ``upgrade``, ``packet``...). An object with no
listener holds ``None`` and pays one test per emission point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

logger = logging.getLogger(__name__)

Listener = Callable[..., Any]


class EventEmitter:
    """Listeners by event name; a subclass names the events it emits in ``EVENTS``."""

    EVENTS: ClassVar[frozenset[str]] = frozenset()
    _listeners: dict[str, list[Listener]] | None = None

    def on(self, event: str, listener: Listener | None = None) -> Any:
        """Call ``listener`` each time ``event`` happens; usable as a decorator.

        :raises ValueError: this object emits no such event.
        """
        if event not in self.EVENTS:
            known = ", ".join(sorted(self.EVENTS))
            raise ValueError(f"{type(self).__name__} emits no {event!r} event (it has: {known})")

        def register(function: Listener) -> Listener:
            if self._listeners is None:
                self._listeners = {}
            self._listeners.setdefault(event, []).append(function)
            return function

        return register(listener) if listener is not None else register

    def off(self, event: str, listener: Listener) -> None:
        """Stop calling ``listener`` for ``event``."""
        listeners = (self._listeners or {}).get(event, [])
        if listener in listeners:
            listeners.remove(listener)

    def has_listeners(self, event: str) -> bool:
        """Whether anything listens to ``event``."""
        return bool(self._listeners and self._listeners.get(event))

    def emit_event(self, event: str, *args: Any) -> None:
        """Call the listeners of ``event``; one that raises is logged and the rest run."""
        if not self._listeners:
            return
        for listener in list(self._listeners.get(event, ())):
            try:
                listener(*args)
            except Exception:
                logger.exception("a %r listener of %s raised", event, type(self).__name__)
