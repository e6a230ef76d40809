"""Several geventsio server processes in one Redis cluster, with real socket.io clients.

The servers (``cluster_node.py``) run without monkey-patching: the adapter's sockets
are gevent's own. Each test has a channel prefix of its own.
"""

from __future__ import annotations

from tests.redis.conftest import StartNodes
from tests.redis.harness import Clients
from tests.support.waiting import wait_until


def _sync(clients: Clients, node, names: list[str], label: str) -> None:
    """Emit a marker to everyone from ``node`` and wait until ``names`` all received it:
    what the same node published before has been delivered by then (order is kept)."""
    node.command("emit", event=label)
    for name in names:
        clients.wait_event(name, label)


def test_room_broadcast_reaches_every_node_exactly_once(
    start_nodes: StartNodes, clients: Clients
) -> None:
    a, b = start_nodes("A", "B")
    clients.connect("a1", a, rooms=["r"])
    clients.connect("a2", a, rooms=["r", "x"])
    clients.connect("b1", b, rooms=["r"])
    clients.connect("b2", b, rooms=["r", "x"])
    clients.connect("b3", b)
    everyone = ["a1", "a2", "b1", "b2", "b3"]

    b.command(
        "emit", event="one-room", args=["hi", {"$bin": "00ff"}], to=["r"], **{"except": ["x"]}
    )
    b.command("emit", event="two-rooms", args=[1], to=["r", "x"], volatile=True)
    a.command("emit", event="everyone", args=[2.5, None, {"k": [True]}])
    b.command("emit", event="local-only", local=True)
    _sync(clients, a, everyone, "sync-a")
    _sync(clients, b, everyone, "sync-b")

    for name in everyone:
        got = clients.events(name)
        assert got.count(["everyone", 2.5, None, {"k": [True]}]) == 1, (name, got)
    for name in ("a1", "b1"):
        assert clients.events(name, "one-room") == [["hi", {"$bin": "00ff"}]]
    for name in ("a2", "b2", "b3"):
        assert clients.events(name, "one-room") == []
    for name in ("a1", "a2", "b1", "b2"):
        assert clients.events(name, "two-rooms") == [[1]]
    assert clients.events("b3", "two-rooms") == []
    assert [len(clients.events(n, "local-only")) for n in everyone] == [0, 0, 1, 1, 1]


def test_namespaces_are_kept_apart(start_nodes: StartNodes, clients: Clients) -> None:
    a, b = start_nodes("A", "B")
    clients.connect("main", b, rooms=["r"])
    clients.connect("admin", b, namespace="/admin", rooms=["r"])

    a.command("emit", event="to-admin", namespace="/admin", to=["r"])
    a.command("emit", event="to-main", to=["r"])
    clients.wait_event("admin", "to-admin")
    clients.wait_event("main", "to-main")
    _sync(clients, a, ["main"], "sync")
    assert clients.events("main", "to-admin") == []
    assert clients.events("admin", "to-main") == []


def test_fetch_sockets_returns_the_sockets_of_every_node(
    start_nodes: StartNodes, clients: Clients
) -> None:
    a, b = start_nodes("A", "B")
    a1 = clients.connect("a1", a, rooms=["r"])
    b1 = clients.connect("b1", b, rooms=["r", "s"])
    b2 = clients.connect("b2", b)

    found = {s["id"]: s for s in a.command("fetch")}
    assert set(found) == {a1, b1, b2}
    assert found[a1]["remote"] is False
    assert found[b1] == {
        "id": b1,
        "rooms": sorted([b1, "r", "s"]),
        "data": {"name": "b1"},
        "remote": True,
        "query": {"EIO": "4", "transport": "websocket"},
    }
    assert {s["id"] for s in a.command("fetch", to=["r"])} == {a1, b1}
    assert {s["id"] for s in b.command("fetch", to=["r"], **{"except": ["s"]})} == {a1}
    assert {s["id"] for s in a.command("fetch", local=True)} == {a1}


