"""The hot-path shortcuts of the protocol layer give exactly what the general code gives.

The decoder takes the commonest packets (an EVENT or a BINARY_EVENT to the main
namespace, with or without an ack id) in one step, and the server's JSON acknowledgement
is built as wire bytes in one step. Each is checked here against the general path it
shortcuts, on valid and invalid input alike, so a shortcut that accepted, refused or
wrote anything differently would fail.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventsio.exceptions import RemoteProtocolError
from geventsio.protocol import socketio
from geventsio.protocol import websocket as ws
from geventsio.protocol.engineio import Packet as EnginePacket
from geventsio.protocol.engineio import PacketType as EnginePacketType
from geventsio.protocol.outgoing import OutgoingPacket, encode_ack_for_engine
from geventsio.protocol.serializers import JSON
from geventsio.protocol.socketio import MAX_ACK_ID, RESERVED_EVENTS, Decoder, DecoderLimits
from tests.build import replaces_a_method_of

# Replaces the Decoder's general path to see which path ran.
REPLACES_A_METHOD = replaces_a_method_of(socketio)

TIGHT = DecoderLimits(max_depth=3, max_ack_id=999)
#: Two levels: an event's arguments may be arrays and objects of scalars, no deeper.
TWO_LEVELS = DecoderLimits(max_depth=2, max_ack_id=999)
ONE_LEVEL = DecoderLimits(max_depth=1, max_ack_id=999)


def general_decode(text: str, limits: DecoderLimits) -> socketio.Packet | str:
    """What the general path makes of ``text``: the packet, or the error's message."""
    try:
        return Decoder(limits)._feed_text(text)  # type: ignore[return-value]
    except RemoteProtocolError as exc:
        return str(exc)


def decode(text: str, limits: DecoderLimits) -> socketio.Packet | str:
    try:
        return Decoder(limits).feed(text)  # type: ignore[return-value]
    except RemoteProtocolError as exc:
        return str(exc)


ACK_IDS = st.sampled_from(["", "0", "7", "999", "1000", "0012", str(MAX_ACK_ID), "9" * 17])
EVENT_PAYLOADS = st.sampled_from(
    [
        '["e"]',
        '["e",1,{"a":[1,2]}]',
        '["e",[[[[1]]]]]',
        '["e",[[1]]]',
        '["e",{"a":{"b":{"c":1}}}]',
        '["e",{"a":[1]}]',
        '["e",{"a":1},[2,"x"],3]',
        '["e",[{}]]',
        '["e",{},[]]',
        '["e","[[[{{{"]',
        "[]",
        "[1]",
        '["connect"]',
        '["disconnecting",1]',
        '["é\\u00e9",null]',
        '["e"',
        '["e"]x',
        '["e",NaN]',
        '["\\ud800"]',
        '{"e":1}',
        '"e"',
    ]
    + [f'["{name}"]' for name in sorted(RESERVED_EVENTS)]
)
TEXTS = st.tuples(st.sampled_from(["2", "2/", "2/a,", "3", "21-"]), ACK_IDS, EVENT_PAYLOADS).map(
    "".join
) | st.text('0123456789[]{}",e/-', max_size=12)


@settings(max_examples=1500, deadline=None)
@given(TEXTS, st.sampled_from([socketio._DEFAULT_LIMITS, TIGHT, TWO_LEVELS, ONE_LEVEL]))
def test_the_plain_event_shortcut_decodes_as_the_general_path(
    text: str, limits: DecoderLimits
) -> None:
    assert decode(text, limits) == general_decode(text, limits)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('2["e",1]', socketio.Packet(socketio.PacketType.EVENT, "/", ["e", 1], None)),
        ('212["e"]', socketio.Packet(socketio.PacketType.EVENT, "/", ["e"], 12)),
    ],
)
@REPLACES_A_METHOD
def test_the_plain_event_shortcut_is_taken(text: str, expected: socketio.Packet) -> None:
    decoder = Decoder()
    decoder._feed_text = general_path_taken  # type: ignore[method-assign]
    assert decoder.feed(text) == expected


