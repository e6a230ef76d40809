"""Acknowledgements we wait for: by id, each with an optional deadline.

Callbacks registered here run in the hub (a timer, or the reader of the connection that
received the ack), so they must not block; the socket wraps user callbacks to run them
in the connection's worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent

from geventsio.exceptions import GeventsioError

OnAck = Callable[[list[Any]], None]
OnFailure = Callable[[GeventsioError], None]


@dataclass(slots=True)
class _Pending:
    on_ack: OnAck
    on_failure: OnFailure | None
    timer: Any


class PendingAcks:
    """The acknowledgements one socket is waiting for."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[int, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def expect(
        self,
        ack_id: int,
        on_ack: OnAck,
        *,
        timeout: float | None = None,
        on_failure: OnFailure | None = None,
        timeout_error: Callable[[], GeventsioError] | None = None,
    ) -> None:
        """Wait for ``ack_id``; after ``timeout`` seconds call ``on_failure`` instead."""
        timer = None
        if timeout is not None:
            timer = gevent.get_hub().loop.timer(timeout)
            make_error = timeout_error or (lambda: GeventsioError("acknowledgement timed out"))
            timer.start(self._expire, ack_id, make_error)
        self._pending[ack_id] = _Pending(on_ack, on_failure, timer)

    def resolve(self, ack_id: int, args: list[Any]) -> bool:
        """Deliver an acknowledgement; False when nobody waits for it (late or unknown)."""
        pending = self._pending.pop(ack_id, None)
        if pending is None:
            return False
        if pending.timer is not None:
            pending.timer.close()
        pending.on_ack(args)
        return True

    def _expire(self, ack_id: int, make_error: Callable[[], GeventsioError]) -> None:
        pending = self._pending.pop(ack_id, None)
        if pending is None:
            return
        pending.timer.close()
        if pending.on_failure is not None:
            pending.on_failure(make_error())

    def fail_all(self, make_error: Callable[[], GeventsioError]) -> None:
        """Nothing more will arrive (the socket disconnected): fail every waiter with the
        error ``make_error()`` gives (made only when someone waits)."""
        if not self._pending:
            return
        error = make_error()
        pending, self._pending = self._pending, {}
        for item in pending.values():
            if item.timer is not None:
                item.timer.close()
            if item.on_failure is not None:
                item.on_failure(error)
