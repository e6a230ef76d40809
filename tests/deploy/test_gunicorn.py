"""gunicorn's gevent workers running geventsio, with the real socket.io-client."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.deploy.processes import Processes, Server
from tests.support import HttpClient
from tests.support.node import run_node

pytestmark = pytest.mark.e2e

SCENARIO = "../deploy/js/scenario.mjs"
SPREAD = "../deploy/js/spread.mjs"
OUR_WORKER = "geventsio.serving.gunicorn.GeventWorker"
OUR_WS_WORKER = "geventsio.serving.gunicorn.GeventWebSocketWorker"
GEVENT_WS_WORKER = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"


def http_get(server: Server, target: str) -> tuple[int, bytes]:
    with HttpClient("127.0.0.1", server.port) as http:
        response = http.get(target)
    return response.status, response.body


@pytest.mark.parametrize("worker", ["gevent", GEVENT_WS_WORKER, OUR_WORKER])
def test_every_transport_with_emit_ack_and_broadcast(processes: Processes, worker: str) -> None:
    server = processes.gunicorn("-k", worker)

    result = run_node(SCENARIO, server.url, "polling", "websocket", "upgrade", timeout=30)

    assert result["ok"], (result, server.process.output)
    transports = [(r["mode"], r["first"], r["final"]) for r in result["results"]]
    assert transports == [
        ("polling", "polling", "polling"),
        ("websocket", "websocket", "websocket"),
        ("upgrade", "polling", "websocket"),
    ]
    for run in result["results"]:
        assert run["echo"] == ["héllo ✓", [0, 1, 255], {"n": 1}]
        assert (run["sent"], run["heard"]) == ("sent", "to the room")
    assert http_get(server, "/") == (200, b"hello from the legacy app")
    assert "Traceback" not in server.process.output


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Server]:
    """``gunicorn -k gevent -w 2``, once both workers answer."""
    started = Processes()
    try:
        server = started.gunicorn("-k", "gevent", workers=2)
        pids: set[bytes] = set()
        deadline = time.monotonic() + 10
        while len(pids) < 2:  # each request on a new connection: either worker may take it
            assert time.monotonic() < deadline, f"one worker only: {pids}"
            pids.add(http_get(server, "/pid")[1])
        yield server
    finally:
        started.kill_all()


def test_websocket_only_clients_work_across_workers(two_workers: Server) -> None:
    """A WebSocket-only client on each worker. Which worker accepts a connection is the
    kernel's choice: the one that served the first client is paused (SIGSTOP) while the
    second connects, so the other one must take it."""
    first = run_node(SPREAD, two_workers.url, 1, timeout=30)
    assert first["ok"] and first["echoes"] == 1, first
    os.kill(first["pids"][0], signal.SIGSTOP)
    try:
        second = run_node(SPREAD, two_workers.url, 1, timeout=30)
    finally:
        os.kill(first["pids"][0], signal.SIGCONT)
    assert second["ok"] and second["echoes"] == 1, second
    assert second["pids"] != first["pids"], (first, second)
    again = run_node(SPREAD, two_workers.url, 1, timeout=30)  # serving goes on after it
    assert again["ok"] and again["echoes"] == 1, again


def is_event(kind: str, **fields: object) -> Callable[[dict[str, Any]], bool]:
    """A predicate on a :class:`NodeClient` event."""
    return lambda event: (
        event.get("event") == kind and all(event.get(key) == value for key, value in fields.items())
    )


@pytest.mark.parametrize(
    ("worker", "app"),
    [
        (OUR_WORKER, "tests.deploy.sio_app:flask_app"),
        (OUR_WS_WORKER, "tests.deploy.sio_app:app"),
        ("gevent", "tests.deploy.sio_app:flask_app"),
    ],
    ids=["gevent-flask", "gevent-websocket", "plain-gevent-flask"],
)
def test_sigterm_closes_sessions_at_once(processes: Processes, worker: str, app: str) -> None:
    server = processes.gunicorn("-k", worker, "--graceful-timeout", "20", app=app)
    clients = {
        transport: processes.node_client("watch.mjs", server.url, transport, "--stream", 4000)
        for transport in ("websocket", "polling")
    }
    for client in clients.values():
        client.wait_event(is_event("chunk", n=40), what="40 streamed chunks")

    signalled = time.monotonic()
    server.process.signal(signal.SIGTERM)
    for client in clients.values():
        closed = client.wait_event(is_event("disconnect"), timeout=5, what="a disconnect")
        assert closed["reason"] == "transport close"
    closed_after = time.monotonic() - signalled
    assert server.process.wait(timeout=10) == 0
    exited_after = time.monotonic() - signalled

    assert closed_after < 2.5, closed_after  # gunicorn notices within a second
    assert exited_after < 8, exited_after  # not the 20 s graceful timeout
    for client in clients.values():
        assert not client.of("bad_chunk"), client.of("bad_chunk")[:3]
    assert "closing the Socket.IO sessions" in server.process.output
    assert "graceful timeout" not in server.process.output
    warnings = [line for line in server.process.lines if "WARNING" in line]
    # gevent-websocket's handler is named once: it answers 101 before the application.
    assert all("gevent-websocket's WebSocketHandler" in line for line in warnings), warnings


def test_max_requests_restart_moves_clients_to_the_new_worker(processes: Processes) -> None:
    server = processes.gunicorn("-k", OUR_WORKER, "--max-requests", "3")
    client = processes.node_client("watch.mjs", server.url, "websocket", "--emit-every", "50")
    first = client.wait_event(is_event("connect"), what="a connection")["pid"]
    client.wait_event(is_event("ack", pid=first), what="an acknowledgement")

    # The WebSocket was request 1; requests 2 and 3 make the worker retire.
    assert http_get(server, "/pid")[1] == str(first).encode()
    assert http_get(server, "/pid")[1] == str(first).encode()

    closed = client.wait_event(is_event("disconnect"), timeout=5, what="a disconnect")
    assert closed["reason"] == "transport close"
    second = client.wait_event(
        lambda e: e.get("event") == "connect" and e.get("pid") not in (None, first),
        timeout=10,
        what="a connection to the new worker",
    )
    assert second["t"] - closed["t"] < 8000  # the old worker exits, a new one boots
    client.wait_event(
        lambda e: is_event("ack", pid=second["pid"])(e) and e["t"] > second["t"] + 300,
        what="acknowledgements from the new worker",
    )
    late = [e for e in client.of("ack_timeout") if e["t"] > second["t"]]
    assert not late, late
    assert "Autorestarting worker" in server.process.output


@pytest.mark.parametrize("worker", [OUR_WORKER, OUR_WS_WORKER])
def test_the_workers_run_the_blocking_monitor_when_asked(processes: Processes, worker: str) -> None:
    server = processes.gunicorn("-k", worker, "--env", "GEVENTSIO_BLOCK_THRESHOLD=0.1")
    client = """
        import { io } from "socket.io-client";
        const socket = io(process.argv[2], { transports: ["websocket"] });
        await new Promise((resolve) => socket.once("connect", resolve));
        const slow = await socket.timeout(5000).emitWithAck("slow");
        socket.disconnect();
        console.log(JSON.stringify({ slow }));
        process.exit(0);
    """

    assert run_node(client, server.url, timeout=30) == {"slow": "done"}
    record = server.process.wait_for(r"WARNING geventsio\.serving\.monitor: .*", timeout=5)
    assert "blocked the gevent event loop for 0.3" in record.group(0)
    server.process.wait_for(r"in slow_handler", timeout=5)
