"""The take-over seam (geventsio.engine.takeover): how a request's connection becomes a
WebSocket under geventsio's handler."""

from __future__ import annotations

import os
import socket

import gevent
import gevent.socket
import pytest

from geventsio.engine import gevent_private
from geventsio.engine.server import EngineServer
from geventsio.engine.takeover import EnvironHeaders, hand_over
from geventsio.exceptions import RemoteProtocolError
from geventsio.options import EngineOptions
from geventsio.protocol.websocket import Opcode, encode_frame
from geventsio.protocol.websocket_handshake import (
    check_client_handshake,
    client_handshake_request,
    new_client_key,
)
from geventsio.wsgi import WSGIApp
from tests.engine.test_serving_paths import descriptors_of_connection
from tests.support import RecordingEcho, assert_still_serving, eio_target, open_websocket

ENVIRON = {
    "REQUEST_METHOD": "GET",
    "HTTP_HOST": "example.com",
    "HTTP_UPGRADE": "WebSocket",
    "HTTP_CONNECTION": "keep-alive, Upgrade",
    "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==",
    "HTTP_SEC_WEBSOCKET_VERSION": "13",
    "HTTP_X_CUSTOM_THING": "x",
    "wsgi.url_scheme": "http",
}


def test_environ_headers_read_the_environ_by_lower_case_dashed_name():
    headers = EnvironHeaders(ENVIRON)
    assert headers.get("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ=="
    assert headers["x-custom-thing"] == "x"
    assert headers.get("sec-websocket-extensions") is None
    assert headers.get("origin", "") == ""
    with pytest.raises(KeyError):
        headers["origin"]
    assert dict(headers) == {
        "host": "example.com",
        "upgrade": "WebSocket",
        "connection": "keep-alive, Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
        "x-custom-thing": "x",
    }
    assert len(headers) == 6


def test_the_handshake_checks_read_the_environ_headers():
    assert check_client_handshake(EnvironHeaders(ENVIRON)) == "dGhlIHNhbXBsZSBub25jZQ=="
    for key, value in [
        ("HTTP_UPGRADE", "h2c"),
        ("HTTP_CONNECTION", "keep-alive"),
        ("HTTP_SEC_WEBSOCKET_VERSION", "8"),
        ("HTTP_SEC_WEBSOCKET_KEY", "short"),
    ]:
        with pytest.raises(RemoteProtocolError):
            check_client_handshake(EnvironHeaders({**ENVIRON, key: value}))
    without_key = {k: v for k, v in ENVIRON.items() if k != "HTTP_SEC_WEBSOCKET_KEY"}
    with pytest.raises(RemoteProtocolError):
        check_client_handshake(EnvironHeaders(without_key))


@pytest.fixture
def echo_server(serve_app):
    """An Engine.IO echo on geventsio's own handler."""

    def start():
        handler = RecordingEcho()
        engine = EngineServer(handler, EngineOptions())
        return serve_app(WSGIApp(engine), engine=engine, handler=handler)

    return start


def server_descriptors(server, ws) -> int:
    return descriptors_of_connection(server.port, ws.http.sock.getsockname()[1])


@pytest.mark.parametrize("held", [True, False], ids=["held-open", "duplicated"])
def test_the_taken_over_connection_is_one_descriptor_closed_when_the_websocket_ends(
    echo_server, monkeypatch, held
):
    """The request's socket is held open past the server's close of it (or, where the
    hold cannot be taken, duplicated and the request's copy closed): one descriptor while
    the WebSocket lives, none once it has ended."""
    if not held:
        monkeypatch.setattr(gevent_private, "SOCKET_HOLD", False)
    server = echo_server()
    # The OPEN packet comes from the WebSocket's greenlet, which starts once the
    # request's has ended (and the server has closed its socket).
    ws, data = open_websocket(server)
    ws.send_text("4ping")
    assert ws.recv() == "4ping"
    assert server_descriptors(server, ws) == 1
    ws.send_text("1")  # the client's CLOSE: the server ends the session and the WebSocket
    ws.wait_eof()
    server.wait_sessions(0)
    with gevent.Timeout(5):
        while server_descriptors_left(server, ws):
            gevent.sleep(0.01)
    assert server.handler.messages_of(data["sid"]) == ["ping"]
    ws.close()
    assert_still_serving(server)


def server_descriptors_left(server, ws) -> bool:
    try:
        return server_descriptors(server, ws) > 0
    except AssertionError:  # the connection left the kernel's table
        return False


def test_frames_sent_with_the_upgrade_request_are_read_first(echo_server):
    server = echo_server()
    early = b"".join(
        encode_frame(Opcode.TEXT, text.encode(), mask=os.urandom(4)) for text in ("4one", "4two")
    )
    ws = server.websocket(eio_target(server.path, "websocket"), pipelined=early)
    assert ws.recv().startswith("0")
    assert [ws.recv(), ws.recv()] == ["4one", "4two"]
    ws.send_text("4three")
    assert ws.recv() == "4three"
    ws.close()
    assert_still_serving(server)


def test_the_101_answer_leaves_with_the_open_packet(echo_server):
    """Deferred, the handshake's answer goes out in the same segment as the session's
    first packet (one read gets both)."""
    server = echo_server()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            client_handshake_request(
                f"127.0.0.1:{server.port}", eio_target(server.path, "websocket"), new_client_key()
            )
        )
        received = sock.recv(65536)
    head, _, frames = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert frames[:1] == b"\x81" and frames[2:4] == b"0{", frames


@pytest.mark.parametrize("known", [True, False], ids=["count-known", "count-unknown"])
def test_hand_over_gives_back_what_the_request_reader_read_ahead(known):
    server_end, client_end = gevent.socket.socketpair()
    try:
        rfile = server_end.makefile("rb", 1024)
        client_end.sendall(b"HEAD\r\n\r\nearly")
        assert rfile.peek(1024)[:6] == b"HEAD\r\n"  # the request and what follows it
        rfile.read(8)
        sock, reader = hand_over(server_end, rfile, 5 if known else None)
        assert sock is server_end and not reader.empty
        assert reader.read1(100) == b"early"
        client_end.sendall(b"later")
        assert reader.read1(100) == b"later"
        sock.close()  # as the server does when the request ends: the hold keeps it open
        client_end.sendall(b"still")
        assert reader.read1(100) == b"still"
        reader.close()
        assert client_end.recv(10) == b""  # now it is really closed
    finally:
        client_end.close()
        server_end.close()


def test_hand_over_reads_nothing_when_the_head_left_the_buffer_empty():
    server_end, client_end = gevent.socket.socketpair()
    try:
        rfile = server_end.makefile("rb", 1024)
        client_end.sendall(b"HEAD\r\n\r\n")
        assert rfile.peek(1024) == b"HEAD\r\n\r\n"
        rfile.read(8)
        client_end.sendall(b"frame")  # in the kernel, not in the reader's buffer
        sock, reader = hand_over(server_end, rfile, 0)
        assert reader.empty
        assert sock.recv(100) == b"frame"
        sock.close()
        reader.close()
    finally:
        client_end.close()
        server_end.close()