def general_path_taken(text: str) -> None:
    raise AssertionError(f"{text!r} took the general path")


@pytest.mark.parametrize(
    "text",
    ['2/a,["e"]', '21000["e"]', '2[["e"]]', '2["connect"]', '2["e",[[[[1]]]]]', '2["e"'],
)
@REPLACES_A_METHOD
def test_the_plain_event_shortcut_leaves_the_rest_to_the_general_path(text: str) -> None:
    decoder = Decoder(TIGHT)
    decoder._feed_text = general_path_taken  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="took the general path"):
        decoder.feed(text)


def test_a_binary_packet_awaiting_attachments_is_not_overtaken() -> None:
    decoder = Decoder()
    assert decoder.feed('51-["e",{"_placeholder":true,"num":0}]') is None
    with pytest.raises(RemoteProtocolError, match="attachment"):
        decoder.feed('2["e"]')


def feed_binary(text: str, limits: DecoderLimits, general: bool) -> list[object]:
    """What a decoder makes of ``text`` and then three attachments (by the shortcut, or by
    the general path it shortcuts): each result or error, and whether it still waits."""
    decoder = Decoder(limits)
    results: list[object] = []
    try:
        results.append(decoder._feed_text(text) if general else decoder.feed(text))
        for number in range(3):
            results.append(decoder.feed(b"%d" % number))
    except RemoteProtocolError as exc:
        results.append(str(exc))
    return [*results, decoder._pending is None]


def placeholder(num: object) -> str:
    return f'{{"_placeholder":true,"num":{num}}}'


BINARY_PAYLOADS = st.sampled_from(
    [
        f'["e",{placeholder(0)}]',
        f'["e",{placeholder(1)},{placeholder(0)}]',
        f'["e",{placeholder(0)},{placeholder(0)}]',
        f'["e",{{"a":[{placeholder(0)}]}},3]',
        f'["e",[[{placeholder(0)}]]]',
        '["e",{"_placeholder":true,"num":"0"}]',
        f'["e",{placeholder(2)}]',
        '["e",{"_placeholder":true}]',
        '["e",{"_placeholder":true,"num":0,"x":1}]',
        '["e",{"_placeholder":false,"num":0}]',
        '["e"]',
        f'["connect",{placeholder(0)}]',
        f"[{placeholder(0)}]",
        placeholder(0),
        f'["e",{placeholder(0)}',
        "[]",
    ]
)
BINARY_TEXTS = st.tuples(
    st.sampled_from(
        [
            *("5", "51-", "52-", "50-", "501-", "5001-", "511-", "51", "51-/a,", "5-", "61-"),
            *("51x-", "599999999-", "5100000000-", "500000001-"),
        ]
    ),
    ACK_IDS,
    BINARY_PAYLOADS,
).map("".join) | st.text('0125-[]{}",e/_placeholdr:tu', max_size=16)
ONE_ATTACHMENT = DecoderLimits(max_depth=3, max_ack_id=999, max_attachments=1)


@settings(max_examples=1500, deadline=None)
@given(BINARY_TEXTS, st.sampled_from([socketio._DEFAULT_LIMITS, TIGHT, ONE_ATTACHMENT]))
def test_the_binary_event_shortcut_decodes_as_the_general_path(
    text: str, limits: DecoderLimits
) -> None:
    assert feed_binary(text, limits, general=False) == feed_binary(text, limits, general=True)


@pytest.mark.parametrize(
    ("text", "ack_id"),
    [(f'51-["e",{placeholder(0)}]', None), (f'51-7["e",{placeholder(0)}]', 7)],
)
def test_the_binary_event_shortcut_is_taken(text: str, ack_id: int | None) -> None:
    pending = socketio._plain_binary_event(text, socketio._DEFAULT_LIMITS)
    assert pending is not None
    assert pending.packet == socketio.Packet(
        socketio.PacketType.EVENT, "/", ["e", {"_placeholder": True, "num": 0}], ack_id
    )
    assert pending.slots == [(pending.packet.data, 1)]


