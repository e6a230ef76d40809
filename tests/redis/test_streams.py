"""The Redis Streams adapter in a cluster of geventsio servers and a Node reference server
(``@socket.io/redis-streams-adapter``) on one Redis: broadcasts cross between them once,
and a client that leaves one server recovers on another, whichever kind each is.

Clients are the real socket.io-client (``tests/js/recovery_client.mjs``) behind a TCP
proxy: cutting the proxy loses the transport, and pointing it elsewhere sends the
reconnecting client to another server (what a load balancer does).
"""

from __future__ import annotations

import json
from typing import Any

import gevent
import pytest

from tests.redis.harness import JsonLinesProcess, StreamsServer
from tests.support.node import node_result, start_node
from tests.support.proxy import CuttableProxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(children: list[JsonLinesProcess], redis_url: str, key: str) -> Any:
    """``cluster("A", "B", "N")``: servers on one stream (``N...``: Node's), started in
    parallel."""

    def start(*names: str) -> dict[str, StreamsServer]:
        servers = {
            name: StreamsServer(name, redis_url, key, node=name.startswith("N")) for name in names
        }
        children.extend(servers.values())
        gevent.joinall([gevent.spawn(s.ready) for s in servers.values()], raise_error=True)
        return servers

    return start


class JsClient:
    """One recovering socket.io-client behind its own proxy."""

    def __init__(self, proxies: list[CuttableProxy], server: StreamsServer) -> None:
        self.address = server.address
        self.proxy = CuttableProxy(server.address)
        proxies.append(self.proxy)
        options = {"transports": ["websocket"], "guardMs": 30000}
        self.process = start_node("recovery_client.mjs", self.proxy.url, json.dumps(options))
        before = len(server.connections())
        first: dict[str, Any] = wait_until(
            lambda: server.connections()[before:], 15, f"a connection on {server.name}"
        )[0]
        self.first = first
        self.id: str = first["id"]

    def connected_to(self, server: StreamsServer) -> dict[str, Any]:
        """Wait for this client's latest connection to be on ``server``."""

        def found() -> Any:
            mine = [c for c in server.connections() if c["id"] == self.id]
            return mine[-1] if mine and (server.address != self.address or len(mine) > 1) else None

        connection: dict[str, Any] = wait_until(found, 15, f"a connection on {server.name}")
        return connection

    def report(self) -> dict[str, Any]:
        return node_result(self.process, 40)


def ticks(report: dict[str, Any]) -> list[Any]:
    return [event[1] for event in report["events"] if event[0] == "tick"]


@pytest.mark.parametrize(
    ("first", "second"), [("A", "B"), ("N", "A"), ("A", "N")], ids=["py-py", "node-py", "py-node"]
)
def test_a_client_leaves_one_server_and_recovers_on_another(cluster, proxies, first, second):
    servers = cluster("A", "B", "N")
    start, end = servers[first], servers[second]
    client = JsClient(proxies, start)
    assert client.first["recovered"] is False
    for n, sender in enumerate("ABN"):  # each crosses to the client once
        servers[sender].emit("tick", n, to=["news"])
        wait_until(lambda n=n: n in start.seen(client.id), 10, f"tick {n} arrives")

    client.proxy.cut()
    wait_until(start.disconnects, 10, f"{first} sees the client leave")
    for n, sender in enumerate("ABN", start=3):  # missed, from every server
        servers[sender].emit("tick", n, to=["news"])
    servers["B"].emit("tick", -1, to=["elsewhere"])
    client.proxy.target = end.address
    client.proxy.resume()

    again = client.connected_to(end)
    assert again == {"id": client.id, "recovered": True}
    (mine,) = [s for s in end.command("sockets") if s["id"] == client.id]
    assert mine["rooms"] == sorted([client.id, "news"])
    assert mine["data"] == {"node": first}
    servers["N"].emit("tick", 6, to=["news"])
    servers["A"].emit("end")
    report = client.report()

    assert report["ok"], report
    assert ticks(report) == list(range(7))
    assert [c["recovered"] for c in report["connects"]] == [False, True]
    assert {c["id"] for c in report["connects"]} == {client.id}


def test_a_rolling_restart_loses_and_duplicates_nothing(cluster, proxies):
    servers = cluster("A", "B")
    a, b = servers["A"], servers["B"]
    clients = [JsClient(proxies, a), JsClient(proxies, a), JsClient(proxies, b)]
    sent: list[int] = []
    stopping: list[bool] = []

    def broadcast(count: int) -> None:  # from both servers, until A begins to stop
        for n in range(count):
            (a if n % 2 and not stopping else b).emit("tick", n, to=["news"])
            sent.append(n)

    ticker = gevent.spawn(broadcast, 120)
    wait_until(lambda: len(sent) >= 30, 20, "broadcasts under way")
    for client in clients:  # the load balancer drains A: new connections go to B
        client.proxy.target = b.address
    stopping.append(True)
    a.command("shutdown")  # sessions kept in Redis, then every connection closed
    ticker.join(60)
    assert ticker.successful(), ticker.exception
    for client in clients[:2]:
        assert client.connected_to(b)["recovered"] is True
    b.emit("end")

    for client in clients:
        report = client.report()
        assert report["ok"], report
        assert ticks(report) == list(range(120)), client.id
        assert {c["id"] for c in report["connects"]} == {client.id}
    assert [d["reason"] for d in a.disconnects()] == ["server shutting down"] * 2


def test_requests_with_answers_cross_between_python_and_node(cluster, proxies):
    servers = cluster("A", "N")
    a, n = servers["A"], servers["N"]
    on_a, on_n = JsClient(proxies, a), JsClient(proxies, n)
    everyone = sorted([on_a.id, on_n.id])
    for server in (a, n):  # once each has heard of the other
        wait_until(lambda s=server: s.command("fetch") == everyone, 15, f"{server.name} fetches")
    assert a.command("server_side_call") == [{"node": "N"}]
    assert n.command("server_side_call") == [{"node": "A"}]
    assert a.command("call", event="question") == everyone
    assert n.command("call", event="question") == everyone
    a.emit("end")
    for client in (on_a, on_n):
        report = client.report()
        assert report["ok"], report
        assert [e for e in report["events"] if e[0] == "question"] == [["question"]] * 2
