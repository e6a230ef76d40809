"""The Socket.IO v5 packet codec: the spec's examples both ways, then the edges."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventsio.exceptions import LocalProtocolError, RemoteProtocolError
from geventsio.protocol.socketio import (
    MAX_ACK_ID,
    RESERVED_EVENTS,
    Decoder,
    DecoderLimits,
    Packet,
    PacketType,
    encode,
)

CONNECT = PacketType.CONNECT
DISCONNECT = PacketType.DISCONNECT
EVENT = PacketType.EVENT
ACK = PacketType.ACK
CONNECT_ERROR = PacketType.CONNECT_ERROR
BINARY_EVENT = PacketType.BINARY_EVENT
BINARY_ACK = PacketType.BINARY_ACK


def placeholder(num: int) -> str:
    return f'{{"_placeholder":true,"num":{num}}}'


def decode_all(messages: list[str | bytes], decoder: Decoder | None = None) -> Packet:
    """Feed every message; only the last one may complete a packet."""
    decoder = decoder or Decoder()
    *head, last = messages
    for message in head:
        assert decoder.feed(message) is None
    packet = decoder.feed(last)
    assert packet is not None
    return packet


def typed(value: Any) -> Any:
    """``value`` with each leaf paired with its type, for comparisons that 1 == True hides."""
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    return (type(value), value)


def as_received(value: Any) -> Any:
    """What the peer decodes from ``value``: tuples as lists, bytes-likes as bytes."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list | tuple):
        return [as_received(item) for item in value]
    if isinstance(value, dict):
        return {key: as_received(item) for key, item in value.items()}
    return value


# -- the spec's examples, both ways -------------------------------------------------------

# From docs/socket.io-protocol/v5-current.md, "Packet encoding" and "Sample session".
# Binary packets are EVENT and ACK here: BINARY_* is what the wire says, not what we see.
BUFFER = b"\x01\x02\x03\x04"
SPEC_EXAMPLES = [
    pytest.param(["0"], Packet(CONNECT), id="connect"),
    pytest.param(
        ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}'],
        Packet(CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}),
        id="connect-namespace",
    ),
    pytest.param(
        ['4{"message":"Not authorized"}'],
        Packet(CONNECT_ERROR, data={"message": "Not authorized"}),
        id="connect-error",
    ),
    pytest.param(['2["foo"]'], Packet(EVENT, data=["foo"]), id="event"),
    pytest.param(['2/admin,["bar"]'], Packet(EVENT, "/admin", ["bar"]), id="event-namespace"),
    pytest.param(
        [f'51-["baz",{placeholder(0)}]', BUFFER],
        Packet(EVENT, data=["baz", BUFFER]),
        id="binary-event",
    ),
    pytest.param(
        [f'52-/admin,["baz",{placeholder(0)},{placeholder(1)}]', b"\x01\x02", b"\x03\x04"],
        Packet(EVENT, "/admin", ["baz", b"\x01\x02", b"\x03\x04"]),
        id="binary-event-two-attachments",
    ),
    pytest.param(['212["foo"]'], Packet(EVENT, data=["foo"], id=12), id="event-ack-id"),
    pytest.param(["312[]"], Packet(ACK, data=[], id=12), id="ack-empty"),
    pytest.param(['3/admin,13["bar"]'], Packet(ACK, "/admin", ["bar"], 13), id="ack-namespace"),
    pytest.param(
        [f'61-15["bar",{placeholder(0)}]', BUFFER],
        Packet(ACK, data=["bar", BUFFER], id=15),
        id="binary-ack",
    ),
    pytest.param(["1"], Packet(DISCONNECT), id="disconnect"),
    pytest.param(["1/admin,"], Packet(DISCONNECT, "/admin"), id="disconnect-namespace"),
    pytest.param(
        ['0{"sid":"wZX3oN0bSVIhsaknAAAI"}'],
        Packet(CONNECT, data={"sid": "wZX3oN0bSVIhsaknAAAI"}),
        id="session-connect-sid",
    ),
    pytest.param(['2["hey","Jude"]'], Packet(EVENT, data=["hey", "Jude"]), id="session-event"),
    pytest.param(["0/admin,"], Packet(CONNECT, "/admin"), id="session-connect-admin"),
    pytest.param(
        ['0/admin,{"sid":"-G5j-67EZFp-q59rADQM"}'],
        Packet(CONNECT, "/admin", {"sid": "-G5j-67EZFp-q59rADQM"}),
        id="session-connect-admin-sid",
    ),
    pytest.param(['2/admin,1["tellme"]'], Packet(EVENT, "/admin", ["tellme"], 1), id="tellme"),
    pytest.param(
        [f"61-/admin,1[{placeholder(0)}]", b"\xff"],
        Packet(ACK, "/admin", [b"\xff"], 1),
        id="session-binary-ack",
    ),
]

