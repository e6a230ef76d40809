"""The hot-path shortcuts of the protocol layer give exactly what the general code gives.

The decoder takes the commonest packet (an EVENT to the main namespace, with or without
an ack id) in one step, and the server's JSON acknowledgement is built as wire bytes in
one step. Each is checked here against the general path it shortcuts, on valid and
invalid input alike, so a shortcut that accepted, refused or wrote anything differently
would fail.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventsio.exceptions import RemoteProtocolError
from geventsio.protocol import socketio
from geventsio.protocol.engineio import Packet as EnginePacket
from geventsio.protocol.engineio import PacketType as EnginePacketType
from geventsio.protocol.outgoing import OutgoingPacket, encode_ack_for_engine
from geventsio.protocol.serializers import JSON
from geventsio.protocol.socketio import MAX_ACK_ID, RESERVED_EVENTS, Decoder, DecoderLimits

TIGHT = DecoderLimits(max_depth=3, max_ack_id=999)


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
@given(TEXTS, st.sampled_from([socketio._DEFAULT_LIMITS, TIGHT]))
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
def test_the_plain_event_shortcut_is_taken(text: str, expected: socketio.Packet) -> None:
    assert socketio._plain_event(text, socketio._DEFAULT_LIMITS) == expected


@pytest.mark.parametrize(
    "text",
    ['2/a,["e"]', '21000["e"]', '2[["e"]]', '2["connect"]', '2["e",[[[[1]]]]]', '2["e"'],
)
def test_the_plain_event_shortcut_leaves_the_rest_to_the_general_path(text: str) -> None:
    assert socketio._plain_event(text, TIGHT) is None


def test_a_binary_packet_awaiting_attachments_is_not_overtaken() -> None:
    decoder = Decoder()
    assert decoder.feed('51-["e",{"_placeholder":true,"num":0}]') is None
    with pytest.raises(RemoteProtocolError, match="attachment"):
        decoder.feed('2["e"]')


ACK_ARGS = st.lists(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text()
    | st.binary(max_size=3)
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


def test_a_lone_surrogate_in_an_ack_is_refused_as_before() -> None:
    with pytest.raises(Exception, match="JSON"):
        encode_ack_for_engine("/", 1, ["\ud800"])
