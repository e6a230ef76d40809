"""The five ways of serving geventsio (and plain pywsgi), each a real process, with the
real JS client.

Every path gets the same end-to-end scenario, the same kill-and-restart (SIGTERM: the
client hears a disconnect at once and reconnects to the new process) and the same
hostile clients. Where gevent-websocket's handler answers ``101`` before the application
runs, a refused WebSocket is closed with 1008 instead of answered 403.
"""

from __future__ import annotations

import os
import signal
import struct
import time
from collections.abc import Iterator

import pytest

from geventsio.protocol.websocket import CloseReceived
from tests.deploy.processes import PYTHON, Processes, Server, free_port
from tests.deploy.test_gunicorn import GEVENT_WS_WORKER, OUR_WORKER, SCENARIO, is_event
from tests.support import HttpClient, eio_target
from tests.support.node import run_node
from tests.support.ws import HandshakeRefused, WsClient

pytestmark = pytest.mark.e2e

PATHS = [
    "runner",
    "gunicorn-gevent",
    "gunicorn-geventsio-worker",
    "gunicorn-gevent-websocket-worker",
    "pywsgi-gevent-websocket",
    "pywsgi",  # pywsgi's own handler: the socket is found under wsgi.input
    "gunicorn-gevent_pywsgi",
]
WORKERS = {
    "gunicorn-gevent": "gevent",
    "gunicorn-geventsio-worker": OUR_WORKER,
    "gunicorn-gevent-websocket-worker": GEVENT_WS_WORKER,
    "gunicorn-gevent_pywsgi": "gevent_pywsgi",
}
#: Paths whose handler answers the WebSocket handshake before the application runs.
ANSWERS_BEFORE_APP = {"gunicorn-gevent-websocket-worker", "pywsgi-gevent-websocket"}
STRICT = {"SIO_APP_STRICT": "1"}
SOCKETIO = eio_target("/socket.io/", "websocket")


def start(processes: Processes, path: str, port: int = 0, env: dict[str, str] | None = None):
    """Serve ``tests.deploy.sio_app:app`` on ``path``; wait until it answers."""
    if path in WORKERS:
        return processes.gunicorn("-k", WORKERS[path], "--graceful-timeout", "20", env=env)
    module = ["-m", "geventsio", "tests.deploy.sio_app:app", "--port", str(port)]
    if path.startswith("pywsgi"):
        handler = path.removeprefix("pywsgi-") if "-" in path else "pywsgi"
        module = ["-m", "tests.deploy.pywsgi_server", str(port), handler]
    process = processes.start([PYTHON, *module], env=env)
    match = process.wait_for(r"serving on http://127\.0\.0\.1:(\d+)")
    return Server(process, int(match.group(1)))


@pytest.fixture(scope="module", params=PATHS)
def strict(request: pytest.FixtureRequest) -> Iterator[tuple[str, Server]]:
    """One server per path with one allowed Origin and max_payload=1000."""
    started = Processes()
    try:
        yield request.param, start(started, request.param, env=STRICT)
    finally:
        started.kill_all()


def websocket(server: Server, **options) -> WsClient:
    return WsClient.connect("127.0.0.1", server.port, SOCKETIO, **options)


def opened(server: Server) -> WsClient:
    ws = websocket(server)
    first = ws.recv()
    assert isinstance(first, str) and first.startswith("0"), first
    return ws


def assert_closed_with(ws: WsClient, code: int) -> None:
    close = ws.wait_closed()
    assert isinstance(close, CloseReceived), "expected a close frame"
    assert close.code == code, close
    ws.wait_eof()


def test_every_transport_with_emit_ack_and_broadcast(strict: tuple[str, Server]) -> None:
    _, server = strict
    result = run_node(SCENARIO, server.url, "polling", "websocket", "upgrade", timeout=30)

    assert result["ok"], (result, server.process.output)
    for run in result["results"]:
        assert run["echo"] == ["héllo ✓", [0, 1, 255], {"n": 1}]
        assert (run["sent"], run["heard"]) == ("sent", "to the room")
    assert "Traceback" not in server.process.output


def test_a_foreign_origin_never_gets_101_where_geventsio_answers(
    strict: tuple[str, Server],
) -> None:
    path, server = strict
    foreign = [("Origin", "http://evil.example")]
    if path in ANSWERS_BEFORE_APP:
        assert_closed_with(websocket(server, headers=foreign), 1008)
        server.process.wait_for(r"WARNING .*gevent-websocket's WebSocketHandler", timeout=5)
    else:
        with pytest.raises(HandshakeRefused) as refused:
            websocket(server, headers=foreign)
        assert refused.value.response.status == 403


def test_an_unmasked_frame_is_closed_with_1002(strict: tuple[str, Server]) -> None:
    ws = opened(strict[1])
    ws.send_raw(struct.pack("!BB", 0x81, 6) + b"40ping")
    assert_closed_with(ws, 1002)


def test_a_fragment_flood_is_closed_past_max_payload(strict: tuple[str, Server]) -> None:
    ws = opened(strict[1])
    sender = ws.flood_with_fragments(5000)
    assert_closed_with(ws, 1009)
    sender.join(5)


def test_an_invalid_key_gets_400(strict: tuple[str, Server]) -> None:
    with HttpClient("127.0.0.1", strict[1].port) as http:
        http.send_request(
            "GET",
            SOCKETIO,
            headers=[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "c2hvcnQ="),
            ],
        )
        assert http.read_head().status == 400


def test_garbage_after_the_upgrade_is_closed(strict: tuple[str, Server]) -> None:
    ws = websocket(strict[1], pipelined=b"\x00garbage\r\n\r\n" * 4)
    assert_closed_with(ws, 1002)


@pytest.mark.parametrize("path", PATHS)
def test_sigterm_moves_the_client_to_the_new_process(processes: Processes, path: str) -> None:
    port = free_port()
    server = start(processes, path, port)
    client = processes.node_client("watch.mjs", server.url, "websocket")
    first = client.wait_event(is_event("connect"), what="a connection")["pid"]

    signalled = time.monotonic()
    if path in WORKERS:  # gunicorn's arbiter starts a replacement worker
        os.kill(first, signal.SIGTERM)
    else:  # a single process: the next one is started on the same port
        server.process.signal(signal.SIGTERM)
    client.wait_event(is_event("disconnect"), timeout=5, what="a disconnect")
    heard_after = time.monotonic() - signalled
    if path not in WORKERS:
        server.process.wait(timeout=10)
        start(processes, path, port)
    client.wait_event(
        lambda e: e.get("event") == "connect" and e.get("pid") not in (None, first),
        timeout=15,
        what="a connection to the new process",
    )
    moved_after = time.monotonic() - signalled

    assert heard_after < 2.0, heard_after
    assert moved_after < 10, moved_after
    # No attempt waited for its connect timeout (a refusal after 101 is not heard).
    assert not [e for e in client.of("connect_error") if e.get("message") == "timeout"]
