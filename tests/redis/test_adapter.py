"""RedisAdapter against a recording link and a namespace of small test doubles: what it
answers to other servers' requests and what it publishes, message by message."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gevent
import msgpack
import orjson
import pytest

from geventsio import LocalProtocolError, Room, SocketId
from geventsio.adapters import redis_wire as wire
from geventsio.adapters.base import BroadcastFlags, BroadcastOptions
from geventsio.adapters.redis import RedisAdapter, RedisAdapterFactory
from geventsio.adapters.redis_link import DropLog
from geventsio.protocol.outgoing import OutgoingPacket
from geventsio.protocol.serializers import JSON
from geventsio.protocol.socketio import Packet, PacketType

KEY = "k"


class RecordingLink:
    """A link that records what is published and says how many servers subscribe."""

    def __init__(self, servers: int = 1) -> None:
        self.uid = "me"
        self.servers = servers
        self.published: list[tuple[bytes, bytes]] = []
        self.drops = DropLog()
        self.accepting = True
        self.listener: Any = None

    def add(self, pattern: bytes, channels: Sequence[bytes], listener: Any) -> None:
        self.listener = listener
        for channel in channels:
            if b"-request#" in channel:
                listener.on_subscribed(channel)

    def remove(self, listener: Any) -> None:
        self.listener = None

    def publish(self, channel: bytes, data: bytes) -> bool:
        self.published.append((channel, data))
        return True

    def numsub(self, channel: bytes) -> int:
        return self.servers


class FakeSocket:
    """A local socket that records what it is sent and asked."""

    def __init__(self, namespace: FakeNamespace, socket_id: str) -> None:
        self.id = SocketId(socket_id)
        self.namespace = namespace
        self.sent: list[Packet] = []
        self.acks: dict[int, Callable[[list[Any]], None]] = {}
        self.data: dict[str, Any] = {"name": socket_id}
        self.disconnected: bool | None = None

    @property
    def rooms(self) -> frozenset[Room]:
        return self.namespace.adapter.socket_rooms(self.id)

    def write_outgoing(
        self, packets: Sequence[OutgoingPacket], volatile: bool, source: Packet
    ) -> None:
        self.sent.append(source)

    def expect_ack(self, ack_id: int, on_ack: Callable[[list[Any]], None]) -> None:
        self.acks[ack_id] = on_ack

    def join(self, rooms: Room | Iterable[Room]) -> None:
        self.namespace.adapter.add_all(self.id, [rooms] if isinstance(rooms, str) else rooms)

    def leave(self, room: Room) -> None:
        self.namespace.adapter.delete(self.id, room)

    def disconnect(self, close: bool = False) -> None:
        self.disconnected = close


class FakeNamespace:
    """A namespace with a counter of ack ids, as the server's has."""

    def __init__(self, link: RecordingLink, name: str = "/") -> None:
        self.name = name
        self.serializer = JSON
        self.sockets: dict[SocketId, FakeSocket] = {}
        self.adapter = RedisAdapter(self, link, key=KEY)  # type: ignore[arg-type]
        self._ack_ids = iter(range(100, 200))

    def next_ack_id(self) -> int:
        return next(self._ack_ids)

    def server_side_handler(self, event: str) -> None:
        return None

    def add(self, socket_id: str, *rooms: str) -> FakeSocket:
        socket = self.sockets[SocketId(socket_id)] = FakeSocket(self, socket_id)
        self.adapter.add_all(socket.id, [Room(socket_id), *map(Room, rooms)])
        return socket


@pytest.fixture
def link() -> RecordingLink:
    return RecordingLink(servers=2)


@pytest.fixture
def namespace(link: RecordingLink) -> FakeNamespace:
    namespace = FakeNamespace(link)
    namespace.add("s1", "r")
    namespace.add("s2")
    return namespace


def request(link: RecordingLink, **body: Any) -> None:
    link.listener.on_channel_message(b"k-request#/#", orjson.dumps(body))


def answers(link: RecordingLink) -> list[tuple[bytes, Any]]:
    return [(channel, wire.unpack_request(data)) for channel, data in link.published]


def test_broadcasts_are_published_on_the_room_channel_and_delivered_here(
    namespace: FakeNamespace, link: RecordingLink
) -> None:
    packet = Packet(PacketType.EVENT, "/", ["e", 1])
    namespace.adapter.broadcast(packet, BroadcastOptions(rooms=frozenset({Room("r")})))
    assert [p.data for p in namespace.sockets[SocketId("s1")].sent] == [["e", 1]]
    ((channel, data),) = link.published
    assert channel == b"k#/#r#"
    assert msgpack.unpackb(data)[0] == "me"
    namespace.adapter.broadcast(packet, BroadcastOptions(flags=BroadcastFlags(local=True)))
    assert len(link.published) == 1  # local: not published


def test_own_and_foreign_namespace_broadcasts_are_ignored(
    namespace: FakeNamespace, link: RecordingLink
) -> None:
    adapter = namespace.adapter
    own = wire.encode_broadcast("me", Packet(PacketType.EVENT, "/", ["own"]), BroadcastOptions())
    other_ns = wire.encode_broadcast(
        "x", Packet(PacketType.EVENT, "/a", ["ns"]), BroadcastOptions()
    )
    adapter.on_broadcast_message(b"k#/#", own)
    adapter.on_broadcast_message(b"k#/#", other_ns)
    adapter.on_broadcast_message(b"k#/#nobody-here#", b"garbage never decoded")
    assert all(not s.sent for s in namespace.sockets.values())
    theirs = wire.encode_broadcast(
        "x",
        Packet(PacketType.EVENT, "/", ["hi"]),
        BroadcastOptions(except_rooms=frozenset({Room("r")})),
    )
    adapter.on_broadcast_message(b"k#/#", theirs)
    assert [p.data for p in namespace.sockets[SocketId("s2")].sent] == [["hi"]]
    assert namespace.sockets[SocketId("s1")].sent == []


