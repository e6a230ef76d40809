"""geventsio and the Node reference in one Redis cluster: socket.io 4 with
@socket.io/redis-adapter 8 (default pub/sub mode) and @socket.io/redis-emitter 5, from npm."""

from __future__ import annotations

from geventsio.adapters.redis import RedisEmitter
from tests.redis.conftest import StartNodes
from tests.redis.harness import Clients, NodeServer
from tests.support.waiting import wait_until


def test_broadcasts_and_fetch_sockets_cross_between_node_and_geventsio(
    start_nodes: StartNodes, node_server: NodeServer, clients: Clients
) -> None:
    (g,) = start_nodes("G")
    n = node_server
    g1 = clients.connect("g1", g, rooms=["r"])
    n1 = clients.connect("n1", n, rooms=["r"])
    n2 = clients.connect("n2", n, rooms=["r", "x"])

    g.command("emit", event="from-g", args=["hi", {"$bin": "00ff"}], to=["r"], **{"except": ["x"]})
    n.command("emit", event="from-n", args=[{"$bin": "0102"}, {"k": 3}], to=["r"])
    n.command("emit", event="from-n-all", args=[1])
    assert clients.wait_event("n1", "from-g") == [["hi", {"$bin": "00ff"}]]
    assert clients.wait_event("g1", "from-n") == [[{"$bin": "0102"}, {"k": 3}]]
    assert clients.wait_event("g1", "from-n-all") == [[1]]
    clients.wait_event("n2", "from-n")
    assert clients.events("n2", "from-g") == []
    assert clients.events("g1", "from-g") == [["hi", {"$bin": "00ff"}]]  # once

    from_g = {s["id"]: s for s in g.command("fetch")}
    assert set(from_g) == {g1, n1, n2}
    assert from_g[n2]["remote"] is True
    assert from_g[n2]["data"] == {"name": "n2"}
    assert from_g[n2]["rooms"] == sorted([n2, "r", "x"])
    from_n = {s["id"]: s for s in n.command("fetch", to=["r"])}
    assert set(from_n) == {g1, n1, n2}
    assert from_n[g1] == {"id": g1, "rooms": sorted([g1, "r"]), "data": {"name": "g1"}}


def test_acks_server_side_events_and_utilities_cross_between_node_and_geventsio(
    start_nodes: StartNodes, node_server: NodeServer, clients: Clients
) -> None:
    (g,) = start_nodes("G")
    n = node_server
    g1 = clients.connect("g1", g, rooms=["r"])
    clients.connect("n1", n, rooms=["r"])
    clients.connect("n2", n, rooms=["r", "x"])

    for server in (g, n):
        answer = server.command("call", event="ask", to=["r"], timeout=3)
        assert answer["timeout"] is False
        assert sorted(answer["responses"]) == ["g1", "n1", "n2"]
    assert g.command("server_side_call", event="whoami", args=[1]) == {
        "timeout": False,
        "replies": [{"node": "N", "args": [1]}],
    }
    assert n.command("server_side_call", event="whoami", args=[2]) == {
        "timeout": False,
        "replies": [{"node": "G", "args": [2]}],
    }

    n.command("sockets_join", to=["r"], rooms=["joined"])
    n.command("emit", event="in-joined", to=["joined"])
    clients.wait_event("g1", "in-joined")
    assert "joined" in g.command("state")["sockets"]["/"][g1]
    g.command("disconnect", to=["x"])
    clients.wait_message(lambda m: m.get("disconnect", {}).get("client") == "n2")
    assert clients.disconnected("g1") is None
    assert clients.disconnected("n1") is None


def test_the_node_emitter_reaches_geventsio_clients(
    start_nodes: StartNodes, node_server: NodeServer, clients: Clients
) -> None:
    (g,) = start_nodes("G")
    n = node_server
    g1 = clients.connect("g1", g, rooms=["r"])
    clients.connect("g2", g, rooms=["r", "x"])
    clients.connect("admin", g, namespace="/admin")
    clients.connect("n1", n, rooms=["r"])

    n.command(
        "emitter", op="emit", to=["r"], event="e", args=["s", {"$bin": "ff"}], **{"except": ["x"]}
    )
    n.command("emitter", op="emit", namespace="/admin", event="admin-e")
    assert clients.wait_event("g1", "e") == [["s", {"$bin": "ff"}]]
    clients.wait_event("n1", "e")
    clients.wait_event("admin", "admin-e")
    n.command("emitter", op="socketsJoin", to=["r"], rooms=["j"])
    n.command("emitter", op="serverSideEmit", event="record", args=[1, "two"])
    n.command("emitter", op="emit", to=["j"], event="in-j")
    clients.wait_event("g1", "in-j")
    assert "j" in g.command("state")["sockets"]["/"][g1]
    wait_until(lambda: g.command("state")["server_side_events"] == [["/", 1, "two"]])
    n.command("emitter", op="disconnectSockets", to=["x"])
    clients.wait_message(lambda m: m.get("disconnect", {}).get("client") == "g2")
    assert clients.events("g2", "e") == []


def test_the_python_emitter_reaches_node_servers(
    node_server: NodeServer, clients: Clients, redis_url: str, key: str
) -> None:
    n = node_server
    n1 = clients.connect("n1", n, rooms=["r"])
    clients.connect("n2", n, rooms=["r", "x"])

    with RedisEmitter(redis_url, key=key) as emitter:
        emitter.to("r").except_("x").emit("py", b"\x01\x02", {"a": None})
        emitter.to("r").sockets_join("joined")
        emitter.server_side_emit("record", "py")
        emitter.to("joined").emit("in-joined")
        assert clients.wait_event("n1", "py") == [[{"$bin": "0102"}, {"a": None}]]
        clients.wait_event("n1", "in-joined")
        clients.wait_event("n2", "in-joined")
        assert clients.events("n2", "py") == []
        assert "joined" in n.command("sockets")[n1]
        wait_until(lambda: n.command("server_side_events") == [["/", "py"]])
        emitter.in_("x").disconnect_sockets()
        clients.wait_message(lambda m: m.get("disconnect", {}).get("client") == "n2")
