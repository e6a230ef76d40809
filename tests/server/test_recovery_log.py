"""The in-memory recovery store: bounded by time and count, one restore per session,
and the options the server accepts. A fake clock drives time."""

from __future__ import annotations

import pytest

from geventsio._types import Room, SocketId
from geventsio.adapters.base import BroadcastFlags, BroadcastOptions
from geventsio.adapters.recovery import RecoveryLog, SessionState, is_recoverable
from geventsio.options import RecoveryOptions
from geventsio.protocol.socketio import Packet, PacketType


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(n: int) -> Packet:
    return Packet(PacketType.EVENT, "/", ["tick", n])


def to(*rooms: str, except_: tuple[str, ...] = ()) -> BroadcastOptions:
    return BroadcastOptions(frozenset(Room(r) for r in rooms), frozenset(Room(r) for r in except_))


def state(pid: str = "p", rooms: tuple[str, ...] = ("s1", "news")) -> SessionState:
    return SessionState(SocketId("s1"), pid, frozenset(Room(r) for r in rooms), {"k": 1})


def log_with(clock: Clock, **options: float) -> RecoveryLog:
    return RecoveryLog(RecoveryOptions(**options), clock)  # type: ignore[arg-type]


def test_missed_packets_follow_the_offset_in_order_and_by_rooms() -> None:
    clock = Clock()
    log = log_with(clock)
    first = log.append(event(0), to("news"))
    log.append(event(1), to("news"))
    log.append(event(2), to("other"))
    log.append(event(3), to("news", except_=("s1",)))
    log.append(event(4), to())
    log.append(event(5), to("s1"))
    log.persist(state())

    restored = log.restore("p", first.data[-1])

    assert restored is not None
    assert restored.state == state()
    assert [p.data[1] for p in restored.missed] == [1, 4, 5]
    assert all(p.data[-1] != first.data[-1] for p in restored.missed)


def test_a_session_is_restored_once_and_unknown_ids_get_nothing() -> None:
    log = log_with(Clock())
    offset = log.append(event(0), to()).data[-1]
    log.persist(state())
    assert log.restore("nope", offset) is None
    assert log.restore("p", "nope") is None  # consumed by the attempt
    log.persist(state())
    assert log.restore("p", offset) is not None
    assert log.restore("p", offset) is None


def test_nothing_is_kept_past_the_window() -> None:
    clock = Clock()
    log = log_with(clock, max_disconnection_duration=10)
    old = log.append(event(0), to()).data[-1]
    log.persist(state())
    clock.now += 10.5
    log.prune()
    assert len(log) == 0 and log.session_count == 0
    log.persist(state())
    assert log.restore("p", old) is None  # the offset is gone

    log.persist(state("q"))
    clock.now += 11
    assert log.restore("q", log.append(event(1), to()).data[-1]) is None  # session expired


def test_the_count_bound_drops_the_oldest() -> None:
    log = log_with(Clock(), max_buffered_packets=3)
    offsets = [log.append(event(n), to()).data[-1] for n in range(5)]
    assert len(log) == 3
    log.persist(state())
    assert log.restore("p", offsets[0]) is None
    log.persist(state())
    restored = log.restore("p", offsets[2])
    assert restored is not None and [p.data[1] for p in restored.missed] == [3, 4]


def test_only_plain_events_are_kept() -> None:
    assert is_recoverable(event(0), to())
    assert not is_recoverable(Packet(PacketType.EVENT, "/", ["x"], 3), to())
    volatile = BroadcastOptions(flags=BroadcastFlags(volatile=True))
    assert not is_recoverable(event(0), volatile)
    assert not is_recoverable(Packet(PacketType.DISCONNECT, "/"), to())


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (None, None),
        (False, None),
        (True, RecoveryOptions()),
        ({"max_disconnection_duration": 5}, RecoveryOptions(max_disconnection_duration=5)),
    ],
)
def test_the_server_option(setting, expected) -> None:
    assert RecoveryOptions.from_setting(setting) == expected


@pytest.mark.parametrize(
    "setting", [{"maxDisconnectionDuration": 5}, {"max_disconnection_duration": 0}, "yes"]
)
def test_bad_settings_fail_at_once(setting) -> None:
    with pytest.raises((TypeError, ValueError)):
        RecoveryOptions.from_setting(setting)


def test_an_adapter_that_keeps_no_sessions_is_pointed_out(caplog) -> None:
    import geventsio
    from geventsio.adapters.memory import InMemoryAdapter
    from geventsio.adapters.recovery import SessionAwareAdapter

    with caplog.at_level("WARNING", logger="geventsio.server.server"):
        plain = geventsio.Server(connection_state_recovery=True, adapter=InMemoryAdapter)
    assert "keeps no sessions" in caplog.text
    assert not plain.of("/").adapter.keeps_sessions
    assert isinstance(
        geventsio.Server(connection_state_recovery=True).of("/").adapter, SessionAwareAdapter
    )
