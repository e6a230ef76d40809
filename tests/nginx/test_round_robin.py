"""The negative control: the example configuration without ``ip_hash`` (nginx's default,
round-robin) breaks long-polling, and shows why stickiness is needed; WebSocket-only
clients do not need it.

Round-robin over three servers, with one nginx worker, sends consecutive requests to
consecutive servers: a polling session's second request never reaches the server that
opened it.
"""

from __future__ import annotations

import time

from tests.nginx.harness import NAMES, Backend, Request, StartNginx, by_name, run_clients
from tests.support.engineio import eio_target
from tests.support.http import HttpClient
from tests.support.waiting import elapsed, wait_until

#: Seconds within which a polling session fails without stickiness.
FAILS_WITHIN = 3.0

STICKY_HINT = "enable sticky sessions in the load balancer, or use WebSocket only"


def backend_at(backends: list[Backend], request: Request) -> Backend:
    """The backend that answered ``request``."""
    (backend,) = [b for b in backends if b.address == request.upstream]
    return backend


def test_polling_session_is_unknown_on_the_next_server(
    backends: list[Backend], start_nginx: StartNginx
) -> None:
    nginx = start_nginx(backends, balance=None)
    client = HttpClient("127.0.0.1", nginx.port)
    started = time.monotonic()
    handshake = client.get(eio_target("/socket.io/"))
    assert handshake.status == 200 and handshake.text.startswith('0{"sid":"'), handshake
    sid = handshake.text.split('"')[3]
    poll = client.get(eio_target("/socket.io/", sid=sid))
    assert elapsed(started) < FAILS_WITHIN
    assert poll.status == 400, poll
    assert poll.json() == {"code": 1, "message": "Session ID unknown"}

    first, second = nginx.wait_requests(lambda rs: len(rs) == 2, "both requests")
    assert first.upstream != second.upstream
    opener, stranger = backend_at(backends, first), backend_at(backends, second)
    wait_until(
        lambda: STICKY_HINT in stranger.stderr(), 5.0, f"{stranger.name} logs the sticky hint"
    )
    assert f"unknown session id {sid[:32]!r}" in stranger.stderr()
    assert "unknown session id" not in opener.stderr()


def test_polling_client_fails_fast_without_stickiness(
    backends: list[Backend], start_nginx: StartNginx
) -> None:
    nginx = start_nginx(backends, balance=None)
    client = {"name": "poll", "address": "127.0.0.1", "transports": ["polling"]}
    result = run_clients(nginx.url, [client], expectFailure=True)
    assert result["failure"] is None, result["failure"]
    record = by_name(result)["poll"]
    assert not record["connected"], record
    assert record["connectMs"] < FAILS_WITHIN * 1000, record
    error = record["errors"][0]
    assert error["event"] == "connect_error" and error["status"] == 400, record
    requests = nginx.wait_requests(lambda rs: any(r.status == 400 for r in rs), "a 400")
    handshake, refused = requests[0], next(r for r in requests if r.status == 400)
    assert "sid=" not in handshake.uri and handshake.status == 200
    assert refused.upstream != handshake.upstream
    assert any(STICKY_HINT in backend.stderr() for backend in backends)


def test_websocket_only_clients_need_no_stickiness(
    backends: list[Backend], start_nginx: StartNginx
) -> None:
    """One request per session: round-robin spreads them, and every one works."""
    nginx = start_nginx(backends, balance=None)
    clients = [
        {"name": f"ws-{i}", "address": "127.0.0.1", "transports": ["websocket"]} for i in range(3)
    ]
    result = run_clients(nginx.url, clients, emits=10)
    assert result["failure"] is None, result["failure"]
    records = by_name(result).values()
    for record in records:
        assert record["errors"] == [] and record["acks"] == 10, record
    assert sorted(record["whoami"]["node"] for record in records) == sorted(NAMES)