# More packets that read back as they were written.
ROUND_TRIPS = [
    pytest.param(['0/admin,{"token":"123"}'], Packet(CONNECT, "/admin", {"token": "123"})),
    pytest.param(['4"Not authorized"'], Packet(CONNECT_ERROR, data="Not authorized")),
    pytest.param(
        ['4/admin,{"message":"no","data":{"retry":false}}'],
        Packet(CONNECT_ERROR, "/admin", {"message": "no", "data": {"retry": False}}),
    ),
    pytest.param(['2["café","😀",null,1.5,-3]'], Packet(EVENT, data=["café", "😀", None, 1.5, -3])),
    pytest.param(["30[]"], Packet(ACK, data=[], id=0)),
    pytest.param([f'2{MAX_ACK_ID}["x"]'], Packet(EVENT, data=["x"], id=MAX_ACK_ID)),
    pytest.param(['2/a/b-c.d_e~f,["x"]'], Packet(EVENT, "/a/b-c.d_e~f", ["x"])),
    pytest.param(
        ['2["e",{"b":{"z":1,"a":2}}]'], Packet(EVENT, data=["e", {"b": {"z": 1, "a": 2}}])
    ),
    pytest.param(
        [f'51-["upload",{{"name":"a.png","blob":{placeholder(0)}}}]', b"PNG"],
        Packet(EVENT, data=["upload", {"name": "a.png", "blob": b"PNG"}]),
        id="binary-in-dict",
    ),
    pytest.param(
        [
            f'53-/up,7["x",[{placeholder(0)},[{placeholder(1)}]],{{"k":{placeholder(2)}}}]',
            b"0",
            b"1",
            b"2",
        ],
        Packet(EVENT, "/up", ["x", [b"0", [b"1"]], {"k": b"2"}], 7),
        id="binary-nested",
    ),
    pytest.param(
        [f"61-9[{placeholder(0)}]", b""], Packet(ACK, data=[b""], id=9), id="empty-attachment"
    ),
]


@pytest.mark.parametrize(("wire", "packet"), SPEC_EXAMPLES + ROUND_TRIPS)
def test_encode(wire: list[str | bytes], packet: Packet) -> None:
    assert encode(packet) == wire


@pytest.mark.parametrize(("wire", "packet"), SPEC_EXAMPLES + ROUND_TRIPS)
def test_decode(wire: list[str | bytes], packet: Packet) -> None:
    decoded = decode_all(wire)
    assert decoded == packet
    assert typed(decoded.data) == typed(packet.data)


