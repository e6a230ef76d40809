"""Sessions opened directly on WebSocket, and hostile WebSocket clients."""

from __future__ import annotations

import logging
import struct
import time

import gevent
import pytest

from geventsio._types import DisconnectReason
from geventsio.engine.websocket import CLOSE_HANDSHAKE_TIMEOUT
from geventsio.protocol.websocket import CloseReceived, Opcode
from tests.support import (
    assert_still_serving,
    eio_target,
    elapsed,
    live_greenlets,
    open_websocket,
    wait_until,
)
from tests.support.server import describe_greenlet


def session_of(server, open_data):
    return server.handler.socket(open_data["sid"])


def assert_closed_with(ws, code: int | None) -> None:
    close = ws.wait_closed()
    assert isinstance(close, CloseReceived), "expected a close frame"
    if code is not None:
        assert close.code == code, close
    ws.wait_eof()


# -- a normal session -------------------------------------------------------------------


def test_open_packet_comes_first_and_offers_no_upgrade(eio_server):
    server = eio_server(ping_interval=0.5, ping_timeout=0.4)
    ws, data = open_websocket(server)
    assert data["upgrades"] == []
    assert (data["pingInterval"], data["pingTimeout"]) == (500, 400)
    assert server.session_count == 1
    ws.close()
    assert_still_serving(server)


def test_text_and_binary_echo(echo_server):
    ws, data = open_websocket(echo_server)
    ws.send_text("4hello é")
    assert ws.recv() == "4hello é"
    ws.send_binary(bytes(range(256)))
    assert ws.recv() == bytes(range(256))
    ws.send_binary(b"")
    assert ws.recv() == b""
    assert echo_server.handler.messages_of(data["sid"]) == ["hello é", bytes(range(256)), b""]
    ws.close()
    assert_still_serving(echo_server)


def test_a_message_in_fragments_under_the_limit_is_delivered(echo_server):
    ws, _ = open_websocket(echo_server)
    parts = [b"4"] + [bytes([65 + i % 26]) for i in range(99)]
    ws.send_frame(Opcode.TEXT, parts[0], fin=False)
    for part in parts[1:-1]:
        ws.send_frame(Opcode.CONTINUATION, part, fin=False)
    ws.send_frame(Opcode.CONTINUATION, parts[-1])
    assert ws.recv() == b"".join(parts).decode()
    ws.close()
    assert_still_serving(echo_server)


def test_websocket_ping_frames_are_answered(echo_server):
    ws, _ = open_websocket(echo_server)
    ws.send_frame(Opcode.PING, b"are you there")
    event = ws.next_event()
    assert event is not None and event.payload == b"are you there"
    ws.close()
    assert_still_serving(echo_server)


def test_client_close_packet_ends_the_session(echo_server):
    ws, data = open_websocket(echo_server)
    ws.send_text("1")
    assert_closed_with(ws, None)
    echo_server.wait_sessions(0)
    assert echo_server.handler.closed[data["sid"]] is DisconnectReason.TRANSPORT_CLOSE
    assert_still_serving(echo_server)


def test_a_vanished_client_is_noticed_at_once(eio_server):
    server = eio_server(ping_interval=20, ping_timeout=20)
    ws, data = open_websocket(server)
    start = time.monotonic()
    ws.abort()
    server.wait_sessions(0, timeout=2.0)
    assert elapsed(start) < 2.0
    assert server.handler.closed[data["sid"]] is DisconnectReason.TRANSPORT_CLOSE
    assert_still_serving(server)


def test_a_client_that_never_pongs_is_closed(eio_server):
    server = eio_server(ping_interval=0.2, ping_timeout=0.2)
    start = time.monotonic()
    ws, data = open_websocket(server)
    assert ws.recv() == "2"
    ws.wait_closed()
    server.wait_sessions(0, timeout=3.0)
    assert 0.35 <= elapsed(start) < 2.0
    assert server.handler.closed[data["sid"]] is DisconnectReason.PING_TIMEOUT
    assert_still_serving(server)


