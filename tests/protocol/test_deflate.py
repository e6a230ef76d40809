"""permessage-deflate without I/O: the offer negotiation, the codec, and compressed frames
through the sans-IO frame parser (RFC 7692's own examples among them)."""

from __future__ import annotations

import os
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventsio.exceptions import RemoteProtocolError
from geventsio.options import DeflateOptions, EngineOptions
from geventsio.protocol import websocket as ws
from geventsio.protocol import websocket_handshake as handshake
from geventsio.protocol.deflate import Deflater, Inflater
from geventsio.protocol.deflate_offer import (
    DeflateAgreement,
    negotiate,
    parse_answer,
    parse_extensions,
)
from geventsio.protocol.websocket import (
    BinaryMessage,
    FrameParser,
    TextMessage,
    WebSocketProtocolError,
)

MB = 1 << 20
MASK = bytes.fromhex("37fa213d")
DEFAULTS = DeflateOptions()
quick = settings(database=None, deadline=None, max_examples=50)


# ------------------------------------------------------------------- negotiation


def answer(header: str | None, options: DeflateOptions = DEFAULTS) -> str | None:
    agreement = negotiate(header, options)
    return None if agreement is None else agreement.response


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("permessage-deflate", "permessage-deflate"),
        ("Permessage-Deflate", "permessage-deflate"),
        # Chromium's offer, and Node's ws (which offers client_max_window_bits).
        (
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate",
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            'permessage-deflate; server_max_window_bits="12"',
            "permessage-deflate; server_max_window_bits=12",
        ),
        (
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            "permessage-deflate;client_max_window_bits = 8",
            "permessage-deflate; client_max_window_bits=8",
        ),
        # The first acceptable offer wins; unknown extensions are skipped.
        (
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=11",
            "permessage-deflate; server_max_window_bits=11",
        ),
        (
            "permessage-deflate; server_max_window_bits=8,"
            " permessage-deflate; server_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=9",
        ),
        ("permessage-deflate; foo, permessage-deflate", "permessage-deflate"),
        ('permessage-deflate; foo="a,b", permessage-deflate', "permessage-deflate"),
        (" , permessage-deflate ,", "permessage-deflate"),
        # Declined: unknown or repeated parameters, bad values, window 8 for the server.
        ("permessage-deflate; foo", None),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ('permessage-deflate; client_no_context_takeover=""', None),
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; server_max_window_bits=7", None),
        ("permessage-deflate; server_max_window_bits=010", None),
        ("permessage-deflate; server_max_window_bits=8", None),
        ("permessage-deflate; client_max_window_bits=16", None),
        ('permessage-deflate; client_max_window_bits="1 0"', None),
        # Malformed syntax: declined, never an exception.
        ("permessage-deflate;", None),
        ("permessage-deflate; =10", None),
        ('permessage-deflate; server_max_window_bits="10', None),
        ("permessage-deflate; server_max_window_bits=10=11", None),
        ("permessage-deflate @", None),
        ("; permessage-deflate", None),
        ("permessage-deflate\x00", None),
        ("permessage-deflate; client_max_window_bits=é", None),
        ("x-other; a=1", None),
    ],
)
def test_the_server_answers_the_first_acceptable_offer(header, expected):
    assert answer(header) == expected


@pytest.mark.parametrize(
    ("options", "header", "expected"),
    [
        (
            {"server_no_context_takeover": True, "client_no_context_takeover": True},
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            {"server_max_window_bits": 11},
            "permessage-deflate",
            "permessage-deflate; server_max_window_bits=11",
        ),
        (
            {"server_max_window_bits": 11},
            "permessage-deflate; server_max_window_bits=13",
            "permessage-deflate; server_max_window_bits=11",
        ),
        (
            {"server_max_window_bits": 13},
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            {"client_max_window_bits": 10},
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            {"client_max_window_bits": 10},
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=9",
        ),
        # A client that allows no limit is accepted unlimited (RFC 7692 7.1.2.2).
        ({"client_max_window_bits": 10}, "permessage-deflate", "permessage-deflate"),
    ],
)
def test_the_server_options_shape_the_answer(options, header, expected):
    assert answer(header, DeflateOptions(**options)) == expected