@pytest.mark.parametrize(
    ("packet", "wire"),
    [
        pytest.param(
            Packet(BINARY_EVENT, data=["baz", BUFFER]),
            [f'51-["baz",{placeholder(0)}]', BUFFER],
            id="binary-event-type",
        ),
        pytest.param(Packet(BINARY_EVENT, data=["baz"]), ['2["baz"]'], id="binary-event-no-bytes"),
        pytest.param(Packet(BINARY_ACK, data=[], id=1), ["31[]"], id="binary-ack-no-bytes"),
        pytest.param(Packet(EVENT, data=("x", (1, 2))), ['2["x",[1,2]]'], id="tuples"),
        pytest.param(
            Packet(EVENT, data=["x", bytearray(b"ab"), (memoryview(b"cd"),)]),
            [f'52-["x",{placeholder(0)},[{placeholder(1)}]]', b"ab", b"cd"],
            id="bytearray-memoryview",
        ),
        pytest.param(
            Packet(EVENT, data=["x", {"a": b"0", "b": [b"1", {"c": b"2"}]}, b"3"]),
            [
                f'54-["x",{{"a":{placeholder(0)},"b":[{placeholder(1)},{{"c":{placeholder(2)}}}]}},'
                f"{placeholder(3)}]",
                b"0",
                b"1",
                b"2",
                b"3",
            ],
            id="depth-first-order",
        ),
        pytest.param(
            Packet(EVENT, data=["x", float("nan")]), ['2["x",null]'], id="nan-as-json-stringify"
        ),
    ],
)
def test_encode_normalises(packet: Packet, wire: list[str | bytes]) -> None:
    encoded = encode(packet)
    assert encoded == wire
    assert [type(part) for part in encoded[1:]] == [bytes] * (len(wire) - 1)


def test_encode_leaves_the_data_alone() -> None:
    data = ["x", {"blob": bytearray(b"1")}, (b"2",)]
    encode(Packet(EVENT, data=data))
    assert data == ["x", {"blob": bytearray(b"1")}, (b"2",)]


@pytest.mark.parametrize(
    ("wire", "packet"),
    [
        pytest.param(["0/admin"], Packet(CONNECT, "/admin"), id="namespace-without-comma"),
        pytest.param(['2012["x"]'], Packet(EVENT, data=["x"], id=12), id="ack-id-leading-zero"),
        pytest.param(['2/,["x"]'], Packet(EVENT, data=["x"]), id="explicit-main-namespace"),
        pytest.param(
            [f'2["x",{placeholder(0)}]'],
            Packet(EVENT, data=["x", {"_placeholder": True, "num": 0}]),
            id="placeholder-in-plain-event-is-data",
        ),
        pytest.param(
            [f'52-["x",{placeholder(1)},{placeholder(0)}]', b"a", b"b"],
            Packet(EVENT, data=["x", b"b", b"a"]),
            id="placeholders-out-of-order",
        ),
        pytest.param(['2["' + "[" * 100 + '"]'], Packet(EVENT, data=["[" * 100]), id="brackets"),
    ],
)
def test_decode_accepts(wire: list[str | bytes], packet: Packet) -> None:
    assert decode_all(wire) == packet


@pytest.mark.parametrize("attachment", [bytearray(b"ab"), memoryview(b"ab")])
def test_decode_turns_bytes_likes_into_bytes(attachment: Any) -> None:
    decoded = decode_all([f'51-["x",{placeholder(0)}]', attachment])
    assert typed(decoded.data) == [(str, "x"), (bytes, b"ab")]


def test_decoder_decodes_a_stream() -> None:
    decoder = Decoder()
    messages: list[str | bytes] = [
        "0",
        f'51-["a",{placeholder(0)}]',
        b"1",
        '2["b"]',
        f"62-/n,3[{placeholder(0)},{placeholder(1)}]",
        b"2",
        b"3",
        "1",
    ]
    packets = [decoder.feed(message) for message in messages]
    assert packets == [
        Packet(CONNECT),
        None,
        Packet(EVENT, data=["a", b"1"]),
        Packet(EVENT, data=["b"]),
        None,
        None,
        Packet(ACK, "/n", [b"2", b"3"], 3),
        Packet(DISCONNECT),
    ]


# -- malformed input ----------------------------------------------------------------------


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


