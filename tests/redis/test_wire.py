"""The Redis wire format, without I/O: bytes the Node adapter and emitter wrote (captured
with notepack.io 3.0.1), channel names, and what is refused."""

from __future__ import annotations

import datetime
import logging
import random

import msgpack
import orjson
import pytest

from geventsio import LocalProtocolError, Room
from geventsio.adapters import redis_wire as wire
from geventsio.adapters.base import BroadcastFlags, BroadcastOptions
from geventsio.adapters.redis_link import DropLog, reconnect_delay
from geventsio.backoff import Backoff
from geventsio.protocol.socketio import Packet, PacketType

# @socket.io/redis-adapter: io.to("r1").except("x").volatile.emit("hello", 1, 2.5, null,
# true, Buffer.from([1, 2, 3]), {a: [1]}) from the server whose uid is "abc123".
NODE_ADAPTER_BROADCAST = bytes.fromhex(
    "93a661626331323383a47479706502a46461746197a568656c6c6f01cb4004000000000000c0c3c403"
    "01020381a1619101a36e7370a12f83a5726f6f6d7391a27231a665786365707491a178a5666c616773"
    "81a8766f6c6174696c65c3"
)
# @socket.io/redis-emitter: emitter.of("/admin").emit("ev", new Date(0)).
NODE_EMITTER_BROADCAST = bytes.fromhex(
    "93a7656d697474657283a47479706502a46461746192a26576d6ff00000000a36e7370a62f61646d696e"
    "83a5726f6f6d7390a5666c61677380a665786365707490"
)
# @socket.io/redis-adapter: io.timeout(1000).emit("q", callback): the BROADCAST request.
NODE_BROADCAST_REQUEST = bytes.fromhex(
    "85a3756964a6616263313233a9726571756573744964a472657131a47479706507a67061636b657483a4"
    "7479706502a46461746191a171a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a566"
    "6c61677381a774696d656f7574cd03e8"
)


def test_a_node_adapter_broadcast_is_read() -> None:
    message = wire.decode_broadcast(NODE_ADAPTER_BROADCAST)
    assert message == wire.Broadcast(
        uid="abc123",
        packet=Packet(
            PacketType.EVENT, "/", ["hello", 1, 2.5, None, True, b"\x01\x02\x03", {"a": [1]}]
        ),
        options=BroadcastOptions(
            rooms=frozenset({Room("r1")}),
            except_rooms=frozenset({Room("x")}),
            flags=BroadcastFlags(volatile=True),
        ),
    )
    assert wire.decode_uid(NODE_ADAPTER_BROADCAST) == "abc123"


def test_a_node_emitter_broadcast_is_read() -> None:
    message = wire.decode_broadcast(NODE_EMITTER_BROADCAST)
    assert message.uid == wire.EMITTER_UID
    assert message.packet == Packet(
        PacketType.EVENT, "/admin", ["ev", datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)]
    )
    assert message.options == BroadcastOptions()


def test_a_node_broadcast_request_is_read() -> None:
    request = wire.decode_request(NODE_BROADCAST_REQUEST)
    assert (request.kind, request.uid, request.request_id) == (
        wire.RequestType.BROADCAST,
        "abc123",
        "req1",
    )
    assert wire.packet_from_wire(request.body["packet"]) == Packet(PacketType.EVENT, "/", ["q"])
    assert request.selection() == BroadcastOptions()


def test_our_broadcast_is_what_node_writes() -> None:
    packet = Packet(PacketType.EVENT, "/chat", ["e", b"\x00", (1, 2)], id=7)
    options = BroadcastOptions(
        rooms=frozenset({Room("b"), Room("a")}),
        except_rooms=frozenset({Room("x")}),
        flags=BroadcastFlags(volatile=True, compress=False, timeout=1.5),
    )
    assert msgpack.unpackb(wire.encode_broadcast("me", packet, options)) == [
        "me",
        {"type": 2, "data": ["e", b"\x00", [1, 2]], "nsp": "/chat"},  # no ack id
        {
            "rooms": ["a", "b"],
            "except": ["x"],
            "flags": {"volatile": True, "compress": False, "timeout": 1500},
        },
    ]
    assert wire.decode_broadcast(wire.encode_broadcast("me", packet, options)) == wire.Broadcast(
        "me",
        Packet(PacketType.EVENT, "/chat", ["e", b"\x00", [1, 2]]),
        BroadcastOptions(options.rooms, options.except_rooms, BroadcastFlags(True, False)),
    )


