"""Tests of the sans-IO RFC 6455 framing and handshake helpers."""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventsio.exceptions import LocalProtocolError, RemoteProtocolError
from geventsio.protocol import websocket as ws
from geventsio.protocol import websocket_handshake as handshake
from geventsio.protocol.websocket import (
    BinaryMessage,
    CloseReceived,
    Event,
    FrameParser,
    Opcode,
    Ping,
    Pong,
    TextMessage,
    WebSocketProtocolError,
)

MB = 1 << 20
RFC_MASK = bytes.fromhex("37fa213d")
HELLO_MASKED = bytes.fromhex("818537fa213d7f9f4d5158")
quick = settings(database=None, deadline=None)


def server(*, max_message_size: int = MB, max_fragments: int = 1024) -> FrameParser:
    return FrameParser(max_message_size=max_message_size, max_fragments=max_fragments)


def client() -> FrameParser:
    return FrameParser(max_message_size=MB, expect_masked=False)


def masked(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A masked frame built by hand (any opcode, even an invalid one)."""
    return (
        bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)])
        + RFC_MASK
        + (ws.apply_mask(payload, RFC_MASK))
    )


def feed_bytewise(parser: FrameParser, data: bytes) -> list[Event]:
    events: list[Event] = []
    for i in range(len(data)):
        events += parser.feed(data[i : i + 1])
    return events


# ------------------------------------------------------------------- RFC 6455 5.7

BIN_256 = bytes(range(256))
BIN_64K = os.urandom(65536)
RFC_EXAMPLES = [
    # (name, wire bytes, frames are masked, events)
    ("unmasked Hello", bytes.fromhex("810548656c6c6f"), False, [TextMessage("Hello")]),
    ("masked Hello", HELLO_MASKED, True, [TextMessage("Hello")]),
    ("fragmented Hel+lo", bytes.fromhex("010348656c80026c6f"), False, [TextMessage("Hello")]),
    ("unmasked ping", bytes.fromhex("890548656c6c6f"), False, [Ping(b"Hello")]),
    ("masked pong", bytes.fromhex("8a8537fa213d7f9f4d5158"), True, [Pong(b"Hello")]),
    ("256 bytes", bytes.fromhex("827e0100") + BIN_256, False, [BinaryMessage(BIN_256)]),
    ("64 KiB", bytes.fromhex("827f0000000000010000") + BIN_64K, False, [BinaryMessage(BIN_64K)]),
]


@pytest.mark.parametrize(("name", "wire", "is_masked", "expected"), RFC_EXAMPLES)
def test_rfc_examples_parse(name: str, wire: bytes, is_masked: bool, expected: list[Event]) -> None:
    assert FrameParser(max_message_size=MB, expect_masked=is_masked).feed(wire) == expected


@pytest.mark.parametrize(("name", "wire", "is_masked", "expected"), RFC_EXAMPLES)
def test_rfc_examples_bytewise(
    name: str, wire: bytes, is_masked: bool, expected: list[Event]
) -> None:
    parser = FrameParser(max_message_size=MB, expect_masked=is_masked)
    assert feed_bytewise(parser, wire) == expected


@pytest.mark.parametrize(
    ("built", "wire"),
    [
        (ws.encode_text("Hello"), bytes.fromhex("810548656c6c6f")),
        (ws.encode_frame(Opcode.TEXT, b"Hello", mask=RFC_MASK), HELLO_MASKED),
        (ws.encode_text("Hello", mask=RFC_MASK), HELLO_MASKED),
        (
            ws.encode_frame(Opcode.TEXT, b"Hel", fin=False)
            + ws.encode_frame(Opcode.CONTINUATION, b"lo"),
            bytes.fromhex("010348656c80026c6f"),
        ),
        (ws.encode_ping(b"Hello"), bytes.fromhex("890548656c6c6f")),
        (ws.encode_pong(b"Hello", mask=RFC_MASK), bytes.fromhex("8a8537fa213d7f9f4d5158")),
        (ws.encode_binary(BIN_256), bytes.fromhex("827e0100") + BIN_256),
        (ws.encode_binary(BIN_64K), bytes.fromhex("827f0000000000010000") + BIN_64K),
    ],
)
def test_rfc_examples_encode(built: bytes, wire: bytes) -> None:
    assert built == wire


# ------------------------------------------------------------------- lengths


@pytest.mark.parametrize(
    ("size", "header_size"), [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (70000, 10)]
)
@pytest.mark.parametrize("mask", [None, b"\x01\x02\x03\x04"])
def test_length_forms_round_trip(size: int, header_size: int, mask: bytes | None) -> None:
    payload = os.urandom(size)
    frame = ws.encode_binary(payload, mask=mask)
    assert len(frame) == header_size + (4 if mask else 0) + size
    parser = FrameParser(max_message_size=MB, expect_masked=mask is not None)
    assert parser.feed(frame) == [BinaryMessage(payload)]


@pytest.mark.parametrize(
    "header", [bytes.fromhex("817e0005"), bytes.fromhex("817f0000000000000005")]
)
def test_non_minimal_length_accepted(header: bytes) -> None:
    assert client().feed(header + b"Hello") == [TextMessage("Hello")]


def test_interleaved_control_frames() -> None:
    wire = (
        ws.encode_frame(Opcode.TEXT, b"Hel", fin=False)
        + ws.encode_ping(b"1")
        + ws.encode_pong(b"2")
        + ws.encode_frame(Opcode.CONTINUATION, b"l", fin=False)
        + ws.encode_frame(Opcode.CONTINUATION, b"o")
    )
    assert client().feed(wire) == [Ping(b"1"), Pong(b"2"), TextMessage("Hello")]


def test_utf8_split_across_fragments() -> None:
    data = "h\u00e9\u20ac\U0001f600".encode()
    wire = b"".join(
        ws.encode_frame(Opcode.CONTINUATION if i else Opcode.TEXT, data[i : i + 1], fin=i == 9)
        for i in range(len(data))
    )
    assert client().feed(wire) == [TextMessage("h\u00e9\u20ac\U0001f600")]


def test_fragmented_binary_and_empty_fragments() -> None:
    wire = (
        ws.encode_frame(Opcode.BINARY, b"", fin=False)
        + ws.encode_frame(Opcode.CONTINUATION, b"ab", fin=False)
        + ws.encode_frame(Opcode.CONTINUATION, b"")
        + ws.encode_text("")
    )
    assert client().feed(wire) == [BinaryMessage(b"ab"), TextMessage("")]


def test_many_events_from_one_chunk_and_none_from_a_partial_one() -> None:
    parser = client()
    wire = ws.encode_text("a") + ws.encode_binary(b"b") + ws.encode_close(1001, "bye")
    partial = ws.encode_text("partial")
    assert parser.feed(wire + partial[:5]) == [
        TextMessage("a"),
        BinaryMessage(b"b"),
        CloseReceived(1001, "bye"),
    ]
    assert parser.feed(b"") == []
    assert parser.feed(partial[5:]) == [TextMessage("partial")]


def test_feed_accepts_bytearray_and_memoryview() -> None:
    parser = server()
    assert parser.feed(bytearray(HELLO_MASKED[:4])) == []
    assert parser.feed(memoryview(HELLO_MASKED)[4:]) == [TextMessage("Hello")]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", CloseReceived(1005, "")),
        (b"\x03\xe8", CloseReceived(1000, "")),
        (b"\x0b\xb8caf\xc3\xa9", CloseReceived(3000, "caf\u00e9")),
        (b"\x13\x87", CloseReceived(4999, "")),
    ],
)
def test_close_frames(payload: bytes, expected: CloseReceived) -> None:
    assert server().feed(masked(Opcode.CLOSE, payload)) == [expected]


# ------------------------------------------------------------------- properties


@st.composite
def fragmented_stream(draw: st.DrawFn) -> tuple[list[bytes], list[Event]]:
    """Frames for messages split into fragments with pings between them, and the events."""
    frames: list[bytes] = []
    events: list[Event] = []
    for _ in range(draw(st.integers(0, 5))):
        is_text = draw(st.booleans())
        data: str | bytes = draw(st.text(max_size=40)) if is_text else draw(st.binary(max_size=40))
        raw = data.encode() if isinstance(data, str) else data
        cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=6)))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        for i, piece in enumerate(pieces):
            if i and draw(st.booleans()):
                ping = draw(st.binary(max_size=125))
                frames.append(ws.encode_ping(ping, mask=draw(st.binary(min_size=4, max_size=4))))
                events.append(Ping(ping))
            opcode = Opcode.CONTINUATION if i else (Opcode.TEXT if is_text else Opcode.BINARY)
            mask = draw(st.binary(min_size=4, max_size=4))
            frames.append(ws.encode_frame(opcode, piece, fin=i == len(pieces) - 1, mask=mask))
        events.append(TextMessage(data) if isinstance(data, str) else BinaryMessage(data))
    return frames, events


@quick
@given(fragmented_stream(), st.data())
def test_any_fragmentation_and_chunking_gives_the_same_messages(
    stream: tuple[list[bytes], list[Event]], data: st.DataObject
) -> None:
    frames, expected = stream
    wire = b"".join(frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    parser = server()
    events: list[Event] = []
    for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        events += parser.feed(wire[a:b])
    assert events == expected


@quick
@given(st.sampled_from(list(Opcode)), st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_masked_encode_parse_round_trip(opcode: Opcode, payload: bytes, mask: bytes) -> None:
    if opcode >= Opcode.CLOSE:
        payload = payload[:125]
    if opcode == Opcode.CLOSE:
        payload = b"\x03\xe8" + payload[:10].hex().encode()
    if opcode == Opcode.TEXT:
        payload = payload.hex().encode()
    parser = server()
    if opcode == Opcode.CONTINUATION:
        parser.feed(ws.encode_frame(Opcode.BINARY, b"<", fin=False, mask=mask))
    [event] = parser.feed(ws.encode_frame(opcode, payload, mask=mask))
    expected: dict[Opcode, Callable[[], Event]] = {
        Opcode.CONTINUATION: lambda: BinaryMessage(b"<" + payload),
        Opcode.TEXT: lambda: TextMessage(payload.decode()),
        Opcode.BINARY: lambda: BinaryMessage(payload),
        Opcode.CLOSE: lambda: CloseReceived(1000, payload[2:].decode()),
        Opcode.PING: lambda: Ping(payload),
        Opcode.PONG: lambda: Pong(payload),
    }
    assert event == expected[opcode]()


@quick
@given(st.text(max_size=200), st.binary(max_size=70000))
def test_unmasked_round_trip(text: str, binary: bytes) -> None:
    wire = ws.encode_text(text) + ws.encode_binary(binary)
    assert client().feed(wire) == [TextMessage(text), BinaryMessage(binary)]


@quick
@given(st.binary(max_size=2000), st.binary(min_size=4, max_size=4))
def test_python_mask_fallback_agrees_with_c(data: bytes, mask: bytes) -> None:
    from websockets.speedups import apply_mask

    assert ws.apply_mask_python(data, mask) == apply_mask(data, mask)
    assert ws.apply_mask_python(ws.apply_mask_python(data, mask), mask) == data


def test_c_mask_chosen_and_fallback_on_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from websockets.speedups import apply_mask

    assert ws.apply_mask is apply_mask
    monkeypatch.setitem(sys.modules, "websockets.speedups", None)
    assert ws._choose_apply_mask() is ws.apply_mask_python


# ------------------------------------------------------------------- errors

PROTOCOL_ERRORS = [
    # (name, wire, expect_masked, close code)
    ("RSV1", bytes([0xC1]) + HELLO_MASKED[1:], True, 1002),
    ("RSV2", bytes([0xA1]) + HELLO_MASKED[1:], True, 1002),
    ("RSV3", bytes([0x91]) + HELLO_MASKED[1:], True, 1002),
    *((f"opcode {op}", masked(op, b""), True, 1002) for op in (3, 4, 5, 6, 7, 11, 12, 13, 15)),
    ("fragmented ping", masked(Opcode.PING, b"", fin=False), True, 1002),
    ("ping of 126 bytes", bytes.fromhex("89fe007e") + RFC_MASK + bytes(126), True, 1002),
    ("continuation first", masked(Opcode.CONTINUATION, b"x"), True, 1002),
    (
        "text inside a fragmented message",
        masked(Opcode.TEXT, b"a", fin=False) + masked(Opcode.TEXT, b"b"),
        True,
        1002,
    ),
    (
        "binary inside a fragmented message",
        masked(Opcode.TEXT, b"a", fin=False) + masked(Opcode.BINARY, b"b", fin=False),
        True,
        1002,
    ),
    ("unmasked frame to a server", bytes.fromhex("810548656c6c6f"), True, 1002),
    ("masked frame to a client", HELLO_MASKED, False, 1002),
    ("64-bit length top bit", bytes.fromhex("82ff8000000000000005") + RFC_MASK, True, 1002),
    ("invalid UTF-8", masked(Opcode.TEXT, b"\xff"), True, 1007),
    ("surrogate in UTF-8", masked(Opcode.TEXT, b"\xed\xa0\x80"), True, 1007),
    (
        "invalid UTF-8 in a fragment",
        masked(Opcode.TEXT, b"ok", fin=False) + masked(Opcode.CONTINUATION, b"\xc0", fin=False),
        True,
        1007,
    ),
    (
        "truncated UTF-8 at the end of a fragmented message",
        masked(Opcode.TEXT, b"ok", fin=False) + masked(Opcode.CONTINUATION, b"\xe2\x82"),
        True,
        1007,
    ),
    ("close of 1 byte", masked(Opcode.CLOSE, b"\x03"), True, 1002),
    *(
        (f"close code {code}", masked(Opcode.CLOSE, code.to_bytes(2, "big")), True, 1002)
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535)
    ),
    ("close reason not UTF-8", masked(Opcode.CLOSE, b"\x03\xe8\xff"), True, 1007),
]


@pytest.mark.parametrize(("name", "wire", "is_masked", "code"), PROTOCOL_ERRORS)
def test_protocol_errors(name: str, wire: bytes, is_masked: bool, code: int) -> None:
    parser = FrameParser(max_message_size=MB, expect_masked=is_masked)
    with pytest.raises(WebSocketProtocolError) as info:
        parser.feed(wire)
    assert info.value.close_code == code
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.reason.isascii() and len(info.value.reason) <= 123


@pytest.mark.parametrize(("name", "wire", "is_masked", "code"), PROTOCOL_ERRORS)
def test_protocol_errors_bytewise(name: str, wire: bytes, is_masked: bool, code: int) -> None:
    parser = FrameParser(max_message_size=MB, expect_masked=is_masked)
    with pytest.raises(WebSocketProtocolError) as info:
        feed_bytewise(parser, wire)
    assert info.value.close_code == code


def test_oversize_refused_from_the_header_alone() -> None:
    header = bytes.fromhex("82ff") + (10 * MB).to_bytes(8, "big") + RFC_MASK
    with pytest.raises(WebSocketProtocolError) as info:
        server().feed(header)
    assert info.value.close_code == 1009


def test_oversize_refused_before_the_mask_key_arrives() -> None:
    parser = server(max_message_size=100)
    assert parser.feed(bytes.fromhex("82fe")) == []
    with pytest.raises(WebSocketProtocolError) as info:
        parser.feed(b"\x00\x65")
    assert info.value.close_code == 1009


def test_oversize_counts_all_fragments() -> None:
    parser = server(max_message_size=10)
    parser.feed(masked(Opcode.BINARY, b"123456", fin=False))
    with pytest.raises(WebSocketProtocolError) as info:
        parser.feed(masked(Opcode.CONTINUATION, b"12345")[:2])
    assert info.value.close_code == 1009


def test_message_of_exactly_the_maximum_size() -> None:
    parser = server(max_message_size=10)
    wire = masked(Opcode.TEXT, b"12345", fin=False) + masked(Opcode.CONTINUATION, b"67890")
    assert parser.feed(wire) == [TextMessage("1234567890")]


def test_fragment_flood_refused() -> None:
    flood = masked(Opcode.TEXT, b"x", fin=False) + masked(Opcode.CONTINUATION, b"x", fin=False)
    wire = flood[:7] + flood[7:] * 99_999
    with pytest.raises(WebSocketProtocolError) as info:
        server(max_fragments=1024).feed(wire)
    assert info.value.close_code == 1008


def test_fragment_flood_refused_at_the_first_fragment_over_the_limit() -> None:
    parser = server(max_fragments=1024)
    parser.feed(masked(Opcode.TEXT, b"x", fin=False))
    for _ in range(1023):
        assert parser.feed(masked(Opcode.CONTINUATION, b"x", fin=False)) == []
    with pytest.raises(WebSocketProtocolError) as info:
        parser.feed(masked(Opcode.CONTINUATION, b"x")[:2])
    assert info.value.close_code == 1008


def test_many_tiny_frames_in_one_chunk() -> None:
    frames = [masked(Opcode.BINARY, i.to_bytes(3, "big")) for i in range(50_000)]
    events = server().feed(b"".join(frames))
    assert events == [BinaryMessage(i.to_bytes(3, "big")) for i in range(50_000)]


def test_events_before_an_error_are_kept_and_the_parser_stays_failed() -> None:
    parser = server()
    with pytest.raises(WebSocketProtocolError) as info:
        parser.feed(HELLO_MASKED + masked(Opcode.CONTINUATION, b"x"))
    assert info.value.events == [TextMessage("Hello")]
    with pytest.raises(WebSocketProtocolError) as again:
        parser.feed(HELLO_MASKED)
    assert again.value is info.value


@pytest.mark.parametrize(("max_message_size", "max_fragments"), [(-1, 1024), (10, 0)])
def test_parser_limits_must_be_sane(max_message_size: int, max_fragments: int) -> None:
    with pytest.raises(LocalProtocolError):
        FrameParser(max_message_size=max_message_size, max_fragments=max_fragments)


# ------------------------------------------------------------------- encoding


def test_encode_close() -> None:
    assert ws.encode_close() == b"\x88\x02\x03\xe8"
    assert ws.encode_close(4000, "caf\u00e9") == b"\x88\x07\x0f\xa0caf\xc3\xa9"


def test_encode_text_takes_bytes_as_utf8() -> None:
    assert ws.encode_text("\u00e9".encode()) == ws.encode_text("\u00e9") == b"\x81\x02\xc3\xa9"


@pytest.mark.parametrize(
    "call",
    [
        lambda: ws.encode_ping(bytes(126)),
        lambda: ws.encode_frame(Opcode.PING, b"", fin=False),
        lambda: ws.encode_text("x", mask=b"abc"),
        lambda: ws.encode_close(1005),
        lambda: ws.encode_close(999),
        lambda: ws.encode_close(1000, "x" * 124),
    ],
)
def test_encode_misuse(call: object) -> None:
    with pytest.raises(LocalProtocolError):
        call()  # type: ignore[operator]


def test_encode_refuses_an_opcode_that_is_not_one() -> None:
    """The compiled build refuses a plain int where an Opcode is due at the call
    (TypeError), the pure-Python one when it checks the opcode."""
    with pytest.raises((TypeError, LocalProtocolError)):
        ws.encode_frame(3, b"")  # type: ignore[arg-type]


# ------------------------------------------------------------------- handshake

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
GOOD_REQUEST = {
    "host": "server.example.com",
    "upgrade": "websocket",
    "connection": "Upgrade",
    "sec-websocket-key": RFC_KEY,
    "sec-websocket-version": "13",
}


def test_accept_key_rfc_example() -> None:
    assert handshake.accept_key(RFC_KEY) == RFC_ACCEPT


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"upgrade": "WebSocket"},
        {"connection": "keep-alive, Upgrade"},
        {"upgrade": "h2c, websocket"},
    ],
)
def test_client_handshake_accepted(changes: dict[str, str]) -> None:
    assert handshake.check_client_handshake({**GOOD_REQUEST, **changes}) == RFC_KEY


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"upgrade": None}, 400, "Upgrade"),
        ({"upgrade": "h2c"}, 400, "Upgrade"),
        ({"connection": None}, 400, "Connection"),
        ({"connection": "keep-alive"}, 400, "Connection"),
        ({"sec-websocket-version": None}, 400, "Version"),
        ({"sec-websocket-version": "8"}, 426, "13"),
        ({"sec-websocket-key": None}, 400, "Key"),
        ({"sec-websocket-key": "not base64!"}, 400, "Key"),
        ({"sec-websocket-key": base64.b64encode(bytes(15)).decode()}, 400, "Key"),
        ({"sec-websocket-key": "\u00e9" * 24}, 400, "Key"),
    ],
)
def test_client_handshake_refused(changes: dict[str, str | None], status: int, words: str) -> None:
    headers = {k: v for k, v in {**GOOD_REQUEST, **changes}.items() if v is not None}
    with pytest.raises(RemoteProtocolError) as info:
        handshake.check_client_handshake(headers)
    assert info.value.status == status
    assert words in info.value.message


def test_server_handshake_response() -> None:
    assert handshake.server_handshake_response(RFC_KEY, [("Set-Cookie", "io=1")]) == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"Set-Cookie: io=1\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    "header", [("X-Evil", "a\r\nInjected: 1"), ("Bad Name", "x"), ("", "x"), ("a:b", "x")]
)
def test_header_injection_refused(header: tuple[str, str]) -> None:
    with pytest.raises(LocalProtocolError):
        handshake.server_handshake_response(RFC_KEY, [header])
    with pytest.raises(LocalProtocolError):
        handshake.client_handshake_request("h", "/", RFC_KEY, [header])


def test_client_handshake_request() -> None:
    assert handshake.client_handshake_request(
        "server.example.com", "/chat?x=1", RFC_KEY, [("Origin", "http://example.com")]
    ) == (
        b"GET /chat?x=1 HTTP/1.1\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Host: server.example.com\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Origin: http://example.com\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize("resource", ["chat", "/a b", "/caf\u00e9", "/a\r\nX: y"])
def test_client_handshake_request_bad_resource(resource: str) -> None:
    with pytest.raises(LocalProtocolError):
        handshake.client_handshake_request("h", resource, RFC_KEY)


def test_new_client_key() -> None:
    key = handshake.new_client_key()
    assert len(base64.b64decode(key, validate=True)) == 16
    assert key != handshake.new_client_key()


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """A test-only HTTP head parser: the first line and lower-cased headers."""
    first, *lines = head.decode("latin-1").split("\r\n")[:-2]
    return first, {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


def test_handshake_between_client_and_server_helpers() -> None:
    key = handshake.new_client_key()
    request_line, request = parse_head(handshake.client_handshake_request("h:1", "/s", key))
    assert request_line == "GET /s HTTP/1.1"
    status_line, response = parse_head(
        handshake.server_handshake_response(handshake.check_client_handshake(request))
    )
    assert status_line.startswith("HTTP/1.1 101 ")
    handshake.check_server_response(101, response, key)


GOOD_RESPONSE = {
    "upgrade": "websocket",
    "connection": "Upgrade",
    "sec-websocket-accept": RFC_ACCEPT,
}


@pytest.mark.parametrize(
    ("status", "changes", "words"),
    [
        (403, {}, "403"),
        (101, {"upgrade": None}, "Upgrade"),
        (101, {"connection": "close"}, "Connection"),
        (101, {"sec-websocket-accept": None}, "Accept"),
        (101, {"sec-websocket-accept": handshake.accept_key(handshake.new_client_key())}, "Accept"),
        (101, {"sec-websocket-extensions": "permessage-deflate"}, "extensions"),
        (101, {"sec-websocket-protocol": "chat"}, "protocol"),
    ],
)
def test_server_response_refused(status: int, changes: dict[str, str | None], words: str) -> None:
    headers = {k: v for k, v in {**GOOD_RESPONSE, **changes}.items() if v is not None}
    with pytest.raises(RemoteProtocolError) as info:
        handshake.check_server_response(status, headers, RFC_KEY)
    assert words in info.value.message


def test_server_response_accepted() -> None:
    handshake.check_server_response(101, GOOD_RESPONSE, RFC_KEY)