MALFORMED = [
    # framing
    pytest.param([""], "empty", id="empty"),
    pytest.param(["7"], "unknown packet type", id="type-7"),
    pytest.param(['x["a"]'], "unknown packet type", id="type-letter"),
    pytest.param(['\u0662["a"]'], "unknown packet type", id="type-arabic-digit"),
    pytest.param([b"\x01"], "no binary packet awaited", id="unexpected-attachment"),
    pytest.param([f'51-["a",{placeholder(0)}]', '2["b"]'], "attachment", id="text-while-awaiting"),
    pytest.param(['2 ["a"]'], "unexpected ' '", id="space-before-payload"),
    pytest.param(['2,["a"]'], "unexpected ','", id="comma-without-namespace"),
    # namespace
    pytest.param(['2admin,["a"]'], "namespace", id="namespace-without-slash"),
    pytest.param(['2/ad\x00min,["a"]'], "control character", id="namespace-nul"),
    pytest.param(['2/ad\nmin,["a"]'], "control character", id="namespace-newline"),
    pytest.param(['2/ad\x85min,["a"]'], "control character", id="namespace-c1"),
    pytest.param(['2/ad\ud800min,["a"]'], "surrogate", id="namespace-surrogate"),
    pytest.param(["2/" + "a" * 256 + ',["a"]'], "longer than 256", id="namespace-too-long"),
    # ack id
    pytest.param(["2" + "1" * 17 + '["a"]'], "ack id", id="ack-id-17-digits"),
    pytest.param([f'2{MAX_ACK_ID + 1}["a"]'], "ack id", id="ack-id-over-max"),
    pytest.param(['2\u0661\u0662["a"]'], "unexpected", id="ack-id-arabic-digits"),
    pytest.param(['21a["a"]'], "unexpected 'a'", id="ack-id-letter"),
    pytest.param(["01{}"], "CONNECT packet must not carry an ack id", id="ack-id-connect"),
    pytest.param(["11"], "DISCONNECT packet must not carry an ack id", id="ack-id-disconnect"),
    pytest.param(
        ['4/a,1{"message":"x"}'], "CONNECT_ERROR packet must not", id="ack-id-connect-error"
    ),
    pytest.param(["3[]"], "ACK packet without an ack id", id="ack-without-ack-id"),
    pytest.param(
        [f"61-[{placeholder(0)}]"], "BINARY_ACK packet without", id="binary-ack-without-ack-id"
    ),
    # JSON
    pytest.param(['2["a"'], "invalid JSON", id="json-truncated"),
    pytest.param(['2["a"]]'], "invalid JSON", id="json-trailing"),
    pytest.param(['2["a",NaN]'], "invalid JSON", id="json-nan"),
    pytest.param(['2["a",1e999]'], "invalid JSON", id="json-infinity"),
    pytest.param(['2["\\ud800"]'], "invalid JSON", id="json-lone-surrogate"),
    pytest.param(['2["a",' + nested(32) + "]"], "deeper than 32", id="json-too-deep"),
    pytest.param(['2["a",' + nested(2000) + "]"], "JSON", id="json-beyond-orjson-depth"),
    pytest.param(
        ['2["a",' + '{"a":' * 32 + "1" + "}" * 32 + "]"], "deeper", id="json-objects-too-deep"
    ),
    # payload shapes
    pytest.param(["2"], "EVENT payload must be a non-empty array", id="event-absent"),
    pytest.param(["2[]"], "EVENT payload", id="event-empty"),
    pytest.param(["2[1]"], "EVENT payload", id="event-name-number"),
    pytest.param(["2[null]"], "EVENT payload", id="event-name-null"),
    pytest.param(['2{"a":1}'], "EVENT payload", id="event-object"),
    pytest.param(['2"a"'], "EVENT payload", id="event-string"),
    pytest.param(["31"], "ACK payload must be an array", id="ack-absent"),
    pytest.param(["31{}"], "ACK payload", id="ack-object"),
    pytest.param(['31"a"'], "ACK payload", id="ack-string"),
    pytest.param(["0[]"], "CONNECT payload must be an object", id="connect-array"),
    pytest.param(['0"a"'], "CONNECT payload", id="connect-string"),
    pytest.param(["4"], "CONNECT_ERROR payload must be an object or a string", id="error-absent"),
    pytest.param(["4[]"], "CONNECT_ERROR payload", id="connect-error-array"),
    pytest.param(["1{}"], "DISCONNECT payload must be absent", id="disconnect-object"),
    pytest.param(['1/a,["x"]'], "DISCONNECT payload", id="disconnect-array"),
    # attachment count
    pytest.param(['5["a"]'], "without an attachment count", id="count-missing"),
    pytest.param(['5-["a"]'], "without an attachment count", id="count-empty"),
    pytest.param(['5a-["a"]'], "without an attachment count", id="count-letter"),
    pytest.param(['6/a,1["a"]'], "without an attachment count", id="count-missing-ack"),
    pytest.param(['50-["a"]'], "no attachments", id="count-zero"),
    pytest.param(['511-["a"]'], "over 10 attachments", id="count-over-limit"),
    pytest.param(["5" + "9" * 30 + '-["a"]'], "over 10 attachments", id="count-huge"),
    pytest.param(['21-["a"]'], "EVENT packet must not announce attachments", id="count-on-event"),
    pytest.param(["01-{}"], "CONNECT packet must not announce", id="count-on-connect"),
    # placeholders
    pytest.param(['52-["a",' + placeholder(0) + "]"], "2 attachments announced, 1", id="too-few"),
    pytest.param(['51-["a"]'], "1 attachments announced, 0", id="none"),
    pytest.param(
        ['52-["a",' + placeholder(0) + "," + placeholder(0) + "]"],
        "more than once",
        id="repeated",
    ),
    pytest.param(
        ['51-["a",' + placeholder(0) + "," + placeholder(1) + "]"],
        "out of range",
        id="too-many",
    ),
    pytest.param(['51-["a",' + placeholder(1) + "]"], "out of range", id="num-too-big"),
    pytest.param(['51-["a",{"_placeholder":true,"num":-1}]'], "out of range", id="num-negative"),
    pytest.param(['51-["a",{"_placeholder":true,"num":"0"}]'], "malformed", id="num-string"),
    pytest.param(['51-["a",{"_placeholder":true,"num":true}]'], "malformed", id="num-bool"),
    pytest.param(['51-["a",{"_placeholder":true,"num":0.0}]'], "malformed", id="num-float"),
    pytest.param(['51-["a",{"_placeholder":true}]'], "malformed", id="num-missing"),
    pytest.param(
        ['51-["a",{"_placeholder":true,"num":0,"x":1}]'], "malformed", id="placeholder-extra-key"
    ),
]


