"""The Engine.IO v4 heartbeat, as a pure state machine.

Theory of operation: the server sends a ping every ``interval`` seconds and then waits
``timeout`` seconds for the pong. The caller owns the clock and the timer: it calls
:meth:`Heartbeat.on_timer` when the delay last returned has elapsed and
:meth:`Heartbeat.on_pong` when a pong arrives. Invariant: at most one ping is
outstanding, and only a pong answers it (other traffic does not count, as in Node).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class HeartbeatAction(Enum):
    """What the caller must do when the timer fires."""

    SEND_PING = "send ping"
    TIMED_OUT = "timed out"


@dataclass(frozen=True, slots=True)
class TimerDecision:
    """The action to take now and the delay, in seconds, until the next timer."""

    action: HeartbeatAction
    next_delay: float | None


class Heartbeat:
    """Ping scheduling and pong deadlines for one session.

    :param interval: seconds from a pong (or the start) to the next ping.
    :param timeout: seconds a ping may wait for its pong.
    """

    def __init__(self, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self.awaiting_pong = False

    def first_delay(self) -> float:
        """The delay before the first ping."""
        return self.interval

    def on_timer(self) -> TimerDecision:
        """The timer fired: send a ping, or give up when the last ping went unanswered."""
        if self.awaiting_pong:
            return TimerDecision(HeartbeatAction.TIMED_OUT, None)
        self.awaiting_pong = True
        return TimerDecision(HeartbeatAction.SEND_PING, self.timeout)

    def on_pong(self) -> float | None:
        """A pong arrived; returns the delay to the next ping, or None if none was awaited."""
        if not self.awaiting_pong:
            return None
        self.awaiting_pong = False
        return self.interval