@pytest.mark.parametrize(
    "text",
    [
        '51-/a,["e",{"_placeholder":true,"num":0}]',
        '5001-["e",{"_placeholder":true,"num":0}]',
        '511-["e",{"_placeholder":true,"num":0}]',
        '51-1000["e",{"_placeholder":true,"num":0}]',
        '51-["connect",{"_placeholder":true,"num":0}]',
        '51-["e",[[{"_placeholder":true,"num":0}]]]',
        '50-["e"]',
    ],
)
def test_the_binary_event_shortcut_leaves_the_rest_to_the_general_path(text: str) -> None:
    assert socketio._plain_binary_event(text, TIGHT) is None


ACK_ARGS = st.lists(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text()
    | st.binary(max_size=3)
    | st.binary(max_size=3).map(bytearray)
    | st.floats(allow_nan=False)
    | st.just({"_placeholder": True, "num": 0})
    | st.dictionaries(st.text(max_size=3), st.integers() | st.binary(max_size=2), max_size=2),
    max_size=3,
)


def general_ack(namespace: str, ack_id: int, args: list[Any]) -> list[OutgoingPacket] | str:
    try:
        parts = JSON.encode_ack(namespace, ack_id, args)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return [OutgoingPacket.message(part) for part in parts]


def fast_ack(namespace: str, ack_id: int, args: list[Any]) -> list[OutgoingPacket] | str:
    try:
        return encode_ack_for_engine(namespace, ack_id, args)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(["/", "/chat", "/é"]), st.integers(0, MAX_ACK_ID), ACK_ARGS)
def test_the_json_ack_is_written_as_the_general_encoder_writes_it(
    namespace: str, ack_id: int, args: list[Any]
) -> None:
    fast, general = fast_ack(namespace, ack_id, args), general_ack(namespace, ack_id, args)
    if isinstance(general, str):
        assert fast == general
        return
    assert not isinstance(fast, str)
    assert [p.ws_frame() for p in fast] == [p.ws_frame() for p in general]
    assert [p.ws_message() for p in fast] == [p.ws_message() for p in general]
    assert [p.polling_segment() for p in fast] == [p.polling_segment() for p in general]
    assert [p.packet for p in fast] == [p.packet for p in general]


def test_an_ack_given_as_bytes_is_one_text_message() -> None:
    (packet,) = encode_ack_for_engine("/", 5, [{"text": "é" * 70}])
    message = '435[{"text":"' + "é" * 70 + '"}]'
    assert packet.packet == EnginePacket(EnginePacketType.MESSAGE, message[1:])
    assert packet.ws_frame()[:2] == b"\x81\x7e"  # 144 bytes: the 16-bit length form
    assert packet.ws_frame()[4:] == message.encode()
    assert packet.size == len(message.encode())


def test_a_binary_ack_of_bytes_is_a_text_message_and_its_attachments() -> None:
    packets = encode_ack_for_engine("/chat", 7, [b"\x00\x01", "x", bytearray(b"\x02")])
    assert [p.ws_message() for p in packets] == [
        '462-/chat,7[{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]',
        b"\x00\x01",
        b"\x02",
    ]


def test_a_lone_surrogate_in_an_ack_is_refused_as_before() -> None:
    with pytest.raises(Exception, match="JSON"):
        encode_ack_for_engine("/", 1, ["\ud800"])


# -- one whole WebSocket frame per read ---------------------------------------------------