@pytest.mark.parametrize(("messages", "problem"), MALFORMED)
def test_decode_refuses(messages: list[str | bytes], problem: str) -> None:
    decoder = Decoder()
    *head, last = messages
    for message in head:
        assert decoder.feed(message) is None
    with pytest.raises(RemoteProtocolError, match=problem):
        decoder.feed(last)


@pytest.mark.parametrize(("messages", "problem"), MALFORMED)
def test_decoder_recovers_after_an_error(messages: list[str | bytes], problem: str) -> None:
    decoder = Decoder()
    with pytest.raises(RemoteProtocolError):
        for message in messages:
            decoder.feed(message)
    assert decoder.feed('2["ok"]') == Packet(EVENT, data=["ok"])
    assert decoder.feed(f'51-["ok",{placeholder(0)}]') is None
    assert decoder.feed(b"!") == Packet(EVENT, data=["ok", b"!"])


def test_decode_depth_limit_is_inclusive() -> None:
    assert decode_all(['2["a",' + nested(31) + "]"]).data[1] is not None
    with pytest.raises(RemoteProtocolError, match="deeper than 32"):
        decode_all(['2["a",' + nested(32) + "]"])


def test_decode_scalar_payload_with_many_brackets() -> None:
    assert decode_all(['4"' + "{" * 100 + '"']) == Packet(CONNECT_ERROR, data="{" * 100)