def test_the_agreement_carries_the_parameters_both_ends_use():
    agreement = negotiate(
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=10;"
        " client_max_window_bits=12",
        DEFAULTS,
    )
    assert agreement == DeflateAgreement(
        server_no_context_takeover=False,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=12,
        response="permessage-deflate; client_no_context_takeover; server_max_window_bits=10;"
        " client_max_window_bits=12",
    )


def test_quoted_values_are_unescaped():
    assert parse_extensions('a; b="x\\yz", c') == [("a", [("b", "xyz")]), ("c", [])]
    assert parse_extensions('a; b="x\\"y"') == [None]  # unescaped, not a token


@quick
@given(st.text(alphabet=' ;,="\\abpermsgdflt_-=0123456789\t', max_size=80))
def test_no_header_makes_negotiation_fail(header):
    agreement = negotiate(header, DEFAULTS)
    assert agreement is None or agreement.response.startswith("permessage-deflate")


def test_the_option_is_off_by_default_and_takes_true_or_a_mapping():
    assert EngineOptions().deflate is None
    assert EngineOptions(per_message_deflate=True).deflate == DeflateOptions()
    assert EngineOptions(per_message_deflate={"threshold": 10}).deflate == DeflateOptions(
        threshold=10
    )
    with pytest.raises(TypeError):
        EngineOptions(per_message_deflate={"thresold": 10})
    with pytest.raises(ValueError, match="server_max_window_bits"):
        DeflateOptions(server_max_window_bits=8)


# ------------------------------------------------------------------- the codec


def test_rfc7692_examples_compress_as_the_rfc_shows():
    """RFC 7692 7.2.3.1 and 7.2.3.2: "Hello", then "Hello" again sharing the window."""
    deflater = Deflater(15, no_context_takeover=False)
    assert deflater.deflate(b"Hello").hex() == "f248cdc9c90700"
    assert deflater.deflate(b"Hello").hex() == "f200110000"
    assert deflater.allocated


def test_without_context_takeover_no_compressor_is_kept():
    deflater = Deflater(15, no_context_takeover=True)
    assert not deflater.allocated
    assert deflater.deflate(b"Hello").hex() == "f248cdc9c90700"
    assert deflater.deflate(b"Hello").hex() == "f248cdc9c90700"
    assert not deflater.allocated


def test_a_reset_deflater_stays_readable_by_a_context_keeping_inflater():
    deflater, inflater = Deflater(15, False), Inflater(15, False)
    messages = [b"abc" * 100, b"abc" * 100, b"xyzabc" * 50]
    for index, message in enumerate(messages):
        if index == 2:
            deflater.reset()
        assert inflater.inflate(deflater.deflate(message), True, MB) == message


@pytest.mark.parametrize(
    ("frames", "text"),
    [
        (["c107f248cdc9c90700"], "Hello"),  # 7.2.3.1
        (["4103f248cd", "8004c9c90700"], "Hello"),  # 7.2.3.1, fragmented
        (["c10b0005 00faff48656c6c6f00"], "Hello"),  # 7.2.3.3, a stored block
        (["c108f348cdc9c9070000"], "Hello"),  # 7.2.3.4, BFINAL set
    ],
)
def test_rfc7692_frames_inflate(frames, text):
    parser = FrameParser(max_message_size=MB, expect_masked=False, inflater=Inflater(15, False))
    events = [e for frame in frames for e in parser.feed(bytes.fromhex(frame.replace(" ", "")))]
    assert events == [TextMessage(text)]


def test_a_message_sharing_the_window_with_the_previous_one_inflates():
    parser = FrameParser(max_message_size=MB, expect_masked=False, inflater=Inflater(15, False))
    events = parser.feed(bytes.fromhex("c107f248cdc9c90700c105f200110000"))
    assert events == [TextMessage("Hello"), TextMessage("Hello")]


def masked_frame(b0: int, payload: bytes) -> bytes:
    return ws._header(b0, len(payload), 0x80) + MASK + ws.apply_mask(payload, MASK)


