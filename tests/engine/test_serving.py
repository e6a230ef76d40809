"""geventsio's pywsgi handler, the WSGI app around the engine, and serve()'s shutdown."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

import gevent
import pytest
from gevent import subprocess

from geventsio._types import DisconnectReason
from geventsio.protocol.engineio import decode_payload
from geventsio.wsgi import WSGIApp
from tests.support import (
    WsClient,
    assert_still_serving,
    build_request,
    decode_open,
    eio_target,
    elapsed,
    messages,
    open_websocket,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]


def legacy_app(environ, start_response):
    """A plain WSGI app that streams back what it was given."""
    body = environ["wsgi.input"].read()

    def stream():
        yield f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}".encode()
        yield f"?{environ['QUERY_STRING']}".encode()
        yield b" body=" + body

    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Legacy", "yes")])
    return stream()


def test_other_paths_and_methods_go_to_the_wrapped_app(eio_server):
    server = eio_server(wsgi_app=legacy_app)
    http = server.http()
    cases = [
        ("GET", "/", b""),
        ("POST", "/form?x=1", b"a=b"),
        ("DELETE", "/socket.io/extra", b""),
        ("GET", "/socket.iox?EIO=4&transport=polling", b""),
    ]
    for method, target, body in cases:
        response = http.request(method, target, body=body)
        assert response.status == 201
        assert response.header("x-legacy") == "yes"
        assert response.header("transfer-encoding") == "chunked"
        path, _, query = target.partition("?")
        assert response.body == f"{method} {path}?{query} body=".encode() + body
    assert server.session_count == 0
    assert_still_serving(server)


def test_the_engine_path_without_its_slash_is_the_engine(echo_server):
    response = echo_server.http().get("/socket.io?EIO=4&transport=polling")
    assert response.status == 200
    assert response.body.startswith(b"0{")
    echo_server.wait_sessions(1)


def test_other_paths_are_404_without_a_wrapped_app(echo_server):
    response = echo_server.http().get("/index.html")
    assert (response.status, response.body) == (404, b"Not Found")
    assert_still_serving(echo_server)


def test_tcp_nodelay_is_set_on_accepted_sockets(serve_app):
    seen = []

    def app(environ, start_response):
        sock = environ["geventsio.socket"]
        seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    server = serve_app(app)
    assert server.http().get("/").status == 200
    assert seen and seen[0] != 0


@pytest.mark.parametrize("path", ["/legacy", "engine"])
def test_connection_close_is_said_in_the_response(eio_server, path):
    server = eio_server(wsgi_app=legacy_app)
    target = eio_target(server.path) if path == "engine" else path
    http = server.http()
    response = http.request("GET", target, headers=[("Connection", "close")])
    assert response.status in (200, 201)
    assert response.closes_connection
    http.wait_eof()
    keep_alive = server.http()
    first = keep_alive.get("/legacy")
    assert not first.closes_connection
    assert keep_alive.get("/legacy").status == 201  # the connection was reused
    if path == "engine":
        client = server.polling()
        client.sid = decode_open(decode_payload(response.body)[0])["sid"]
        client.close()
    assert_still_serving(server)


def test_a_slow_client_does_not_block_others(echo_server):
    slow = echo_server.http()
    head = build_request("GET", eio_target(echo_server.path), slow.host_header)
    slowloris = gevent.spawn(slow.send_slowly, head[:4], 0.3)  # 4 bytes over 0.9 s

    client = echo_server.polling()
    client.handshake()
    client.send("fast")
    assert messages(client.get()) == ["fast"]
    ws, _ = open_websocket(echo_server)
    ws.send_text("4fast too")
    assert ws.recv() == "4fast too"
    client.close()
    ws.close()
    assert not slowloris.ready(), "the slow client finished first: nothing was proven"
    slowloris.get(timeout=5)
    assert not slow.peer_closed()  # the slow request is merely incomplete
    slow.close()
    assert_still_serving(echo_server)


def test_close_all_tells_waiting_polls_and_websockets(echo_server):
    polling = echo_server.polling()
    polling.handshake()
    pending = polling.spawn_get()
    socket = echo_server.handler.socket(polling.sid)
    wait_until(lambda: socket.polling.get_active)
    ws, data = open_websocket(echo_server)

    echo_server.engine.close_all()
    assert pending.get(timeout=5).body == b"1"
    close = ws.wait_closed()
    assert close is not None and close.code == 1000
    echo_server.wait_sessions(0)
    reasons = echo_server.handler.closed
    assert reasons[polling.sid] is reasons[data["sid"]] is DisconnectReason.SERVER_SHUTTING_DOWN
    assert_still_serving(echo_server)


def test_after_a_final_close_all_new_sessions_are_refused_with_503(echo_server):
    # A client reconnecting to a process that is shutting down must look elsewhere.
    echo_server.engine.close_all(drain_timeout=0.1, refuse_new=True)
    response = echo_server.http().get(eio_target(echo_server.path))
    assert response.status == 503
    assert response.json() == {"code": 3, "message": "Bad request"}
    assert echo_server.session_count == 0


def test_the_wsgi_app_shutdown_is_final(echo_server):
    # WSGIApp.shutdown() is what serve() and the gunicorn workers call when the process
    # stops: it refuses new sessions too (a plain close_all does not: see above).
    WSGIApp(echo_server.engine).shutdown()
    assert echo_server.http().get(eio_target(echo_server.path)).status == 503


def test_close_all_forgets_idle_polling_sessions_within_the_drain_timeout(eio_server):
    server = eio_server(ping_interval=20, ping_timeout=20)
    client = server.polling()
    client.handshake()
    server.engine.close_all(drain_timeout=0.5)
    server.wait_sessions(0, timeout=2.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen) -> None:
    def accepts() -> bool:
        assert process.poll() is None, "the server exited early"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    wait_until(accepts, 15.0, f"the server listening on {port}")


def test_serve_stops_cleanly_on_sigterm():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples/conformance/eio_server.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(ROOT),
    )
    try:
        wait_listening(port, process)
        ws = WsClient.connect("127.0.0.1", port, "/engine.io/?EIO=4&transport=websocket")
        assert ws.recv().startswith("0{")
        ws.send_text("4echo")
        assert ws.recv() == "4echo"
        start = time.monotonic()
        process.send_signal(signal.SIGTERM)
        close = ws.wait_closed(timeout=5)
        assert close is not None and close.code == 1000
        ws.abort()
        assert process.wait(timeout=5) == 0
        assert elapsed(start) < 5
    finally:
        if process.poll() is None:
            process.kill()
        _, err = process.communicate(timeout=5)
    assert b"shutting down" in err, err