def test_requests_are_json_as_node_writes_them_unless_they_carry_binary() -> None:
    plain = wire.encode_request(wire.RequestType.SERVER_SIDE_EMIT, "me", "r1", data=["e", 1])
    assert orjson.loads(plain) == {"uid": "me", "requestId": "r1", "type": 6, "data": ["e", 1]}
    binary = wire.encode_request(wire.RequestType.SERVER_SIDE_EMIT, "me", data=["e", b"\x01"])
    assert msgpack.unpackb(binary) == {"uid": "me", "type": 6, "data": ["e", b"\x01"]}
    broadcast = wire.encode_request(wire.RequestType.BROADCAST, "me", "r2", packet={})
    assert broadcast[:1] != b"{"  # MessagePack, as Node writes BROADCAST requests
    ack = wire.encode_response("r2", wire.RequestType.BROADCAST_ACK, packet="yes")
    assert msgpack.unpackb(ack) == {"type": 9, "requestId": "r2", "packet": "yes"}
    count = wire.encode_response("r2", wire.RequestType.BROADCAST_CLIENT_COUNT, clientCount=3)
    assert orjson.loads(count) == {"type": 8, "requestId": "r2", "clientCount": 3}
    for data in (plain, binary, broadcast):
        assert wire.decode_request(data).uid == "me"
    assert wire.decode_response(count) == ("r2", {"type": 8, "requestId": "r2", "clientCount": 3})


def test_channel_names_are_node_s() -> None:
    channels = wire.Channels.of("socket.io", "/", "u1")
    assert channels == wire.Channels(
        broadcast=b"socket.io#/#",
        pattern=b"socket.io#/#*",
        request=b"socket.io-request#/#",
        response=b"socket.io-response#/#",
        own_response=b"socket.io-response#/#u1#",
    )
    assert channels.for_rooms(frozenset({Room("r")})) == b"socket.io#/#r#"
    assert channels.for_rooms(frozenset({Room("r"), Room("s")})) == b"socket.io#/#"
    assert channels.room_of(b"socket.io#/#r#") == "r"
    assert channels.room_of(b"socket.io#/#") == ""
    assert channels.response_for("them", specific=True) == b"socket.io-response#/#them#"
    assert channels.response_for("them", specific=False) == b"socket.io-response#/#"
    assert wire.Channels.of("k[1]", "/a*?", "u").pattern == rb"k\[1\]#/a\*\?#*"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\xc1", "not MessagePack"),
        (msgpack.packb([1, 2]), "broadcast is not [uid, packet, opts]"),
        (msgpack.packb([1, {}, {}]), "broadcast uid is not a string"),
        (msgpack.packb(["u", {"type": 3, "data": ["e"]}, {}]), "packet is not an event"),
        (msgpack.packb(["u", {"type": 2, "data": [1]}, {}]), "event data is not [name, ...args]"),
        (
            msgpack.packb(["u", {"type": 2, "data": ["e"], "nsp": 5}, {}]),
            "packet namespace is not a string",
        ),
        (
            msgpack.packb(["u", {"type": 2, "data": ["e"]}, {"except": [True]}]),
            "except holds something other than a room name",
        ),
        (msgpack.packb(["u", {"type": 2, "data": ["e"]}, {"flags": []}]), "flags is not a map"),
        (
            msgpack.packb(["u", {"type": 2, "data": [msgpack.ExtType(7, b"")]}, {}]),
            "unsupported MessagePack extension",
        ),
        (msgpack.packb({1: 2}), "not MessagePack"),  # maps with keys other than strings
    ],
)
def test_malformed_broadcasts_are_refused(data: bytes, kind: str) -> None:
    with pytest.raises(wire.MalformedMessage) as caught:
        wire.decode_broadcast(data)
    assert caught.value.kind == kind


def test_numeric_rooms_and_the_legacy_undefined_are_read_as_node_means_them() -> None:
    assert wire.rooms_from_wire([42, 1.5, "a"]) == {"42", "1.5", "a"}
    undefined = msgpack.ExtType(0, b"\x00")
    assert wire.unpack(msgpack.packb({"a": undefined})) == {"a": None}


def test_malformed_requests_are_refused() -> None:
    for data, kind in [
        (b"{oops", "invalid JSON"),
        (msgpack.packb([1]), "request or answer is not a map"),
        (orjson.dumps({"type": 42}), "unknown request type"),
        (orjson.dumps({"type": 2, "uid": 5}), "'uid' is not a string"),
    ]:
        with pytest.raises(wire.MalformedMessage) as caught:
            wire.decode_request(data)
        assert caught.value.kind == kind
    with pytest.raises(wire.MalformedMessage):
        wire.decode_response(orjson.dumps({"type": 8}))


def test_data_msgpack_cannot_carry_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(LocalProtocolError):
        wire.pack([object()])
    with pytest.raises(LocalProtocolError):
        wire.pack([2**70])
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert msgpack.unpackb(wire.pack([when])) == ["2024-01-02T03:04:05"]  # as our JSON writes it


def test_the_drop_log_reports_each_kind_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    drops = DropLog(interval=60)
    with caplog.at_level(logging.WARNING, "geventsio.adapters.redis"):
        for _ in range(3):
            drops.report("bad thing", b"chan#", "detail")
        drops.report("other thing", b"chan#")
    assert [r.getMessage() for r in caplog.records] == [
        "dropped a message from Redis channel chan#: bad thing (detail)",
        "dropped a message from Redis channel chan#: other thing",
    ]


def test_reconnection_delays_double_up_to_the_maximum_with_jitter() -> None:
    backoff, rng = Backoff(0.1, 1.0, jitter=0), random.Random(4)
    delays = [reconnect_delay(backoff, rng) for _ in range(6)]
    nominal = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal, strict=True))
    backoff.reset()
    assert reconnect_delay(backoff, rng) <= 0.1
