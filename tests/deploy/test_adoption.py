"""``gunicorn -k gevent``: once gunicorn answered a long-polling request on a kept-alive
connection, geventsio's handler serves the connection (geventsio.serving.adoption),
with gunicorn's rules between requests: keepalive, max_requests, stopping.

A WebSocket, too, leaves gunicorn's request under -k gevent (its own greenlet, on a
duplicate of the connection). Which stack answered shows in the response: gunicorn's
sends ``Server: gunicorn``, pywsgi's (geventsio's handler) no ``Server`` header.
"""

from __future__ import annotations

import signal
import time

import orjson
import pytest

from tests.deploy.processes import Processes, Server
from tests.support import HttpClient
from tests.support.ws import WsClient

pytestmark = pytest.mark.e2e

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
WEBSOCKET = "/socket.io/?EIO=4&transport=websocket"


def handshake(http: HttpClient) -> str:
    opened = http.get(HANDSHAKE)
    assert opened.status == 200, opened
    assert opened.header("server") == "gunicorn"  # the first answer is gunicorn's
    return f"{HANDSHAKE}&sid={orjson.loads(opened.body[1:])['sid']}"


def closed_within(http: HttpClient, seconds: float) -> bool:
    """Whether the server ends the connection (EOF) within ``seconds``."""
    http.sock.settimeout(seconds)
    try:
        return http.sock.recv(1) == b""
    except TimeoutError:
        return False


def gunicorn(processes: Processes, *args: str, adopt: bool = True) -> Server:
    env = {} if adopt else {"SIO_APP_ADOPT": "0"}
    return processes.gunicorn("-k", "gevent", *args, env=env)


def test_the_rest_of_a_kept_alive_connection_is_served_by_geventsio(processes) -> None:
    server = gunicorn(processes, "--keep-alive", "30")
    with HttpClient("127.0.0.1", server.port) as http:
        target = handshake(http)
        posted = http.post(target, "40")
        polled = http.get(target)
        legacy = http.get("/pid")  # the application's other routes too, same connection

    assert (posted.status, posted.body, posted.header("server")) == (200, b"ok", None)
    assert polled.status == 200 and polled.body.startswith(b"40{"), polled
    assert polled.header("server") is None
    assert legacy.status == 200 and legacy.body.isdigit(), legacy
    assert "Traceback" not in server.process.output


def test_adopt_connections_false_leaves_every_request_to_gunicorn(processes) -> None:
    server = gunicorn(processes, "--keep-alive", "30", adopt=False)
    with HttpClient("127.0.0.1", server.port) as http:
        target = handshake(http)
        posted = http.post(target, "40")

    assert (posted.status, posted.header("server")) == (200, "gunicorn")


def test_an_adopted_connection_idle_past_keepalive_is_closed(processes) -> None:
    server = gunicorn(processes, "--keep-alive", "1")
    with HttpClient("127.0.0.1", server.port) as http:
        target = handshake(http)
        assert http.post(target, "40").header("server") is None  # adopted
        started = time.monotonic()
        assert closed_within(http, 15), "an idle adopted connection stayed open"
    assert time.monotonic() - started >= 0.5  # not at once: after the idle second


def test_adopted_requests_count_toward_max_requests(processes) -> None:
    server = gunicorn(processes, "--keep-alive", "30", "--max-requests", "4")
    with HttpClient("127.0.0.1", server.port) as http:
        handshake(http)  # request 1, gunicorn's
        pids = {http.get("/pid").body for _ in range(3)}  # requests 2 to 4, adopted
        assert closed_within(http, 15), "the worker did not restart after max_requests"
    assert len(pids) == 1
    server.process.wait_for(r"Autorestarting worker after current request")


def test_a_stopping_worker_closes_its_idle_adopted_connections(processes) -> None:
    server = gunicorn(processes, "--keep-alive", "30", "--graceful-timeout", "20")
    with HttpClient("127.0.0.1", server.port) as http:
        target = handshake(http)
        assert http.post(target, "40").header("server") is None  # adopted
        server.process.signal(signal.SIGTERM)
        # At once, not after the keepalive wait (30 s) or the graceful timeout (20 s).
        assert closed_within(http, 10), "a stopping worker kept an adopted connection"


def test_a_websocket_leaves_gunicorns_request_and_its_pool_slot(processes) -> None:
    """Under -k gevent a WebSocket runs on a duplicate of the connection, in a greenlet
    of its own: with a pool of two, five WebSockets are open at once and a polling
    request is still answered (each WebSocket used to keep its request's slot)."""
    server = gunicorn(processes, "--worker-connections", "2")
    sockets: list[WsClient] = []
    try:
        for n in range(5):
            ws = WsClient.connect("127.0.0.1", server.port, WEBSOCKET)
            sockets.append(ws)
            first = ws.recv(timeout=10)
            assert isinstance(first, str) and first.startswith("0{"), (n, first)
            ws.send_text("40")
            assert str(ws.recv(timeout=10)).startswith("40{")
        with HttpClient("127.0.0.1", server.port, timeout=10) as http:
            assert http.get(HANDSHAKE).status == 200
        for n, ws in enumerate(sockets):
            ws.send_text(f'421["echo",{n}]')
            assert ws.recv(timeout=10) == f"431[[{n}]]"
    finally:
        for ws in sockets:
            ws.close()
