"""Acknowledgements of the client's emits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

from geventsio.exceptions import AckTimeout

#: What settles an acknowledgement: the server's arguments, or why none came.
Outcome = list[Any] | BaseException


def unpack(args: list[Any]) -> Any:
    """An ack's arguments as one value: ``None``, the only one, or a tuple of them."""
    if not args:
        return None
    return args[0] if len(args) == 1 else tuple(args)


class Ack:
    """The acknowledgement of one emit; ``emit()`` returns one when it asked for an ack.

    :param callback: called in the handler greenlet with the server's arguments when
        they arrive (not when the ack fails).
    :param call_soon: runs a function in the handler greenlet.
    """

    def __init__(
        self,
        callback: Callable[..., Any] | None,
        call_soon: Callable[..., None],
    ) -> None:
        self._callback = callback
        self._call_soon = call_soon
        self._result: gevent.event.AsyncResult[Any] = gevent.event.AsyncResult()

    def ready(self) -> bool:
        """Whether the ack arrived or failed."""
        return bool(self._result.ready())

    def get(self, timeout: float | None = None) -> Any:
        """Wait for the ack.

        :param timeout: seconds to wait; ``None`` waits as long as the emit's own
            timeout (or forever, if it had none).
        :returns: ``None`` when the server acknowledged with no arguments, the argument
            when it gave one, else a tuple of them.
        :raises AckTimeout: no ack within the emit's timeout (after its retries), or
            within ``timeout``.
        :raises NotConnected: the connection was lost (or closed for good) after the emit
            was sent and before its ack came, or a volatile emit was dropped.
        """
        try:
            return self._result.get(timeout=timeout)
        except gevent.Timeout:
            raise AckTimeout(f"no acknowledgement within {timeout:g}s") from None

    def settle(self, outcome: Outcome) -> None:
        """Deliver the outcome (only the first counts)."""
        if self._result.ready():
            return
        if isinstance(outcome, BaseException):
            self._result.set_exception(outcome)
            return
        self._result.set(unpack(outcome))
        if self._callback is not None:
            self._call_soon(self._callback, *outcome)

    def __repr__(self) -> str:
        state = "pending" if not self.ready() else "settled"
        return f"<Ack {state}>"


class AckWaiter:
    """A registered ack id: what to do with its outcome, and its timeout timer.

    :param on_outcome: called once, in whichever greenlet settles it (must not block).
    :param timeout: seconds to wait, or ``None``.
    :param on_timeout: called (in a timer greenlet) when ``timeout`` expires first.
    """

    def __init__(
        self,
        on_outcome: Callable[[Outcome], None],
        timeout: float | None,
        on_timeout: Callable[[], None],
    ) -> None:
        self.on_outcome = on_outcome
        self.sent = False
        self._timer = None if timeout is None else gevent.spawn_later(timeout, on_timeout)

    def settle(self, outcome: Outcome) -> None:
        """Stop the timer and deliver the outcome."""
        timer, self._timer = self._timer, None
        if timer is not None and timer is not gevent.getcurrent():
            timer.kill(block=False)
        self.on_outcome(outcome)
