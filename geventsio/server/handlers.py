"""Event handlers: registration, and the one inspection of their signatures.

A handler's signature is read once, when it is registered, to know how many of the
optional arguments (``auth`` for connect, ``reason`` for disconnect) it takes — never by
calling it and catching ``TypeError``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from geventsio.exceptions import LocalProtocolError

Handler = Callable[..., Any]


def positional_capacity(function: Callable[..., Any]) -> int | None:
    """How many positional arguments ``function`` accepts (None: any number)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


@dataclass(frozen=True, slots=True)
class BoundHandler:
    """A handler and how many leading arguments of a lifecycle call it takes."""

    function: Handler
    capacity: int | None

    def call_with(self, *args: Any) -> Any:
        """Call with as many of ``args`` as the handler takes (lifecycle hooks)."""
        if self.capacity is None:
            return self.function(*args)
        return self.function(*args[: self.capacity])


def bind(event: str, function: Handler) -> BoundHandler:
    """Check a handler for ``event`` and remember its signature.

    :raises LocalProtocolError: the handler is not callable.
    """
    if not callable(function):
        raise LocalProtocolError(f"the handler for {event!r} is not callable: {function!r}")
    return BoundHandler(function, positional_capacity(function))
