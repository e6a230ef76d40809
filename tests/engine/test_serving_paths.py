"""The same WebSocket behaviour on every pywsgi handler the application may run under.

geventsio's handler, pywsgi's own, and gevent-websocket's (which answers ``101`` before
the application runs) all hand the connection to geventsio's framing: the limits and the
answers to hostile clients are the same. The gunicorn workers are covered, with real
gunicorn processes, in ``tests/deploy/test_serving_paths.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct

import pytest
from gevent import pywsgi
from geventwebsocket.handler import WebSocketHandler

from geventsio._types import DisconnectReason
from geventsio.engine.server import EngineServer
from geventsio.options import EngineOptions
from geventsio.protocol.websocket import CloseReceived
from geventsio.wsgi import WSGIApp
from tests.support import RecordingEcho, assert_still_serving, eio_target, open_websocket
from tests.support.ws import HandshakeRefused

HANDLERS = {"geventsio": None, "pywsgi": pywsgi.WSGIHandler, "gevent-websocket": WebSocketHandler}
#: Handlers that answer the opening handshake themselves, before the application runs.
ANSWERS_BEFORE_APP = {"gevent-websocket"}
FOREIGN = [("Origin", "http://evil.example")]


@pytest.fixture(params=list(HANDLERS))
def host(request):
    return request.param


@pytest.fixture
def serve(serve_app, host):
    def start(**options):
        handler = RecordingEcho()
        engine = EngineServer(
            handler, EngineOptions(cors_allowed_origins=["http://good.example"], **options)
        )
        return serve_app(
            WSGIApp(engine), engine=engine, handler=handler, handler_class=HANDLERS[host]
        )

    return start


def assert_closed_with(ws, code):
    close = ws.wait_closed()
    assert isinstance(close, CloseReceived), "expected a close frame"
    assert close.code == code, close
    ws.wait_eof()


def test_echo_in_text_and_binary(serve):
    server = serve()
    ws, data = open_websocket(server)
    ws.send_text("4héllo")
    assert ws.recv() == "4héllo"
    ws.send_binary(bytes(range(256)))
    assert ws.recv() == bytes(range(256))
    assert server.handler.messages_of(data["sid"]) == ["héllo", bytes(range(256))]
    ws.close()
    assert_still_serving(server)


def descriptors_of_connection(server_port: int, client_port: int) -> int:
    """How many of this process's file descriptors hold the server's end of one TCP
    connection (from /proc: its socket's inode, then the descriptors naming it)."""
    wanted = (f"{server_port:04X}", f"{client_port:04X}")
    inodes = set()
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            ports = (fields[1].split(":")[1], fields[2].split(":")[1])
            if ports == wanted:
                inodes.add(f"socket:[{fields[9]}]")
    assert len(inodes) == 1, inodes
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/self/fd/{fd}") in inodes
    return count


def test_a_websocket_holds_one_descriptor_not_the_requests_copy_too(serve):
    """The connection is taken over from its HTTP request without a second descriptor
    left for the garbage collector to find: geventsio's handler hands over the request's
    own socket, held open past the server's close of it; gevent-websocket's is duplicated
    and the request's copy closed then."""
    server = serve()
    ws, _ = open_websocket(server)
    ws.send_text("4ping")
    assert ws.recv() == "4ping"
    assert descriptors_of_connection(server.port, ws.http.sock.getsockname()[1]) == 1
    ws.close()
    assert_still_serving(server)


def test_a_foreign_origin_never_reaches_a_handler(serve, host):
    server = serve()
    target = eio_target(server.path, "websocket")
    if host in ANSWERS_BEFORE_APP:  # 101 was sent before geventsio saw the request
        ws = server.websocket(target, headers=FOREIGN)
        assert_closed_with(ws, 1008)
    else:
        with pytest.raises(HandshakeRefused) as refused:
            server.websocket(target, headers=FOREIGN)
        assert refused.value.response.status == 403
    assert server.handler.connected == []
    assert_still_serving(server)


def test_gevent_websocket_is_named_once_in_the_log_at_the_first_request(serve, host, caplog):
    server = serve()
    server.http().get("/elsewhere")  # not even a Socket.IO request
    named = [r for r in caplog.records if "gevent-websocket's WebSocketHandler" in r.getMessage()]
    assert len(named) == (1 if host in ANSWERS_BEFORE_APP else 0)
    for _ in range(2):
        ws, _ = open_websocket(server)
        ws.close()
    named = [r for r in caplog.records if "gevent-websocket's WebSocketHandler" in r.getMessage()]
    assert len(named) == (1 if host in ANSWERS_BEFORE_APP else 0)
    assert all(r.levelno == logging.WARNING for r in named)


def test_an_unmasked_frame_is_closed_with_1002(serve):
    server = serve()
    ws, _ = open_websocket(server)
    ws.send_raw(struct.pack("!BB", 0x81, 6) + b"4plain")
    assert_closed_with(ws, 1002)
    server.wait_sessions(0)
    assert server.handler.messages == []
    assert_still_serving(server)


@pytest.mark.parametrize(
    ("options", "code"),
    [({"max_payload": 1000, "max_websocket_fragments": 1_000_000}, 1009), ({}, 1008)],
    ids=["past-max-payload", "past-max-fragments"],
)
def test_a_fragment_flood_is_closed(serve, options, code):
    server = serve(**options)
    ws, data = open_websocket(server)
    sender = ws.flood_with_fragments(5000)
    assert_closed_with(ws, code)
    sender.join(5)
    server.wait_sessions(0)
    assert server.handler.messages == []
    assert server.handler.closed[data["sid"]] is DisconnectReason.TRANSPORT_ERROR
    assert_still_serving(server)


@pytest.mark.parametrize("key", ["c2hvcnQ=", "not base64 at all!"], ids=["short", "not-base64"])
def test_an_invalid_key_is_refused_without_101(serve, host, key):
    server = serve()
    headers = [("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", key)]
    http = server.http()
    http.send_request(
        "GET",
        eio_target(server.path, "websocket"),
        headers=[("Upgrade", "websocket"), ("Connection", "Upgrade"), *headers],
    )
    status = http.read_head().status  # gevent-websocket's bodies are not always whole
    if host in ANSWERS_BEFORE_APP and key.endswith("!"):
        # gevent-websocket's own answer, before the application runs (its base64 check
        # raises): documented in docs/deployment.md.
        assert status == 500
    else:
        assert status == 400
    assert server.handler.connected == []
    assert_still_serving(server)


def test_garbage_right_after_the_upgrade_request_is_closed(serve):
    server = serve()
    ws = server.websocket(
        eio_target(server.path, "websocket"), pipelined=b"\x00garbage\r\n\r\n" * 4
    )
    assert ws.recv().startswith("0")  # the OPEN packet, then the garbage is read
    assert_closed_with(ws, 1002)
    server.wait_sessions(0)
    assert server.handler.messages == []
    assert_still_serving(server)


def test_a_websocket_opened_while_shutting_down_is_sent_elsewhere(serve, host):
    server = serve()
    server.engine.close_all(refuse_new=True, drain_timeout=0.1)
    target = eio_target(server.path, "websocket")
    if host in ANSWERS_BEFORE_APP:
        # After a 101 the official client hears no refusal until its connect timeout:
        # the session opens and is closed at once, and the client reconnects at once.
        ws, _ = open_websocket(server)
        assert_closed_with(ws, 1000)
    else:
        with pytest.raises(HandshakeRefused) as refused:
            server.websocket(target)
        assert refused.value.response.status == 503
    server.wait_sessions(0)


@pytest.mark.parametrize("adopt", [True, False], ids=["adopting", "not-adopting"])
def test_a_kept_alive_connection_is_served_by_geventsios_handler_after_one_answer(
    serve_app, host, adopt
):
    """After its first Engine.IO answer, the rest of a kept-alive connection is read by
    geventsio's handler (geventsio.serving.adoption): what the next request's environ
    shows. ``adopt_connections=False`` leaves it to the server's own handler."""
    seen: list[bool] = []

    def legacy(environ, start_response):
        seen.append("geventsio.socket" in environ)  # set by geventsio's handler only
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    handler = RecordingEcho()
    engine = EngineServer(handler, EngineOptions())
    app = WSGIApp(engine, legacy, adopt_connections=adopt)
    server = serve_app(app, engine=engine, handler=handler, handler_class=HANDLERS[host])
    with server.http() as http:
        assert http.get("/legacy").status == 200  # before any Engine.IO request
        opened = http.get(eio_target(server.path, "polling"))
        assert opened.status == 200, opened
        assert http.get("/legacy").status == 200

    ours = host == "geventsio"
    assert seen == [ours, ours or adopt]