FRAME_PAYLOADS = st.sampled_from([0, 1, 5, 125, 126, 127, 1024, 65535, 65536]).flatmap(
    lambda n: st.sampled_from(
        [b"x" * n, ("é" * n).encode()[:n], b"\xff" + b"x" * max(n - 1, 0)]  # the last: not UTF-8
    )
)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], int]:
    """Chunks as a server could read them: frames (masked or not, whole or fragmented,
    any opcode), split or joined at random; and a message size limit."""
    frames = []
    for _ in range(draw(st.integers(1, 3))):
        opcode = draw(st.sampled_from([ws.Opcode.TEXT, ws.Opcode.BINARY, ws.Opcode.PING]))
        payload = draw(FRAME_PAYLOADS)
        if opcode is ws.Opcode.PING:
            payload = payload[:125]
        mask = draw(st.sampled_from([b"\x01\x02\x03\x04", b"\x00\x00\x00\x00", None]))
        fin = opcode is ws.Opcode.PING or draw(st.booleans())
        frames.append(ws.encode_frame(opcode, payload, fin=fin, mask=mask))
        if not fin:
            frames.append(ws.encode_frame(ws.Opcode.CONTINUATION, b"y", mask=mask))
    stream = b"".join(frames)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=3)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a] or [b""]
    return chunks, draw(st.sampled_from([0, 100, 1024, 1 << 20]))


def outcomes(limit: int, chunks: list[bytes], shortcut: bool) -> list[object]:
    """What a server's parser makes of ``chunks``, read by read, with or without the
    shortcut (as the engine's WebSocket reads: whole_messages first, then feed)."""
    parser = ws.FrameParser(max_message_size=limit, max_fragments=4)
    seen: list[object] = []
    for chunk in chunks:
        messages = parser.whole_messages(chunk) if shortcut else None
        if messages is not None:
            seen.extend(messages)
            continue
        try:
            events = parser.feed(chunk)
        except ws.WebSocketProtocolError as exc:
            seen.extend(exc.events)
            seen.append(("error", exc.close_code, exc.reason))
            break
        seen.extend(
            e.data if isinstance(e, ws.TextMessage | ws.BinaryMessage) else repr(e) for e in events
        )
    return seen


@settings(max_examples=1500, deadline=None)
@given(streams())
def test_the_whole_frame_shortcut_reads_as_feed_reads(case: tuple[list[bytes], int]) -> None:
    chunks, limit = case
    assert outcomes(limit, chunks, True) == outcomes(limit, chunks, False)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (ws.encode_frame(ws.Opcode.TEXT, b"4hello", mask=b"abcd"), "4hello"),
        (ws.encode_frame(ws.Opcode.BINARY, b"\x00" * 1024, mask=b"abcd"), b"\x00" * 1024),
    ],
)
def test_the_whole_frame_shortcut_is_taken(frame: bytes, message: str | bytes) -> None:
    parser = ws.FrameParser(max_message_size=4096)
    assert parser.whole_messages(frame) == [message]
    assert parser.whole_messages(frame + frame) == [message, message]


def test_the_whole_frame_shortcut_keeps_a_fragmented_message_whole() -> None:
    parser = ws.FrameParser(max_message_size=4096)
    first = ws.encode_frame(ws.Opcode.TEXT, b"4he", fin=False, mask=b"abcd")
    assert parser.whole_messages(first) is None
    assert parser.feed(first) == []
    text = ws.encode_frame(ws.Opcode.TEXT, b"4x", mask=b"abcd")
    assert parser.whole_messages(text) is None  # a new message inside one: feed() refuses it
    with pytest.raises(ws.WebSocketProtocolError, match="inside a fragmented"):
        parser.feed(text)


@pytest.mark.parametrize("size", [0, 1, 2, 124, 125, 126, 127, 65535, 65536])
def test_a_text_message_given_as_bytes_is_framed_as_encode_frame_frames_it(size: int) -> None:
    utf8 = b"4" + b"x" * (size - 1) if size else b""
    expected = ws.encode_frame(ws.Opcode.TEXT, utf8)
    assert OutgoingPacket.text_message(utf8).ws_frame() == expected
    assert ws.encode_text(utf8) == expected
