"""The msgpack packet codec (socket.io-msgpack-parser's wire format), without I/O."""

from __future__ import annotations

import msgpack
import pytest

from geventsio.exceptions import LocalProtocolError, RemoteProtocolError
from geventsio.protocol import msgpack_packets as codec
from geventsio.protocol.socketio import DecoderLimits, Packet, PacketType


def _unpack(parts: list[str | bytes]) -> object:
    assert len(parts) == 1
    assert isinstance(parts[0], bytes)
    return msgpack.unpackb(parts[0], raw=False)


def test_event_is_one_map_with_binary_inside() -> None:
    parts = codec.encode(Packet(PacketType.EVENT, "/chat", ["up", b"\x00\xff", {"k": 1}], 7))
    assert _unpack(parts) == {
        "type": 2,
        "data": ["up", b"\x00\xff", {"k": 1}],
        "nsp": "/chat",
        "id": 7,
    }


def test_absent_data_and_id_are_left_out() -> None:
    # The npm decoder checks ``data === undefined`` on DISCONNECT: a nil would be refused.
    assert _unpack(codec.encode(Packet(PacketType.DISCONNECT, "/"))) == {"type": 1, "nsp": "/"}


def test_binary_types_are_sent_as_plain_ones() -> None:
    packet = Packet(PacketType.BINARY_ACK, "/", [b"x"], 3)
    assert _unpack(codec.encode(packet)) == {"type": 3, "data": [b"x"], "nsp": "/", "id": 3}


def test_encode_ack_matches_encode() -> None:
    assert codec.encode_ack("/a", 5, [1, b"b"]) == codec.encode(
        Packet(PacketType.ACK, "/a", [1, b"b"], 5)
    )


@pytest.mark.parametrize(
    "packet",
    [
        Packet(PacketType.EVENT, "/", [], None),  # no event name
        Packet(PacketType.EVENT, "/", ["connect"], None),  # reserved
        Packet(PacketType.EVENT, "/", ["e", object()], None),  # not writable
        Packet(PacketType.EVENT, "/", ["e", 2**70], None),  # beyond 64 bits
        Packet(PacketType.EVENT, "no-slash", ["e"], None),
        Packet(PacketType.ACK, "/", [1], None),  # ACK without id
    ],
)
def test_encode_refuses(packet: Packet) -> None:
    with pytest.raises(LocalProtocolError):
        codec.encode(packet)


def test_round_trip_keeps_binary_and_ignores_client_options() -> None:
    wire = msgpack.packb(
        {
            "type": 2,
            "data": ["ev", b"\x01", [None, 1.5]],
            "options": {"compress": True},
            "nsp": "/",
        },
        use_bin_type=True,
    )
    assert codec.Decoder().feed(wire) == Packet(PacketType.EVENT, "/", ["ev", b"\x01", [None, 1.5]])
    assert codec.Decoder().feed(bytearray(wire)) == Packet(
        PacketType.EVENT, "/", ["ev", b"\x01", [None, 1.5]]
    )


def test_notepack_undefined_is_absent() -> None:
    undefined = msgpack.ExtType(0, b"\x00")
    wire = _pack({"type": 0, "data": undefined, "nsp": "/"})  # socket.io-client, no auth
    assert codec.Decoder().feed(wire) == Packet(PacketType.CONNECT, "/")
    wire = _pack({"type": 2, "data": ["e", undefined], "nsp": "/", "id": undefined})
    assert codec.Decoder().feed(wire) == Packet(PacketType.EVENT, "/", ["e", None])


def test_connect_with_auth() -> None:
    wire = msgpack.packb({"type": 0, "data": {"token": "t"}, "nsp": "/admin"})
    assert codec.Decoder().feed(wire) == Packet(PacketType.CONNECT, "/admin", {"token": "t"})


def _pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (b"\xc1", "invalid msgpack"),  # never used byte
        (b"\x92\x01", "invalid msgpack"),  # truncated array
        (_pack({"type": 2, "data": ["e"], "nsp": "/"}) + b"\x00", "invalid msgpack"),  # extra
        (_pack([2, ["e"], "/"]), "not a map"),
        (_pack({"type": 5, "data": ["e"], "nsp": "/"}), "invalid packet type"),
        (_pack({"type": True, "data": ["e"], "nsp": "/"}), "invalid packet type"),
        (_pack({"type": 2, "data": ["e"]}), "invalid namespace"),
        (_pack({"type": 2, "data": ["e"], "nsp": "/a,b"}), "invalid namespace"),
        (_pack({"type": 2, "data": ["e"], "nsp": "/\x00"}), "control character"),
        (_pack({"type": 2, "data": ["e"], "nsp": "/", "id": -1}), "invalid ack id"),
        (_pack({"type": 2, "data": ["e"], "nsp": "/", "id": 2**53}), "invalid ack id"),
        (_pack({"type": 2, "data": ["e"], "nsp": "/", "id": 1.5}), "invalid ack id"),
        (_pack({"type": 2, "data": "e", "nsp": "/"}), "EVENT payload"),
        (_pack({"type": 1, "data": None, "nsp": "/x"}), None),  # nil is absent here: accepted
        (_pack({"type": 3, "data": [1], "nsp": "/"}), "without an ack id"),
        (_pack({"type": 2, "data": ["e", {1: 2}], "nsp": "/"}), "not a string"),
        (
            _pack({"type": 2, "data": ["e", msgpack.ExtType(1, b"x")], "nsp": "/"}),
            "extension type",
        ),
    ],
)
def test_decode_refuses_malformed(wire: bytes, error: str | None) -> None:
    if error is None:
        codec.Decoder().feed(wire)
        return
    with pytest.raises(RemoteProtocolError, match=error):
        codec.Decoder().feed(wire)


def test_decode_refuses_text_and_deep_nesting() -> None:
    with pytest.raises(RemoteProtocolError, match="text message"):
        codec.Decoder().feed('2["e"]')
    deep: list[object] = ["e"]
    inner = deep
    for _ in range(40):
        child: list[object] = []
        inner.append(child)
        inner = child
    with pytest.raises(RemoteProtocolError, match="deeper than 32"):
        codec.Decoder().feed(_pack({"type": 2, "data": deep, "nsp": "/"}))
    codec.Decoder(DecoderLimits(max_depth=64)).feed(_pack({"type": 2, "data": deep, "nsp": "/"}))


def test_decoder_keeps_working_after_an_error() -> None:
    decoder = codec.Decoder()
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"\xc1")
    assert decoder.feed(_pack({"type": 2, "data": ["e"], "nsp": "/"})) == Packet(
        PacketType.EVENT, "/", ["e"]
    )
