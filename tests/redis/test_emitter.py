"""RedisEmitter: a process that serves no clients reaches the clients of every server."""

from __future__ import annotations

import pytest

from geventsio import LocalProtocolError
from geventsio.adapters.redis import RedisEmitter
from tests.redis.conftest import StartNodes
from tests.redis.harness import Clients
from tests.support.waiting import wait_until


def test_the_emitter_reaches_the_clients_of_every_server(
    start_nodes: StartNodes, clients: Clients, redis_url: str, key: str
) -> None:
    a, b = start_nodes("A", "B")
    a1 = clients.connect("a1", a, rooms=["r"])
    clients.connect("b1", b, rooms=["r", "x"])
    clients.connect("b2", b)
    clients.connect("admin", b, namespace="/admin", rooms=["r"])
    everyone = ["a1", "b1", "b2"]

    with RedisEmitter(redis_url, key=key) as emitter:
        assert emitter.to("r").except_("x").emit("news", "hi", b"\x00\xff") == 2
        emitter.emit("all", {"n": 1})
        emitter.volatile.compress(False).to("x").emit("x-only")
        emitter.of("admin").to("r").emit("admin-news", [1, 2])
        emitter.send("a message")
        emitter.emit("sync")
        for name in everyone:
            clients.wait_event(name, "sync")
        clients.wait_event("admin", "admin-news")

        assert clients.events("a1", "news") == [["hi", {"$bin": "00ff"}]]
        assert clients.events("b1", "news") == clients.events("b2", "news") == []
        assert [clients.events(n, "all") for n in everyone] == [[[{"n": 1}]]] * 3
        assert [len(clients.events(n, "x-only")) for n in everyone] == [0, 1, 0]
        assert [len(clients.events(n, "message")) for n in everyone] == [1, 1, 1]
        assert clients.events("admin") == [["admin-news", [1, 2]]]

        emitter.to("r").sockets_join("joined", "other")
        emitter.in_("joined").sockets_leave("other")
        emitter.emit("sync2")
        clients.wait_event("a1", "sync2")
        assert {"joined"} <= set(a.command("state")["sockets"]["/"][a1])
        assert "other" not in a.command("state")["sockets"]["/"][a1]

        emitter.in_("joined").except_("x").disconnect_sockets()
        clients.wait_message(lambda m: m.get("disconnect", {}).get("client") == "a1")
        assert emitter.server_side_emit("record", 1, b"\x01") == 2
        for node in (a, b):
            wait_until(
                lambda node=node: (
                    node.command("state")["server_side_events"] == [["/", 1, {"$bin": "01"}]]
                )
            )
        assert clients.disconnected("b1") is None

        with pytest.raises(LocalProtocolError):
            emitter.emit("connect")
        with pytest.raises(LocalProtocolError):
            emitter.emit("x", object())