def test_a_client_that_pongs_stays(eio_server):
    server = eio_server(ping_interval=0.1, ping_timeout=0.3)
    ws, _ = open_websocket(server)
    for _ in range(5):
        assert ws.recv() == "2"
        ws.send_text("3")
    assert server.session_count == 1
    ws.close()
    assert_still_serving(server)


# -- hostile clients --------------------------------------------------------------------


def test_a_ping_from_the_client_closes_the_session(echo_server, caplog):
    caplog.set_level(logging.INFO, "geventsio")
    ws, data = open_websocket(echo_server)
    ws.send_text("2")
    ws.send_text("4after")
    assert_closed_with(ws, None)
    echo_server.wait_sessions(0)
    assert echo_server.handler.closed[data["sid"]] is DisconnectReason.TRANSPORT_ERROR
    assert echo_server.handler.messages == []
    assert "invalid heartbeat direction" in caplog.text
    assert_still_serving(echo_server)


def test_an_oversize_frame_is_refused_from_its_header(eio_server):
    server = eio_server(max_payload=1_000_000)
    ws, data = open_websocket(server)
    start = time.monotonic()
    ws.send_raw(struct.pack("!BBQ", 0x82, 0x80 | 127, 100_000_000))
    assert_closed_with(ws, 1009)
    assert elapsed(start) < 1.0
    server.wait_sessions(0)
    assert server.handler.closed[data["sid"]] is DisconnectReason.TRANSPORT_ERROR
    assert_still_serving(server)


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ((Opcode.TEXT, b"9unknown"), None, DisconnectReason.PARSE_ERROR),
        ((Opcode.TEXT, b""), None, DisconnectReason.PARSE_ERROR),
        ((Opcode.TEXT, b"0{}"), None, DisconnectReason.PARSE_ERROR),
        ((Opcode.TEXT, b"4\xff\xfe"), 1007, DisconnectReason.TRANSPORT_ERROR),
        ((Opcode.CONTINUATION, b"x"), 1002, DisconnectReason.TRANSPORT_ERROR),
    ],
    ids=["unknown-type", "empty-text", "open-from-client", "bad-utf8", "stray-continuation"],
)
def test_malformed_messages_close_the_websocket(echo_server, frame, code, reason):
    ws, data = open_websocket(echo_server)
    ws.send_frame(*frame)
    assert_closed_with(ws, code)
    echo_server.wait_sessions(0)
    assert echo_server.handler.closed[data["sid"]] is reason
    assert echo_server.handler.messages == []
    assert_still_serving(echo_server)