@pytest.mark.parametrize(
    ("limits", "accepted", "refused"),
    [
        pytest.param(
            DecoderLimits(max_attachments=2),
            [f'52-["a",{placeholder(0)},{placeholder(1)}]', b"", b""],
            [f'53-["a",{placeholder(0)},{placeholder(1)},{placeholder(2)}]'],
            id="max_attachments",
        ),
        pytest.param(DecoderLimits(max_attachments=0), ['2["a"]'], ['51-["a"]'], id="no-binary"),
        pytest.param(DecoderLimits(max_depth=2), ['2["a",[]]'], ['2["a",[[]]]'], id="max_depth"),
        pytest.param(DecoderLimits(max_ack_id=99), ['299["a"]'], ['2100["a"]'], id="max_ack_id"),
        pytest.param(
            DecoderLimits(max_namespace_length=4),
            ['2/abc,["a"]'],
            ['2/abcd,["a"]'],
            id="max_namespace_length",
        ),
    ],
)
def test_decoder_limits(
    limits: DecoderLimits, accepted: list[str | bytes], refused: list[str | bytes]
) -> None:
    decode_all(accepted, Decoder(limits))
    with pytest.raises(RemoteProtocolError):
        decode_all(refused, Decoder(limits))


@pytest.mark.parametrize(
    "field", ["max_attachments", "max_depth", "max_ack_id", "max_namespace_length"]
)
def test_decoder_limits_refuse_negative_values(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DecoderLimits(**{field: -1})


def test_decoder_refuses_what_is_neither_text_nor_binary() -> None:
    with pytest.raises(TypeError, match="int"):
        Decoder().feed(3)  # type: ignore[arg-type]


# -- refused packets on the way out -------------------------------------------------------


def cyclic() -> list[Any]:
    data: list[Any] = ["x"]
    data.append(data)
    return data


def deep_with_bytes(levels: int) -> list[Any]:
    data: Any = b"x"
    for _ in range(levels):
        data = [data]
    return ["x", data]


ENCODE_ERRORS = [
    pytest.param(Packet(EVENT, data=["x", {1, 2}]), "not JSON-serialisable", id="set"),
    pytest.param(Packet(EVENT, data=["x", object()]), "not JSON-serialisable", id="object"),
    pytest.param(Packet(EVENT, data=["x", {1: "a"}]), "Dict key must be str", id="int-key"),
    pytest.param(Packet(EVENT, data=["x", 2**64]), "64-bit", id="huge-int"),
    pytest.param(Packet(EVENT, data=["x", b"b", {1, 2}]), "not JSON", id="bytes-and-set"),
    pytest.param(Packet(EVENT, data=cyclic()), "deeper than 255", id="cycle"),
    pytest.param(Packet(EVENT, data=deep_with_bytes(300)), "deeper than 255", id="deep-bytes"),
    pytest.param(Packet(CONNECT, data={"blob": b"x"}), "bytes", id="bytes-in-connect"),
    pytest.param(Packet(CONNECT_ERROR, data={"blob": b"x"}), "bytes", id="bytes-in-error"),
    pytest.param(
        Packet(EVENT, data=["x", {"_placeholder": True, "num": 0}, b"y"]),
        "placeholder",
        id="placeholder-lookalike",
    ),
    pytest.param(Packet(EVENT, "admin", ["x"]), "invalid namespace", id="namespace-no-slash"),
    pytest.param(Packet(EVENT, "", ["x"]), "invalid namespace", id="namespace-empty"),
    pytest.param(Packet(EVENT, "/a,b", ["x"]), "invalid namespace", id="namespace-comma"),
    pytest.param(Packet(EVENT, "/a\nb", ["x"]), "invalid namespace", id="namespace-newline"),
    pytest.param(Packet(EVENT, data=["x"], id=-1), "invalid ack id", id="ack-id-negative"),
    pytest.param(Packet(EVENT, data=["x"], id=MAX_ACK_ID + 1), "invalid ack id", id="ack-big"),
    pytest.param(Packet(EVENT, data=["x"], id=True), "invalid ack id", id="ack-id-bool"),
    pytest.param(Packet(CONNECT, id=1), "must not carry an ack id", id="ack-id-connect"),
    pytest.param(Packet(DISCONNECT, id=1), "must not carry an ack id", id="ack-id-disconnect"),
    pytest.param(
        Packet(CONNECT_ERROR, data="no", id=1), "must not carry an ack id", id="ack-id-error"
    ),
    pytest.param(Packet(ACK, data=[]), "without an ack id", id="ack-without-id"),
    pytest.param(Packet(EVENT), "EVENT payload", id="event-absent"),
    pytest.param(Packet(EVENT, data=[]), "EVENT payload", id="event-empty"),
    pytest.param(Packet(EVENT, data=[1]), "EVENT payload", id="event-name-number"),
    pytest.param(Packet(EVENT, data="x"), "EVENT payload", id="event-string"),
    pytest.param(Packet(BINARY_EVENT, data=[b"x"]), "BINARY_EVENT payload", id="binary-no-name"),
    pytest.param(Packet(ACK, data={}, id=1), "ACK payload", id="ack-object"),
    pytest.param(Packet(CONNECT, data=[]), "CONNECT payload", id="connect-array"),
    pytest.param(Packet(CONNECT_ERROR), "CONNECT_ERROR payload", id="connect-error-absent"),
    pytest.param(Packet(DISCONNECT, data={}), "DISCONNECT payload", id="disconnect-object"),
]


@pytest.mark.parametrize(("packet", "problem"), ENCODE_ERRORS)
def test_encode_refuses(packet: Packet, problem: str) -> None:
    with pytest.raises(LocalProtocolError, match=problem):
        encode(packet)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        pytest.param({"type": 2, "data": ["x"]}, "PacketType", id="int-type"),
        pytest.param(
            {"type": EVENT, "data": ["x"], "id": "1"}, "invalid ack id|int", id="ack-id-str"
        ),
    ],
)
def test_ill_typed_packet_refused(fields: dict[str, Any], problem: str) -> None:
    """A packet whose fields have the wrong types never reaches the wire: the compiled
    build refuses it when it is made (TypeError), the pure-Python one when it is encoded."""
    with pytest.raises((TypeError, LocalProtocolError), match=problem):
        encode(Packet(**fields))