def test_a_broadcast_with_acks_from_another_server_gets_our_own_ack_id(
    namespace: FakeNamespace, link: RecordingLink
) -> None:
    body = {
        "uid": "x",
        "requestId": "q1",
        "type": 7,
        "opts": {"rooms": ["r"]},
        "packet": {"type": 2, "data": ["ask"], "nsp": "/", "id": 5},
    }
    link.listener.on_channel_message(b"k-request#/#", wire.pack(body))
    s1 = namespace.sockets[SocketId("s1")]
    assert [(p.data, p.id) for p in s1.sent] == [(["ask"], 100)]
    s1.acks[100](["yes", "ignored"])
    assert answers(link) == [
        (b"k-response#/#", {"type": 8, "requestId": "q1", "clientCount": 1}),
        (b"k-response#/#", {"type": 9, "requestId": "q1", "packet": "yes"}),
    ]


def test_our_broadcast_with_acks_counts_the_other_servers(
    namespace: FakeNamespace, link: RecordingLink
) -> None:
    counts: list[int] = []
    acks: list[list[Any]] = []
    packet = Packet(PacketType.EVENT, "/", ["ask"], 7)
    options = BroadcastOptions(flags=BroadcastFlags(timeout=1))
    assert namespace.adapter.broadcast_with_ack(packet, options, counts.append, acks.append) == 2
    ((_, data),) = link.published
    request_body = msgpack.unpackb(data)
    assert request_body["packet"] == {"type": 2, "data": ["ask"], "nsp": "/"}
    assert request_body["opts"]["flags"] == {"timeout": 1000}
    request_id = request_body["requestId"]
    respond = link.listener.on_channel_message
    respond(b"k-response#/#", orjson.dumps({"type": 8, "requestId": request_id, "clientCount": 3}))
    respond(b"k-response#/#", wire.pack({"type": 9, "requestId": request_id, "packet": b"\x01"}))
    assert counts == [2, 3]
    assert acks == [[b"\x01"]]


def test_requests_of_older_node_servers_are_answered(
    namespace: FakeNamespace, link: RecordingLink
) -> None:
    request(link, uid="x", requestId="a", type=0, rooms=["r"])
    request(link, uid="x", requestId="b", type=1)
    request(link, uid="x", requestId="c", type=2, sid="s2", room="joined")
    request(link, uid="x", requestId="d", type=4, sid="s2", close=True)
    assert [body for _, body in answers(link)] == [
        {"requestId": "a", "sockets": ["s1"]},
        {"requestId": "b", "rooms": ["r", "s1", "s2"]},
        {"requestId": "c"},
        {"requestId": "d"},
    ]
    assert "joined" in namespace.sockets[SocketId("s2")].rooms
    assert namespace.sockets[SocketId("s2")].disconnected is True


def test_fetch_requests_are_answered_with_the_selected_sockets(
    namespace: FakeNamespace, link: RecordingLink
) -> None:
    request(link, uid="x", requestId="f", type=5, opts={"rooms": [], "except": ["r"]})
    ((channel, body),) = answers(link)
    assert channel == b"k-response#/#"
    assert [(s["id"], s["rooms"], s["data"]) for s in body["sockets"]] == [
        ("s2", ["s2"], {"name": "s2"})
    ]
    assert set(body["sockets"][0]["handshake"]) == set(wire.HANDSHAKE_FIELDS)
    request(link, requestId="ours", uid="me", type=5, opts={})
    assert len(link.published) == 1  # our own request: not answered by us


def test_answers_can_go_to_the_requester_s_own_channel(link: RecordingLink) -> None:
    namespace = FakeNamespace(link)
    namespace.adapter._specific = True
    request(link, uid="them", requestId="b", type=1)
    assert link.published[0][0] == b"k-response#/#them#"


def test_server_side_events_are_handled_and_replied_to(
    namespace: FakeNamespace, link: RecordingLink
) -> None:
    seen: list[Any] = []
    namespace.adapter.on_server_side("hello", lambda *args: seen.append(args) or "reply")
    request(link, uid="x", type=6, data=["hello", 1])
    request(link, uid="x", requestId="r", type=6, data=["hello", 2])
    request(link, uid="x", requestId="r2", type=6, data=["nobody"])
    gevent.sleep(0.01)
    assert seen == [(1,), (2,)]
    assert [body for _, body in answers(link)] == [{"type": 6, "requestId": "r", "data": "reply"}]


def test_server_side_emit_gathers_replies(namespace: FakeNamespace, link: RecordingLink) -> None:
    link.servers = 3
    replies: list[list[Any]] = []
    assert namespace.adapter.server_side_emit("q", [1], replies.append, timeout=1) == 2
    request_id = orjson.loads(link.published[0][1])["requestId"]
    for value in ("b", "c"):
        link.listener.on_channel_message(
            b"k-response#/#", orjson.dumps({"type": 6, "requestId": request_id, "data": value})
        )
    gevent.sleep(0.01)
    assert replies == [["b", "c"]]


def test_one_factory_serves_one_server(link: RecordingLink) -> None:
    factory = RedisAdapterFactory("redis://127.0.0.1:1/0")
    try:
        namespace = FakeNamespace(link)
        first = factory(namespace)  # type: ignore[arg-type]
        with pytest.raises(LocalProtocolError, match="one factory per server"):
            factory(namespace)  # type: ignore[arg-type]
        first.close()
        factory(namespace).close()  # type: ignore[arg-type]
    finally:
        factory.close()
