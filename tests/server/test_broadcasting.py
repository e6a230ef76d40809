"""Broadcasting in process: the immutable BroadcastOperator, the adapter's room maps as real
connections join, leave and go, and encode-once (one encoding, the same packet objects
for every recipient). Clients are raw, on real sockets; the wire bytes are checked too."""

from __future__ import annotations

import dataclasses
from dataclasses import FrozenInstanceError

import orjson
import pytest

import geventsio
from geventsio import LocalProtocolError
from geventsio.adapters.base import BroadcastFlags, BroadcastOptions
from geventsio.adapters.memory import InMemoryAdapter
from tests.server.sio_support import RawSio, record
from tests.support import messages, wait_until

# -- BroadcastOperator --------------------------------------------------------------------


def test_broadcast_operators_are_immutable():
    sio = geventsio.Server()
    base = sio.to("a")

    derived = [
        base.to("b"),
        base.except_("c"),
        base.timeout(2),
        base.volatile,
        base.local,
        base.compress(False),
        base.in_(["b", "d"]),
    ]

    assert base.options == BroadcastOptions(rooms=frozenset({"a"}))
    assert [d.options for d in derived] == [
        BroadcastOptions(rooms=frozenset({"a", "b"})),
        BroadcastOptions(rooms=frozenset({"a"}), except_rooms=frozenset({"c"})),
        BroadcastOptions(rooms=frozenset({"a"}), flags=BroadcastFlags(timeout=2)),
        BroadcastOptions(rooms=frozenset({"a"}), flags=BroadcastFlags(volatile=True)),
        BroadcastOptions(rooms=frozenset({"a"}), flags=BroadcastFlags(local=True)),
        BroadcastOptions(rooms=frozenset({"a"}), flags=BroadcastFlags(compress=False)),
        BroadcastOptions(rooms=frozenset({"a", "b", "d"})),
    ]
    assert all(d is not base for d in derived)
    with pytest.raises(FrozenInstanceError):
        base.options.rooms = frozenset()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        base.extra = 1  # type: ignore[attr-defined]


def test_broadcast_misuse_fails_at_once():
    sio = geventsio.Server()
    with pytest.raises(LocalProtocolError, match="needs a timeout"):
        sio.emit("q", callback=lambda error, responses: None)
    # The compiled build refuses the int at the call (TypeError: "str object expected").
    with pytest.raises((LocalProtocolError, TypeError), match=r"event name must be a string|str"):
        sio.to("room").emit(42)  # type: ignore[arg-type]


# -- the adapter's room maps --------------------------------------------------------------


def rooms_app(sio_server):
    app = sio_server()

    @app.sio.on("join")
    def join(socket, rooms):
        socket.join(rooms)
        return True

    @app.sio.on("leave")
    def leave(socket, room):
        socket.leave(room)
        return True

    return app


def call(raw: RawSio, ack_id: int, event: str, *args: object) -> object:
    raw.emit(event, *args, ack_id=ack_id)
    while True:
        message = raw.recv()
        if isinstance(message, str) and message.startswith(f"3{ack_id}["):
            return orjson.loads(message[len(str(ack_id)) + 1 :])


def test_adapter_room_maps_follow_join_leave_and_disconnect(sio_server):
    app = rooms_app(sio_server)
    life = record(app.sio.of("/"))
    adapter = app.sio.of("/").adapter
    assert isinstance(adapter, InMemoryAdapter)
    one, two = app.raw(), app.raw()
    id_one, id_two = one.connect(), two.connect()

    assert adapter.rooms() == {id_one, id_two}  # each socket in its own room
    call(one, 1, "join", ["red", "blue"])
    call(two, 1, "join", "red")
    assert adapter.rooms() == {id_one, id_two, "red", "blue"}
    assert adapter.room_members("red") == {id_one, id_two}
    assert adapter.socket_rooms(id_one) == {id_one, "red", "blue"}

    call(one, 2, "leave", "blue")
    assert "blue" not in adapter.rooms()  # an empty room is forgotten
    assert adapter.socket_rooms(id_one) == {id_one, "red"}

    one.ws.close()
    assert life.reason_of(id_one) == "transport close"
    assert life.disconnecting_rooms[id_one] == {id_one, "red"}
    assert adapter.rooms() == {id_two, "red"}
    assert adapter.room_members("red") == {id_two}
    assert adapter.socket_rooms(id_one) == frozenset()

    app.sio.close_room("red")
    assert adapter.rooms() == {id_two}


