"""Several gunicorn workers on one port, no sticky sessions: the real socket.io-client.

The workers share rooms through Redis and forward each other the polling requests of
the sessions they do not own (geventsio.cluster).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest

from tests.deploy.processes import Processes, Server
from tests.deploy.test_gunicorn import http_get, is_event
from tests.support import HttpClient
from tests.support.node import run_node

pytestmark = pytest.mark.e2e

WORKERS = "../deploy/js/workers.mjs"


def poll_until(port: int, target: str, acks: int) -> list[bytes]:
    """The packets of GETs to ``target`` until ``acks`` acknowledgements came (each GET
    returns what is queued: a handler may answer after the POST that asked)."""
    packets: list[bytes] = []
    deadline = time.monotonic() + 20
    while sum(p.startswith(b"43") for p in packets) < acks:
        assert time.monotonic() < deadline, packets
        with HttpClient("127.0.0.1", port) as http:
            polled = http.get(target)
        assert polled.status == 200, polled
        packets.extend(polled.body.split(b"\x1e"))
    return packets


def wait_for_every_worker(server: Server, workers: int) -> None:
    pids: set[bytes] = set()
    deadline = time.monotonic() + 15
    while len(pids) < workers:  # each request on a new connection: any worker may take it
        assert time.monotonic() < deadline, f"not every worker answers: {pids}"
        pids.add(http_get(server, "/pid")[1])


@pytest.fixture(scope="module")
def three_workers(redis_url: str) -> Iterator[Server]:
    """``gunicorn -k gevent -w 3`` on Redis, once every worker answers."""
    started = Processes()
    env = {"SIO_APP_REDIS": redis_url, "SIO_APP_REDIS_KEY": f"workers-{uuid.uuid4().hex}"}
    try:
        server = started.gunicorn("-k", "gevent", workers=3, env=env)
        wait_for_every_worker(server, 3)
        yield server
    finally:
        started.kill_all()


@pytest.fixture(scope="module")
def three_workers_in_memory() -> Iterator[Server]:
    """``gunicorn -k gevent -w 3`` with the in-memory adapter: the workers find each
    other on this host (abstract unix sockets), with no Redis at all."""
    started = Processes()
    try:
        server = started.gunicorn("-k", "gevent", workers=3, env={})
        wait_for_every_worker(server, 3)
        yield server
    finally:
        started.kill_all()


@pytest.fixture(params=["redis", "memory"])
def workers(request: pytest.FixtureRequest) -> Server:
    """Three workers sharing sessions through Redis, or through this host alone."""
    name = "three_workers" if request.param == "redis" else "three_workers_in_memory"
    server: Server = request.getfixturevalue(name)
    return server


def test_every_request_of_a_polling_session_reaches_its_owner(workers: Server) -> None:
    three_workers = workers
    with HttpClient("127.0.0.1", three_workers.port) as http:
        opened = http.get("/socket.io/?EIO=4&transport=polling")
    sid = orjson.loads(opened.body[1:])["sid"]
    target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"

    answered_by: set[bytes] = set()
    for n in range(30):  # each request on a new connection: any worker takes it
        with HttpClient("127.0.0.1", three_workers.port) as http:
            posted = http.post(target, "40" if n == 0 else f'42{n}["pid"]')
        assert (posted.status, posted.body) == (200, b"ok"), (n, posted)
        answered_by.add(http_get(three_workers, "/pid")[1])
    packets = poll_until(three_workers.port, target, 29)

    assert len(answered_by) >= 2, "the requests never reached another worker"
    assert packets[0].startswith(b"40{"), packets[:2]
    # The 29 acknowledgements, in order, all from one process: the owner.
    assert [p.split(b"[")[0] for p in packets[1:]] == [f"43{n}".encode() for n in range(1, 30)]
    assert len({p.split(b"[")[1] for p in packets[1:]}) == 1


def test_a_forged_owner_tag_reaches_no_session(three_workers: Server) -> None:
    with HttpClient("127.0.0.1", three_workers.port) as http:
        opened = http.get("/socket.io/?EIO=4&transport=polling")
    sid = orjson.loads(opened.body[1:])["sid"]
    random_part, _, tag = sid.rpartition(".")
    for forged in (f"x{random_part[1:]}.{tag}", f"{random_part}.nosuchtag", f"{sid}.{tag}"):
        with HttpClient("127.0.0.1", three_workers.port) as http:
            answer = http.get(f"/socket.io/?EIO=4&transport=polling&sid={forged}")
        assert answer.status == 400, (forged, answer)
        assert answer.json() == {"code": 1, "message": "Session ID unknown"}


@pytest.mark.parametrize("mode", ["polling", "upgrade", "websocket"])
def test_broadcasts_across_workers_arrive_exactly_once(three_workers: Server, mode: str) -> None:
    result = run_node(WORKERS, three_workers.url, mode, 6, timeout=60)

    assert result["ok"], (result, three_workers.process.output[-3000:])
    assert result["heard"] == [["first", "second"]] * 6
    expected = "polling" if mode == "polling" else "websocket"
    assert result["transports"] == [expected] * 6  # upgrades reach the owner too
    assert "Traceback" not in three_workers.process.output


@pytest.mark.parametrize("transports", ["polling", "polling,websocket", "websocket"])
def test_the_clients_of_a_killed_worker_reconnect_to_another(
    processes: Processes, redis_url: str, transports: str
) -> None:
    env = {"SIO_APP_REDIS": redis_url, "SIO_APP_REDIS_KEY": f"workers-{uuid.uuid4().hex}"}
    server = processes.gunicorn("-k", "gevent", workers=3, env=env)
    client = processes.node_client("watch.mjs", server.url, transports, "--emit-every", "50")
    first = client.wait_event(is_event("connect"), timeout=15, what="a connection")["pid"]
    client.wait_event(is_event("ack", pid=first), what="an acknowledgement")

    os.kill(first, signal.SIGKILL)

    closed = client.wait_event(is_event("disconnect"), timeout=10, what="a disconnect")
    assert closed["reason"] in ("transport error", "transport close"), closed
    second = client.wait_event(
        lambda e: e.get("event") == "connect" and e.get("pid") not in (None, first),
        timeout=15,
        what="a connection to another worker",
    )
    client.wait_event(
        lambda e: is_event("ack", pid=second["pid"])(e) and e["t"] > second["t"],
        what="acknowledgements from another worker",
    )


def test_a_flask_app_under_three_workers(processes: Processes, redis_url: str) -> None:
    env = {"SIO_APP_REDIS": redis_url, "SIO_APP_REDIS_KEY": f"workers-{uuid.uuid4().hex}"}
    server = processes.gunicorn(
        "-k",
        "geventsio.serving.gunicorn.GeventWorker",
        workers=3,
        env=env,
        app="tests.deploy.sio_app:flask_app",
    )
    result = run_node(WORKERS, server.url, "upgrade", 6, timeout=60)

    assert result["ok"], (result, server.process.output[-3000:])
    assert result["heard"] == [["first", "second"]] * 6
    assert result["transports"] == ["websocket"] * 6


def test_two_hosts_share_sessions_through_their_redis_adapter_alone(
    processes: Processes, redis_url: str
) -> None:
    """Two gunicorns of two workers each (two "hosts"), made one cluster by the Redis
    adapter they share and no other setting: a session opened on one is served through
    the other."""
    key = f"workers-{uuid.uuid4().hex}"
    env = {"SIO_APP_REDIS": redis_url, "SIO_APP_REDIS_KEY": key}
    hosts = [processes.gunicorn("-k", "gevent", workers=2, env=env) for _ in range(2)]
    with HttpClient("127.0.0.1", hosts[0].port) as http:
        opened = http.get("/socket.io/?EIO=4&transport=polling")
    sid = orjson.loads(opened.body[1:])["sid"]
    target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"

    for n in range(20):  # alternately through either host, each on a new connection
        with HttpClient("127.0.0.1", hosts[n % 2].port) as http:
            posted = http.post(target, "40" if n == 0 else f'42{n}["pid"]')
        assert (posted.status, posted.body) == (200, b"ok"), (n, posted)
    packets = poll_until(hosts[1].port, target, 19)

    assert packets[0].startswith(b"40{"), packets[:2]
    assert [p.split(b"[")[0] for p in packets[1:]] == [f"43{n}".encode() for n in range(1, 20)]
    for host in hosts:
        assert "Traceback" not in host.process.output
    assert "registered at" in hosts[0].process.output


GENERATE_ID_APP = """
import uuid

import geventsio

app = geventsio.WSGIApp(geventsio.Server(generate_id=lambda environ: uuid.uuid4().hex))
"""


def test_workers_whose_ids_name_no_process_say_so_at_boot(processes: Processes, tmp_path) -> None:
    """``generate_id`` under ``-w 2``: each worker says at boot, before any request, that
    its long-polling sessions cannot be shared (and it still serves)."""
    (tmp_path / "own_ids.py").write_text(GENERATE_ID_APP)
    server = processes.gunicorn("-k", "gevent", app="own_ids:app", workers=2, cwd=tmp_path)

    server.process.wait_for(r"generate_id is set: session ids name no process", count=2)
    assert http_get(server, "/socket.io/?EIO=4&transport=polling")[0] == 200
