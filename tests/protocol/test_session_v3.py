"""The Engine.IO v3 heartbeat of the server's session, on a fake clock: the client pings,
the server answers and re-arms a deadline of ``pingInterval + pingTimeout``."""

from __future__ import annotations

from geventsio._types import DisconnectReason
from geventsio.protocol.engineio import PING, PONG, Packet, PacketType
from geventsio.protocol.session import Closed, Message
from geventsio.protocol.session_v3 import ServerSessionV3

INTERVAL = 0.3
TIMEOUT = 0.2


class Clock:
    """The session and its one timer on a fake clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.session = ServerSessionV3(INTERVAL, TIMEOUT)
        self.deadline: float | None = None
        self.sent: list[Packet] = []
        self.events: list[object] = []
        self.apply(self.session.start())

    def apply(self, step) -> None:
        if step.timer is not None:
            self.deadline = self.now + step.timer
        self.sent.extend(step.send)
        self.events.extend(step.events)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self.deadline is not None and self.deadline <= end:
            self.now, self.deadline = self.deadline, None
            self.apply(self.session.on_timer())
        self.now = end

    def closed(self) -> list[Closed]:
        return [e for e in self.events if isinstance(e, Closed)]


def test_each_client_ping_is_answered_and_keeps_the_session_open() -> None:
    clock = Clock()
    for _ in range(20):
        clock.advance(INTERVAL)
        clock.apply(clock.session.receive(PING))
    assert clock.sent == [PONG] * 20
    assert clock.closed() == []


def test_a_silent_client_is_dropped_after_interval_plus_timeout() -> None:
    clock = Clock()
    clock.advance(INTERVAL)
    clock.apply(clock.session.receive(PING))
    clock.advance(INTERVAL + TIMEOUT - 0.01)
    assert clock.closed() == []
    clock.advance(0.02)
    [closed] = clock.closed()
    assert closed.reason is DisconnectReason.PING_TIMEOUT
    assert clock.now >= INTERVAL + INTERVAL + TIMEOUT


def test_other_traffic_does_not_count_as_a_ping() -> None:
    clock = Clock()
    clock.advance(INTERVAL)
    clock.apply(clock.session.receive(Packet(PacketType.MESSAGE, "2[]")))
    assert isinstance(clock.events[0], Message)
    clock.advance(TIMEOUT + 0.01)
    assert [c.reason for c in clock.closed()] == [DisconnectReason.PING_TIMEOUT]


def test_the_server_never_pings() -> None:
    clock = Clock()
    clock.advance(INTERVAL + TIMEOUT / 2)
    assert clock.sent == []


def test_a_client_pong_is_the_wrong_heartbeat_direction() -> None:
    clock = Clock()
    clock.apply(clock.session.receive(PONG))
    assert [c.reason for c in clock.closed()] == [DisconnectReason.TRANSPORT_ERROR]


def test_while_reading_is_held_the_deadline_is_extended() -> None:
    clock = Clock()
    clock.session.reading_held = True
    clock.advance(INTERVAL + TIMEOUT)
    assert clock.closed() == []
    clock.session.reading_held = False
    clock.advance(TIMEOUT)  # held since the last timer: one more extension
    assert clock.closed() == []
    clock.advance(TIMEOUT)
    assert [c.reason for c in clock.closed()] == [DisconnectReason.PING_TIMEOUT]