# -- encode once ----------------------------------------------------------------------------


class SentPackets:
    """Records the packet lists each engine session is given (wrapping send_packets)."""

    def __init__(self, sessions) -> None:
        self.by_sid: dict[str, list[object]] = {}
        for session in sessions:
            self.by_sid[session.sid] = []
            session.send_packets = self._recorder(session, session.send_packets)

    def _recorder(self, session, send):
        def send_packets(packets, *tier):
            self.by_sid[session.sid].extend(packets)
            return send(packets, *tier)

        return send_packets


class EncodeCounter:
    """Counts the packets the server encodes (its serializer's ``encode``)."""

    def __init__(self, monkeypatch, sio: geventsio.Server) -> None:
        self.calls = 0
        original = sio.serializer.encode

        def counting(packet):
            self.calls += 1
            return original(packet)

        monkeypatch.setattr(sio, "serializer", dataclasses.replace(sio.serializer, encode=counting))


def test_a_broadcast_is_encoded_once_for_every_recipient(sio_server, monkeypatch):
    app = sio_server()
    websockets = [app.raw() for _ in range(3)]
    for raw in websockets:
        raw.connect()
    polling = app.live.polling()
    polling.handshake()
    polling.send("0")
    assert messages(polling.get())[0].startswith('0{"sid":')
    sent = SentPackets(app.sio.engine.sessions.values())
    encodes = EncodeCounter(monkeypatch, app.sio)

    app.sio.emit("news", {"n": 1})
    app.sio.emit("file", {"data": b"\x01\x02"})

    assert encodes.calls == 2
    recorded = list(sent.by_sid.values())
    assert len(recorded) == 4
    assert all(len(packets) == 3 for packets in recorded)  # news, file, its attachment
    for packets in recorded[1:]:
        assert all(mine is first for mine, first in zip(packets, recorded[0], strict=True))
    text = '51-["file",{"data":{"_placeholder":true,"num":0}}]'
    for raw in websockets:
        assert [raw.recv(), raw.recv(), raw.recv()] == ['2["news",{"n":1}]', text, b"\x01\x02"]
    got = messages(polling.get())
    assert got[:2] == ['2["news",{"n":1}]', text]
    assert got[2:] == [b"\x01\x02"]


def test_a_broadcast_with_acks_is_encoded_once_too(sio_server, monkeypatch):
    app = sio_server()
    clients = [app.raw() for _ in range(3)]
    for raw in clients:
        raw.connect()
    sent = SentPackets(app.sio.engine.sessions.values())
    encodes = EncodeCounter(monkeypatch, app.sio)
    results = []

    app.sio.timeout(5).emit(
        "q", callback=lambda error, responses: results.append((error, sorted(responses)))
    )

    assert encodes.calls == 1
    first, *others = sent.by_sid.values()
    assert all(packets[0] is first[0] for packets in others)
    for number, raw in enumerate(clients):
        question = raw.recv()
        assert isinstance(question, str)
        ack_id = question[1 : question.index("[")]
        raw.send(f"3{ack_id}" + orjson.dumps([number]).decode())
    wait_until(lambda: results, 5, "the broadcast callback")
    assert results == [(None, [0, 1, 2])]


def test_the_drop_policy_drops_old_broadcasts_never_acks(sio_server):
    app = sio_server(max_buffer_size=10_000, slow_consumer_policy="drop")
    app.sio.on("ask", lambda socket: "answer")
    polling = app.live.polling()
    polling.handshake()
    polling.send("0")
    assert messages(polling.get())[0].startswith("0{")  # the CONNECT acknowledgement
    for i in range(10):  # nobody reads: the buffer holds four of them
        app.sio.emit("news", f"{i}" * 2000)
    polling.send('27["ask"]')
    wait_until(lambda: app.sio.connections[polling.sid].queued == 0, 5, "the ask handled")
    received = messages(polling.get())
    news = [orjson.loads(m[1:])[1] for m in received if m.startswith("2")]
    assert news == [f"{i}" * 2000 for i in range(6, 10)]  # the oldest went first
    assert received[-1] == '37["answer"]'
    polling.close()