@quick
@given(
    st.lists(st.one_of(st.text(max_size=3000), st.binary(max_size=3000)), min_size=1, max_size=5),
    st.booleans(),
    st.integers(min_value=1, max_value=400),
)
def test_compressed_messages_round_trip_in_any_fragmentation(messages, takeover, size):
    deflater = Deflater(15, not takeover)
    parser = FrameParser(max_message_size=MB, inflater=Inflater(15, not takeover))
    wire = b""
    for message in messages:
        text = isinstance(message, str)
        payload = deflater.deflate(message.encode() if text else message)
        parts = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        for index, part in enumerate(parts):
            first = (0x40 | (0x01 if text else 0x02)) if index == 0 else 0
            fin = 0x80 if index == len(parts) - 1 else 0
            wire += masked_frame(first | fin, part)
    events = parser.feed(wire)
    expected = [TextMessage(m) if isinstance(m, str) else BinaryMessage(m) for m in messages]
    assert events == expected


def test_encode_compressed_sets_rsv1_on_the_frame():
    frame = ws.encode_compressed(bytes.fromhex("f248cdc9c90700"), text=True)
    assert frame.hex() == "c107f248cdc9c90700"
    assert ws.encode_compressed(b"\x00", text=False)[0] == 0xC2


# ------------------------------------------------------------------- violations


def refusal(parser: FrameParser, data: bytes) -> WebSocketProtocolError:
    with pytest.raises(WebSocketProtocolError) as caught:
        parser.feed(data)
    return caught.value


def test_rsv1_without_the_extension_is_a_protocol_error():
    error = refusal(FrameParser(max_message_size=MB), masked_frame(0xC1, b"\xf2\x48"))
    assert error.close_code == 1002


@pytest.mark.parametrize(
    "frames",
    [
        [masked_frame(0xC9, b"")],  # a ping with RSV1
        [masked_frame(0x41, b"\xf2\x48"), masked_frame(0xC0, b"\xcd")],  # RSV1 on a continuation
        [masked_frame(0xA1, b"x")],  # RSV2
        [masked_frame(0x91, b"x")],  # RSV3
    ],
)
def test_rsv1_where_it_may_not_be_is_a_protocol_error(frames):
    parser = FrameParser(max_message_size=MB, inflater=Inflater(15, False))
    assert refusal(parser, b"".join(frames)).close_code == 1002


def test_corrupt_compressed_data_fails_with_1007():
    parser = FrameParser(max_message_size=MB, inflater=Inflater(15, False))
    assert refusal(parser, masked_frame(0xC2, b"\xff\xff\xff\xff")).close_code == 1007


def bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(MB)
    out = [compressor.compress(chunk) for _ in range(size // MB)]
    out.append(compressor.flush(zlib.Z_SYNC_FLUSH)[:-4])
    return b"".join(out)


def test_a_100_mb_bomb_is_refused_at_the_limit_with_memory_bounded():
    payload = bomb(100 * MB)
    assert len(payload) < 200_000  # it passes the wire size check
    parser = FrameParser(max_message_size=MB, inflater=Inflater(15, False))
    frame = masked_frame(0xC2, payload)
    tracemalloc.start()
    try:
        error = refusal(parser, frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.close_code == 1009
    assert peak < 4 * MB, peak


def test_a_bomb_in_fragments_is_refused_by_the_sum_of_its_parts():
    payload = Deflater(15, False).deflate(bytes(1_200_000))
    half = len(payload) // 2
    parser = FrameParser(max_message_size=MB, inflater=Inflater(15, False))
    assert parser.feed(masked_frame(0x42, payload[:half])) == []  # under the limit so far
    error = refusal(parser, masked_frame(0x80, payload[half:]))
    assert error.close_code == 1009


def test_a_message_exactly_at_the_limit_inflates():
    data = os.urandom(1000) * 10
    payload = Deflater(15, True).deflate(data)
    parser = FrameParser(max_message_size=len(data), inflater=Inflater(15, True))
    assert parser.feed(masked_frame(0xC2, payload)) == [BinaryMessage(data)]
    payload = Deflater(15, True).deflate(data + b"!")
    assert refusal(parser, masked_frame(0xC2, payload)).close_code == 1009


def test_without_client_context_takeover_no_decompressor_is_kept():
    inflater = Inflater(15, True)
    parser = FrameParser(max_message_size=MB, inflater=inflater)
    parser.feed(masked_frame(0xC1, Deflater(15, True).deflate(b"x" * 5000)))
    assert not inflater.allocated
    kept = Inflater(15, False)
    parser = FrameParser(max_message_size=MB, inflater=kept)
    parser.feed(masked_frame(0xC1, Deflater(15, False).deflate(b"x" * 5000)))
    assert kept.allocated


# ------------------------------------------------------------------- outgoing packets


@pytest.mark.parametrize("size", [0, 1, 124, 125, 126, 65534, 65535, 65536, 70000])
def test_ws_payload_is_the_frame_without_its_header(size):
    from geventsio.protocol.outgoing import OutgoingPacket

    packet = OutgoingPacket.message("x" * size)
    assert bytes(packet.ws_payload()) == b"4" + b"x" * size


def test_a_deflated_frame_is_shared_only_without_context_takeover():
    from geventsio.protocol.outgoing import OutgoingPacket

    text = os.urandom(2000).hex()
    packet = OutgoingPacket.message(text)
    shared = [Deflater(15, True), Deflater(15, True)]
    frames = [packet.ws_deflated_frame(d) for d in shared]
    assert frames[0] is frames[1]  # compressed once for both connections
    assert packet.ws_deflated_frame(Deflater(10, True)) is not frames[0]  # other settings
    own = Deflater(15, False)
    first, second = packet.ws_deflated_frame(own), packet.ws_deflated_frame(own)
    assert first == frames[0] and len(second) < len(first)  # the second refers to the first
    parser = FrameParser(max_message_size=MB, expect_masked=False, inflater=Inflater(15, False))
    assert parser.feed(first + second) == [TextMessage("4" + text)] * 2


# ------------------------------------------------------------------- the client's side


@pytest.mark.parametrize(
    ("header", "server_bits", "client_bits", "server_nct", "client_nct"),
    [
        ("permessage-deflate", 15, 15, False, False),
        ("permessage-deflate; client_max_window_bits=10", 15, 10, False, False),
        (
            "permessage-deflate; server_max_window_bits=9; server_no_context_takeover",
            9,
            15,
            True,
            False,
        ),
        ("permessage-deflate; client_no_context_takeover", 15, 15, False, True),
    ],
)
def test_the_client_reads_the_server_answer(
    header, server_bits, client_bits, server_nct, client_nct
):
    agreement = parse_answer(header)
    assert (agreement.server_max_window_bits, agreement.client_max_window_bits) == (
        server_bits,
        client_bits,
    )
    assert (agreement.server_no_context_takeover, agreement.client_no_context_takeover) == (
        server_nct,
        client_nct,
    )


@pytest.mark.parametrize(
    "header",
    [
        "x-other",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; client_max_window_bits",  # a value is required in an answer
        "permessage-deflate; foo",
        "permessage-deflate; server_max_window_bits=16",
        'permessage-deflate; server_max_window_bits="',
    ],
)
def test_the_client_fails_on_an_answer_it_cannot_accept(header):
    with pytest.raises(RemoteProtocolError):
        parse_answer(header)


def test_a_client_asked_for_an_8_bit_window_sends_uncompressed():
    deflater, inflater = parse_answer(
        "permessage-deflate; client_max_window_bits=8"
    ).client_codecs()
    assert deflater is None and inflater is not None


def test_the_handshake_check_allows_an_extension_only_when_one_was_offered():
    key = handshake.new_client_key()
    headers = {
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-accept": handshake.accept_key(key),
        "sec-websocket-extensions": "permessage-deflate",
    }
    handshake.check_server_response(101, headers, key, extension_offered=True)
    with pytest.raises(RemoteProtocolError):
        handshake.check_server_response(101, headers, key)
    with pytest.raises(RemoteProtocolError):
        handshake.check_server_response(
            101, {**headers, "sec-websocket-protocol": "x"}, key, extension_offered=True
        )