def test_a_slow_consumer_is_closed_with_bounded_memory(eio_server, caplog):
    limit = 64 * 1024
    server = eio_server(max_buffer_size=limit)
    ws = server.websocket(eio_target(server.path, "websocket"), rcvbuf=4096)
    session = wait_until(lambda: server.handler.connected)[0]
    chunk = "x" * 8192
    sent = 0
    while session.connected and sent < 20_000:
        session.send(chunk)
        sent += 1
        assert session.websocket._writer.buffered <= limit
        gevent.sleep(0)
    assert not session.connected, "the buffer never overflowed"
    server.wait_sessions(0)
    assert server.handler.closed[session.sid] is DisconnectReason.TRANSPORT_ERROR
    warnings = [r for r in caplog.records if "client is not reading" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    ws.abort()
    assert_still_serving(server)


def test_sends_after_an_overflow_do_not_pile_up_closes(eio_server, caplog):
    limit = 64 * 1024
    server = eio_server(max_buffer_size=limit)
    ws = server.websocket(eio_target(server.path, "websocket"), rcvbuf=4096)
    session = wait_until(lambda: server.handler.connected)[0]
    for _ in range(2000):  # a broadcast loop: no yield between sends
        session.send("y" * 8192)
    server.wait_sessions(0)
    ws.abort()
    warnings = [r for r in caplog.records if "client is not reading" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([("Sec-WebSocket-Version", "13")], 400),
        ([("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "c2hvcnQ=")], 400),
        ([("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")], 400),
        ([("Sec-WebSocket-Version", "8"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")], 426),
    ],
    ids=["no-key", "short-key", "no-version", "old-version"],
)
def test_a_bad_websocket_handshake_is_refused_before_101(echo_server, headers, status):
    response = echo_server.http().request(
        "GET",
        eio_target(echo_server.path, "websocket"),
        headers=[("Upgrade", "websocket"), ("Connection", "Upgrade"), *headers],
    )
    assert response.status == status
    assert response.json()["code"] == 3
    assert_still_serving(echo_server)


def test_an_unsupported_websocket_version_is_told_the_supported_one(echo_server):
    response = echo_server.http().request(
        "GET",
        eio_target(echo_server.path, "websocket"),
        headers=[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "8"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )
    assert response.status == 426
    assert response.header("sec-websocket-version") == "13"


def test_polling_requests_for_a_websocket_session_are_refused(echo_server, caplog):
    caplog.set_level(logging.INFO, "geventsio")
    ws, data = open_websocket(echo_server)
    for method in ("GET", "POST"):
        response = echo_server.http().request(
            method, eio_target(echo_server.path, "polling", data["sid"]), body=b"4x"
        )
        assert response.status == 400
        assert response.json() == {"code": 3, "message": "Bad request"}
    assert "transport mismatch" in caplog.text
    ws.send_text("4unharmed")
    assert ws.recv() == "4unharmed"
    assert echo_server.handler.messages_of(data["sid"]) == ["unharmed"]
    ws.close()
    assert_still_serving(echo_server)


# -- through gevent-websocket's handler (wsgi.websocket) ---------------------------------


def test_gevent_websocket_handler_echoes_text_and_binary(eio_server):
    server = eio_server(gevent_websocket=True)
    ws, data = open_websocket(server)
    assert data["upgrades"] == []
    ws.send_text("4over gevent-websocket")
    assert ws.recv() == "4over gevent-websocket"
    ws.send_binary(b"\x00\x01\x02")
    assert ws.recv() == b"\x00\x01\x02"
    ws.close()
    server.wait_sessions(0)
    assert_still_serving(server)


def test_gevent_websocket_refused_origin_is_closed_after_101_with_1008(eio_server):
    # gevent-websocket answers 101 before the application runs: the best left is 1008.
    server = eio_server(gevent_websocket=True)
    ws = server.websocket(
        eio_target(server.path, "websocket"), headers=[("Origin", "http://evil.example")]
    )
    assert_closed_with(ws, 1008)
    assert server.session_count == 0
    assert_still_serving(server)


def test_gevent_websocket_server_close_sends_a_valid_close_frame(eio_server):
    server = eio_server(gevent_websocket=True)
    ws, data = open_websocket(server)
    server.handler.socket(data["sid"]).close()
    assert_closed_with(ws, 1000)
    server.wait_sessions(0)
    assert server.handler.closed[data["sid"]] is DisconnectReason.FORCED_CLOSE
    assert_still_serving(server)


def test_a_client_that_never_answers_the_close_is_cut_off(eio_server):
    # The server closes; the client neither answers the close frame nor closes the TCP
    # connection: the server ends it after its close-handshake timeout.
    server = eio_server()
    ws, data = open_websocket(server)
    ws.reply_to_close = False
    server.handler.socket(data["sid"]).close()
    assert isinstance(ws.wait_closed(), CloseReceived)
    ws.wait_eof(timeout=CLOSE_HANDSHAKE_TIMEOUT + 10)
    server.wait_sessions(0)
    assert server.handler.closed[data["sid"]] is DisconnectReason.FORCED_CLOSE
    assert_still_serving(server)


def test_no_greenlet_outlives_a_websocket_closed_for_a_parse_error(echo_server):
    ws, _ = open_websocket(echo_server)
    ws.send_text("9unknown")
    assert_closed_with(ws, None)
    echo_server.wait_sessions(0)
    wait_until(
        lambda: not [g for g in live_greenlets() if "RawWebSocket" in describe_greenlet(g)],
        1.0,
        "the connection's greenlets gone",
    )


def test_gevent_websocket_oversize_message_is_closed_with_1009(eio_server):
    server = eio_server(gevent_websocket=True, max_payload=1000)
    ws, _ = open_websocket(server)
    ws.send_binary(b"x" * 5000)
    assert_closed_with(ws, 1009)
    server.wait_sessions(0)
    assert server.handler.messages == []
    assert_still_serving(server)