# -- properties ---------------------------------------------------------------------------

KEYS = st.text(max_size=8).filter(lambda key: key != "_placeholder")
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
BYTES_LIKE: st.SearchStrategy[Any] = (
    st.binary(max_size=12)
    | st.binary(max_size=12).map(bytearray)
    | st.binary(max_size=12).map(lambda data: memoryview(data))
)


def json_like(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4)
            | st.lists(children, max_size=4).map(tuple)
            | st.dictionaries(KEYS, children, max_size=4)
        ),
        max_leaves=12,
    )


PLAIN = json_like(SCALARS)
WITH_BINARY = json_like(SCALARS | BYTES_LIKE)
#: Event names a packet may carry (the reserved ones are refused both ways).
EVENT_NAMES = st.text(max_size=12).filter(lambda name: name not in RESERVED_EVENTS)

NAMESPACES = st.just("/") | st.text(
    st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=","), max_size=20
).map(lambda name: "/" + name)
ACK_IDS = st.integers(min_value=0, max_value=MAX_ACK_ID)


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    packet_type = draw(st.sampled_from(PacketType))
    namespace = draw(NAMESPACES)
    if packet_type in (EVENT, BINARY_EVENT):
        args = [draw(EVENT_NAMES), *draw(st.lists(WITH_BINARY, max_size=4))]
        ack_id = draw(st.none() | ACK_IDS)
        return Packet(packet_type, namespace, draw(st.sampled_from([list, tuple]))(args), ack_id)
    if packet_type in (ACK, BINARY_ACK):
        return Packet(
            packet_type, namespace, draw(st.lists(WITH_BINARY, max_size=4)), draw(ACK_IDS)
        )
    if packet_type is CONNECT:
        return Packet(packet_type, namespace, draw(st.none() | st.dictionaries(KEYS, PLAIN)))
    if packet_type is CONNECT_ERROR:
        return Packet(packet_type, namespace, draw(st.text() | st.dictionaries(KEYS, PLAIN)))
    return Packet(packet_type, namespace)


