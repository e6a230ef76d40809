"""The sans-IO Engine.IO session: a server session wired to a client session in memory.

No sockets, no sleeps: :class:`SessionPair` carries each step's packets across through
the real wire encodings (WebSocket messages or long-polling payloads) and runs both
ends' timers on a fake clock.
"""

from __future__ import annotations

import pytest

from geventsio._types import DisconnectReason
from geventsio.exceptions import RemoteProtocolError
from geventsio.protocol import engineio
from geventsio.protocol.engineio import Packet, PacketType
from geventsio.protocol.session import (
    CLIENT_CLOSE_GRACE,
    ClientSession,
    Closed,
    Event,
    Handshake,
    Message,
    ServerSession,
    SessionState,
    Step,
    Upgraded,
    UpgradeFailed,
)

INTERVAL = 0.3
TIMEOUT = 0.2


def _over_websocket(packets: tuple[Packet, ...]) -> list[Packet]:
    return [engineio.decode_ws(engineio.encode_ws(p)) for p in packets]


def _over_polling(packets: tuple[Packet, ...]) -> list[Packet]:
    if not packets:
        return []
    return engineio.decode_payload(engineio.encode_payload(list(packets)).encode())


class SessionPair:
    """A server session and a client session joined by an in-memory link."""

    def __init__(self, wire: str = "websocket") -> None:
        self.now = 0.0
        self.carry = _over_websocket if wire == "websocket" else _over_polling
        self.server = ServerSession(INTERVAL, TIMEOUT)
        handshake = Handshake("abc", ("websocket",), INTERVAL, TIMEOUT, 1_000_000)
        (open_packet,) = self.carry((handshake.to_packet(),))
        self.client = ClientSession(Handshake.parse(open_packet), self.now)
        self.server_events: list[Event] = []
        self.client_events: list[Event] = []
        self.server_timer: float | None = None
        self.client_timer: float | None = None
        #: Cut the link one way: packets sent that way are lost.
        self.server_to_client = True
        self.client_to_server = True
        self.from_server(self.server.start())
        self.from_client(self.client.start(self.now))

    def from_server(self, step: Step) -> None:
        if step.timer is not None:
            self.server_timer = self.now + step.timer
        self.server_events.extend(step.events)
        if self.server_to_client:
            for packet in self.carry(step.send):
                self.from_client(self.client.receive(packet, self.now))

    def from_client(self, step: Step) -> None:
        if step.timer is not None:
            self.client_timer = self.now + step.timer
        self.client_events.extend(step.events)
        if self.client_to_server:
            for packet in self.carry(step.send):
                self.from_server(self.server.receive(packet))

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing each timer when it is due, in order."""
        end = self.now + seconds
        while True:
            due = [t for t in (self.server_timer, self.client_timer) if t is not None]
            if not due or min(due) > end:
                break
            self.now = min(due)
            if self.server_timer == self.now:
                self.server_timer = None
                self.from_server(self.server.on_timer())
            if self.client_timer == self.now:
                self.client_timer = None
                self.from_client(self.client.on_timer(self.now))
        self.now = end


def _closed(events: list[Event]) -> list[Closed]:
    return [e for e in events if isinstance(e, Closed)]


def test_the_open_packet_is_nodes_byte_for_byte() -> None:
    packet = Handshake("abc", ("websocket",), 25.0, 20.0, 1_000_000).to_packet()
    assert engineio.encode_ws(packet) == (
        '0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,'
        '"pingTimeout":20000,"maxPayload":1000000}'
    )
    assert Handshake.parse(packet).heartbeat_period == 45.0


@pytest.mark.parametrize("wire", ["websocket", "polling"])
def test_a_heartbeat_answered_keeps_both_ends_open_for_ever(wire: str) -> None:
    pair = SessionPair(wire)
    pair.advance(100 * (INTERVAL + TIMEOUT))
    assert pair.server_events == [] and pair.client_events == []
    assert pair.server.state is SessionState.OPEN and pair.client.state is SessionState.OPEN


def test_a_client_that_stops_answering_is_closed_after_interval_plus_timeout() -> None:
    pair = SessionPair()
    pair.advance(3 * (INTERVAL + TIMEOUT))  # answered pings
    pair.client_to_server = False
    pair.advance(INTERVAL + TIMEOUT - 0.01)
    assert pair.server_events == []
    pair.advance(0.02)
    assert _closed(pair.server_events) == [
        Closed(DisconnectReason.PING_TIMEOUT, f"no pong within {TIMEOUT:.3g} s")
    ]


def test_a_client_that_hears_no_ping_gives_up_after_interval_plus_timeout() -> None:
    pair = SessionPair()
    pair.server_to_client = False
    pair.advance(INTERVAL + TIMEOUT - 0.001)
    assert pair.client_events == []
    pair.advance(0.002)
    assert pair.client_events == [
        Closed(DisconnectReason.PING_TIMEOUT, f"no ping within {INTERVAL + TIMEOUT:g}s")
    ]
    assert pair.client.fail() and not pair.client.fail()  # the end is reported once


def test_while_reading_is_held_an_unanswered_ping_is_sent_again() -> None:
    pair = SessionPair()
    pair.client_to_server = False  # the pongs sit unread while the server holds reading
    pair.server.reading_held = True
    pair.advance(5 * (INTERVAL + TIMEOUT))
    assert pair.server_events == []
    pair.server.reading_held = False
    pair.advance(2 * TIMEOUT + 0.01)
    assert [e.reason for e in _closed(pair.server_events)] == [DisconnectReason.PING_TIMEOUT]


@pytest.mark.parametrize("wire", ["websocket", "polling"])
def test_messages_cross_in_order_both_ways(wire: str) -> None:
    pair = SessionPair(wire)
    sent: list[str | bytes] = ['2["hi"]', b"\x00\xff", "", "é"]
    pair.from_client(Step(send=tuple(Packet(PacketType.MESSAGE, d) for d in sent)))
    pair.from_server(Step(send=tuple(Packet(PacketType.MESSAGE, d) for d in sent)))
    assert pair.server_events == [Message(d) for d in sent]
    assert pair.client_events == [Message(d) for d in sent]


def test_the_clients_close_ends_the_last_get_with_noop_after_a_short_grace() -> None:
    pair = SessionPair("polling")
    pair.from_client(pair.client.close())
    assert pair.client.state is SessionState.CLOSING
    (closed,) = _closed(pair.server_events)
    assert closed.reason is DisconnectReason.TRANSPORT_CLOSE
    step = pair.server.close(closed.reason, by_client=True, on_polling=True)
    assert step is not None
    assert step.send == (engineio.NOOP,) and step.timer == CLIENT_CLOSE_GRACE
    assert pair.server.close(DisconnectReason.FORCED_CLOSE) is None  # once only
    assert pair.server.finish() and not pair.server.finish()
    assert pair.server.state is SessionState.CLOSED


@pytest.mark.parametrize(
    ("reason", "on_polling", "timer"),
    [
        (DisconnectReason.FORCED_CLOSE, True, TIMEOUT),  # server decided: lingers
        (DisconnectReason.FORCED_CLOSE, False, None),  # on WebSocket: at once
        (DisconnectReason.TRANSPORT_ERROR, True, None),  # a failure: at once
    ],
)
def test_a_server_close_tells_the_client_and_lingers_only_when_it_should(
    reason: DisconnectReason, on_polling: bool, timer: float | None
) -> None:
    pair = SessionPair("polling")
    step = pair.server.close(reason, on_polling=on_polling)
    assert step is not None and step.timer == timer and step.send == (engineio.CLOSE,)
    assert step.events == (Closed(reason),)
    pair.from_server(Step(send=step.send))
    assert pair.client_events == [
        Closed(DisconnectReason.TRANSPORT_CLOSE, "session closed by the server", by_peer=True)
    ]
    pair.from_client(Step(send=(Packet(PacketType.MESSAGE, "late"),)))
    assert not any(isinstance(e, Message) for e in pair.server_events)


def test_the_upgrade_exchange_probes_then_switches() -> None:
    pair = SessionPair("polling")
    server, client = pair.server, pair.client
    server.begin_upgrade()
    assert server.upgrading and not server.probed
    (probe,) = client.probe().send
    answer = server.upgrade_message(engineio.encode_ws(probe))
    assert answer.events == () and server.probed
    (pong,) = _over_websocket(answer.send)
    client.probe_answered(pong)
    (upgrade,) = client.complete_upgrade().send
    done = server.upgrade_message(engineio.encode_ws(upgrade))
    assert done.events == (Upgraded(),)
    server.end_upgrade()
    assert not server.upgrading


@pytest.mark.parametrize("first", ["2probe", None])
def test_an_upgrade_without_the_probe_fails_and_the_session_goes_on(first: str | None) -> None:
    pair = SessionPair("polling")
    pair.server.begin_upgrade()
    step = pair.server.upgrade_message("5" if first is not None else None)
    assert step.events == (UpgradeFailed("got '5'" if first else "got None"),)
    pair.server.end_upgrade()
    with pytest.raises(RemoteProtocolError):
        pair.client.probe_answered(Packet(PacketType.PONG, "nope"))
    pair.advance(3 * INTERVAL)
    assert pair.server.state is SessionState.OPEN and pair.server_events == []


def test_a_client_ping_ends_the_session_and_nothing_after_it_is_delivered() -> None:
    pair = SessionPair("polling")
    step = pair.server.receive(Packet(PacketType.PING))
    (closed,) = step.events
    assert closed == Closed(
        DisconnectReason.TRANSPORT_ERROR, "invalid heartbeat direction (a client ping)"
    )
    assert pair.server.close(closed.reason, on_polling=True) is not None
    assert pair.server.receive(Packet(PacketType.MESSAGE, "after")).events == ()


@pytest.mark.parametrize("kind", [PacketType.OPEN, PacketType.UPGRADE])
def test_a_client_may_not_send_open_or_upgrade(kind: PacketType) -> None:
    with pytest.raises(RemoteProtocolError, match=kind.name):
        ServerSession(INTERVAL, TIMEOUT).receive(Packet(kind))


@pytest.mark.parametrize(
    "data",
    ["", "1{}", '0{"sid":1}', '0{"sid":"a","pingInterval":"x","pingTimeout":1}', "0[]"],
)
def test_a_malformed_open_packet_is_a_remote_error(data: str) -> None:
    with pytest.raises(RemoteProtocolError):
        Handshake.parse(engineio.decode_text_packet(data) if data else Packet(PacketType.OPEN))