def test_remote_socket_views_act_through_redis(start_nodes: StartNodes, clients: Clients) -> None:
    a, b = start_nodes("A", "B")
    b1 = clients.connect("b1", b)

    a.command("remote", socket_id=b1, action="emit", event="direct", args=[{"$bin": "01"}])
    assert clients.wait_event("b1", "direct") == [[{"$bin": "01"}]]
    assert a.command("remote", socket_id=b1, action="call", event="ping") == "b1"
    a.command("remote", socket_id=b1, action="join", room="joined")
    _sync(clients, a, ["b1"], "sync")  # B handles A's messages in the order A sent them
    assert "joined" in b.command("state")["sockets"]["/"][b1]
    a.command("remote", socket_id=b1, action="leave", room="joined")
    _sync(clients, a, ["b1"], "sync2")
    assert "joined" not in b.command("state")["sockets"]["/"][b1]
    a.command("remote", socket_id=b1, action="disconnect")
    wait = clients.wait_message(lambda m: m.get("disconnect", {}).get("client") == "b1")
    assert wait["disconnect"]["reason"] == "io server disconnect"


def test_join_leave_and_disconnect_sockets_across_nodes(
    start_nodes: StartNodes, clients: Clients
) -> None:
    a, b = start_nodes("A", "B")
    a1 = clients.connect("a1", a, rooms=["r"])
    b1 = clients.connect("b1", b, rooms=["r"])
    b2 = clients.connect("b2", b)

    a.command("sockets_join", to=["r"], rooms=["y", "z"])
    a.command("emit", event="y", to=["y"])  # B handles A's messages in the order A sent them
    clients.wait_event("b1", "y")
    clients.wait_event("a1", "y")
    assert {"y", "z"} <= set(b.command("state")["sockets"]["/"][b1])
    assert {"y", "z"} <= set(a.command("state")["sockets"]["/"][a1])
    assert "y" not in b.command("state")["sockets"]["/"][b2]

    b.command("sockets_leave", to=["y"], rooms=["z"])
    _sync(clients, b, ["a1"], "sync")
    a.command("disconnect", to=["y"], **{"except": [a1]})
    clients.wait_message(lambda m: m.get("disconnect", {}).get("client") == "b1")
    assert "z" not in a.command("state")["sockets"]["/"][a1]
    assert clients.disconnected("a1") is None
    assert clients.disconnected("b2") is None
    assert set(b.command("state")["sockets"]["/"]) == {b2}


def test_server_side_emit_gathers_one_reply_per_other_server(start_nodes: StartNodes) -> None:
    a, b, c = start_nodes("A", "B", "C")

    answer = a.command("server_side_call", event="whoami", args=[{"$bin": "02"}, 7])
    assert answer["timeout"] is False
    assert sorted(answer["replies"], key=lambda r: r["node"]) == [
        {"node": "B", "args": [{"$bin": "02"}, 7]},
        {"node": "C", "args": [{"$bin": "02"}, 7]},
    ]
    assert a.command("server_side_emit", event="record", args=["x"]) == 2
    wait_until(lambda: b.command("state")["server_side_events"] == [["/", "x"]])
    wait_until(lambda: c.command("state")["server_side_events"] == [["/", "x"]])
    assert a.command("state")["server_side_events"] == []
    # a server without a handler never replies: the call times out with the others' replies
    partial = a.command("server_side_call", event="nobody", timeout=0.5)
    assert partial == {"timeout": True, "replies": []}


def test_broadcast_with_acks_counts_the_clients_of_every_node(
    start_nodes: StartNodes, clients: Clients
) -> None:
    a, b = start_nodes("A", "B")
    clients.connect("a1", a, rooms=["r"])
    clients.connect("b1", b, rooms=["r"])
    clients.connect("b2", b, rooms=["r"])
    clients.connect("b3", b)

    answer = a.command("call", event="ask", args=["q"], to=["r"], timeout=3)
    assert answer["timeout"] is False
    assert sorted(answer["responses"]) == ["a1", "b1", "b2"]
    everyone = b.command("call", event="ask-all", timeout=3)
    assert sorted(everyone["responses"]) == ["a1", "b1", "b2", "b3"]
    nobody = a.command("call", event="ask", to=["empty"], timeout=3)
    assert nobody == {"timeout": False, "responses": []}