ROUND_TRIP_LIMITS = DecoderLimits(max_attachments=1000)
PLAIN_TYPE = {BINARY_EVENT: EVENT, BINARY_ACK: ACK}


@settings(max_examples=300, deadline=None)
@given(packets())
def test_round_trip(packet: Packet) -> None:
    decoded = decode_all(encode(packet), Decoder(ROUND_TRIP_LIMITS))
    expected_type = PLAIN_TYPE.get(packet.type, packet.type)
    assert decoded == Packet(expected_type, packet.namespace, as_received(packet.data), packet.id)
    assert typed(decoded.data) == typed(as_received(packet.data))


@settings(max_examples=50, deadline=None)
@given(packets())
def test_broadcast_reuses_the_encoding(packet: Packet) -> None:
    encoded = encode(packet)
    first, second = Decoder(ROUND_TRIP_LIMITS), Decoder(ROUND_TRIP_LIMITS)
    assert decode_all(encoded, first) == decode_all(encoded, second)


GRAMMAR_ALPHABET = '0123456789-/,[]{}":_placeholdertrunm \x00'
PAYLOADS = st.sampled_from(
    [
        "",
        "[]",
        "{}",
        '"x"',
        '["e"]',
        '{"sid":"x"}',
        "[1]",
        "null",
        "[",
        f'["e",{placeholder(0)}]',
        f'["e",{placeholder(0)},{placeholder(1)}]',
        f"[{placeholder(1)}]",
        '[{"_placeholder":true,"num":"0"}]',
    ]
) | st.text(GRAMMAR_ALPHABET, max_size=20)
PACKET_TEXTS = st.tuples(
    st.sampled_from("0123456789x"),
    st.sampled_from(["", "1-", "2-", "0-", "-", "11-"]),
    st.sampled_from(["", "/", "/a,", "/a", "/,", ",", "/\x00,"]),
    st.sampled_from(["", "0", "1", "12", str(MAX_ACK_ID + 1)]),
    PAYLOADS,
).map("".join)
MESSAGES = st.lists(
    PACKET_TEXTS
    | st.text(GRAMMAR_ALPHABET, max_size=40)
    | st.text(max_size=10)
    | st.binary(max_size=4),
    min_size=1,
    max_size=6,
)


def feed_fuzz(decoder: Decoder, messages: list[str | bytes]) -> None:
    """Feed everything: only RemoteProtocolError may come out, and what is accepted is sound."""
    for message in messages:
        try:
            packet = decoder.feed(message)
        except RemoteProtocolError:
            continue
        if packet is not None:
            assert packet.type in (CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR)
            assert encode(packet)  # whatever we accept, we could send back


@settings(max_examples=1000, deadline=None)
@given(MESSAGES)
def test_decoder_fails_only_with_remote_protocol_error(messages: list[str | bytes]) -> None:
    feed_fuzz(Decoder(), messages)


@settings(max_examples=500, deadline=None)
@given(packets(), st.integers(min_value=0), st.text(GRAMMAR_ALPHABET, max_size=2), st.booleans())
def test_decoder_survives_mutated_packets(
    packet: Packet, position: int, insert: str, delete: bool
) -> None:
    text, *attachments = encode(packet)
    assert isinstance(text, str)
    position %= len(text) + 1
    mutated = text[:position] + insert + text[position + delete :]
    feed_fuzz(Decoder(ROUND_TRIP_LIMITS), [mutated, *attachments, '2["next"]'])


@pytest.mark.parametrize("name", sorted(RESERVED_EVENTS))
def test_reserved_event_names_are_refused_both_ways(name: str) -> None:
    # socket.io-parser refuses them too: they are the sockets' own lifecycle events.
    with pytest.raises(RemoteProtocolError, match="reserved"):
        Decoder().feed(f'2["{name}",1]')
    with pytest.raises(LocalProtocolError, match="reserved"):
        encode(Packet(EVENT, "/", [name, 1]))
    assert Decoder().feed(f'2["{name}-ish",1]') == Packet(EVENT, "/", [f"{name}-ish", 1])
