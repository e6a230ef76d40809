"""The Engine.IO v3 codec against the bytes engine.io-parser 2.2 (npm ``engine.io-parser@2``,
the Node server's ``parser-v3``) writes and reads: each expected value below was printed
by that parser's ``encodePayload``/``encodePacket``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geventsio.exceptions import RemoteProtocolError
from geventsio.protocol import engineio_v3 as v3
from geventsio.protocol.engineio import Packet, PacketType

M = PacketType.MESSAGE
PLACEHOLDER_EVENT = '451-["x",{"_placeholder":true,"num":0}]'  # a Socket.IO packet

# (packets, string payload, binary payload as hex or None when Node writes the string one)
PAYLOADS = [
    (
        [Packet(PacketType.OPEN, '{"sid":"abc"}'), Packet(M, "40")],
        '14:0{"sid":"abc"}3:440',
        None,
    ),
    ([Packet(PacketType.NOOP)], "1:6", None),
    ([Packet(PacketType.PONG)], "1:3", None),
    # the length counts UTF-16 code units: the emoji counts 2
    ([Packet(M, '2["é€😀"]')], '10:42["é€😀"]', None),
    ([], "0:", None),
    (
        [Packet(M, PLACEHOLDER_EVENT), Packet(M, b"\x01\x02\x03")],
        '40:4451-["x",{"_placeholder":true,"num":0}]6:b4AQID',
        "000400ff343435312d5b2278222c7b225f706c616365686f6c646572223a747275652c226e756d22"
        "3a307d5d0104ff04010203",
    ),
    # in a binary payload a string packet is UTF-8 and its length counts bytes
    (
        [Packet(M, '2["é😀"]'), Packet(M, b"\x07" * 12)],
        None,
        "000102ff34325b22c3a9f09f9880225d010103ff04070707070707070707070707",
    ),
]


@pytest.mark.parametrize(("packets", "string", "binary"), PAYLOADS)
def test_payloads_as_node_writes_them(packets, string, binary):
    if string is not None:
        assert v3.encode_string_payload(packets) == string
        if packets:
            assert v3.decode_string_payload(string.encode()) == packets
    if binary is not None:
        assert v3.encode_binary_payload(packets).hex() == binary
        assert v3.decode_binary_payload(bytes.fromhex(binary)) == packets


def test_websocket_messages_as_node_writes_them():
    packet = Packet(M, b"\x01\x02\x03")
    assert v3.encode_ws(packet) == bytes.fromhex("04010203")
    assert v3.encode_ws(packet, supports_binary=False) == "b4AQID"
    assert v3.encode_ws(Packet(M, "2[1]")) == "42[1]"
    assert v3.decode_ws(bytes.fromhex("04010203")) == packet
    assert v3.decode_ws("b4AQID") == packet
    assert v3.decode_ws("2") == Packet(PacketType.PING)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"3:4",  # shorter than its length
        b"2:4a5:4\xf0\x9f\x98\x80",  # 4😀 is 3 code units, not 5 (Node: parser error)
        b"x:4a",
        b"1:",  # no packet after the length... and a length with no data left
        b"12345678901:4",  # too many digits
        b"2:9a",  # unknown type
        b"6:b2AQID",  # binary that is no MESSAGE
        b"6:b4A!ID",  # bad base64
        b"\xff\xfe",  # not UTF-8
    ],
)
def test_malformed_string_payloads_are_refused(body):
    with pytest.raises(RemoteProtocolError):
        v3.decode_string_payload(body)


@pytest.mark.parametrize(
    "hex_body",
    [
        "02" + "01ff" + "34",  # kind 2
        "00" + "0a" + "ff34",  # digit byte 10
        "00" + "05ff" + "3461",  # shorter than its length
        "01" + "04ff" + "02010203",  # binary that is no MESSAGE
        "00" + "01" * 12 + "ff",  # too many digits
        "0002ff" + "34ff",  # not UTF-8
    ],
)
def test_malformed_binary_payloads_are_refused(hex_body):
    with pytest.raises(RemoteProtocolError):
        v3.decode_binary_payload(bytes.fromhex(hex_body))


def test_an_empty_length_record_is_skipped_as_node_does():
    assert v3.decode_string_payload(b"0:2:4a") == [Packet(M, "a")]


def test_utf16_length():
    assert v3.utf16_length("abc") == 3
    assert v3.utf16_length("é€") == 2
    assert v3.utf16_length("😀") == 2


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
packets = st.lists(
    st.one_of(
        st.builds(Packet, st.just(M), texts),
        st.builds(Packet, st.just(M), st.binary(min_size=0, max_size=40)),
        st.builds(Packet, st.sampled_from([PacketType.PING, PacketType.PONG]), texts),
    ),
    min_size=1,
    max_size=6,
)


@given(packets)
def test_round_trips(batch):
    assert v3.decode_string_payload(v3.encode_string_payload(batch).encode()) == batch
    assert v3.decode_binary_payload(v3.encode_binary_payload(batch)) == batch
    for packet in batch:
        assert v3.decode_ws(v3.encode_ws(packet)) == packet
        assert v3.decode_ws(v3.encode_ws(packet, supports_binary=False)) == packet
