"""Redis going away and coming back, and garbage on the channels: the servers never die,
local delivery goes on, each outage is logged once, and the cluster recovers."""

from __future__ import annotations

import pickle

import msgpack
import orjson
import pytest
import redis

from tests.redis.conftest import StartNodes
from tests.redis.harness import Clients, RedisServer
from tests.support.waiting import wait_until

OUTAGE = "lost the link to Redis"
RECOVERY = "is back after"


def test_the_cluster_survives_a_redis_restart(
    own_redis: RedisServer, start_nodes: StartNodes, clients: Clients
) -> None:
    a, b = start_nodes("A", "B", redis=own_redis.url)
    clients.connect("a1", a, rooms=["r"])
    clients.connect("b1", b, rooms=["r"])
    a.command("emit", event="before", to=["r"])
    clients.wait_event("b1", "before")

    own_redis.kill()
    wait_until(
        lambda: not a.command("state")["up"] and not b.command("state")["up"],
        10,
        "both servers see the outage",
    )
    a.command("emit", event="during", to=["r"])
    clients.wait_event("a1", "during")  # local delivery goes on
    with pytest.raises(AssertionError, match="RedisUnavailable"):
        a.command("fetch")
    assert a.command("call", event="ask", to=["r"], timeout=2) == {
        "timeout": False,
        "responses": ["a1"],
    }

    own_redis.start()
    a.wait_up()
    b.wait_up()
    a.command("emit", event="after", to=["r"])
    b.command("emit", event="after-b", to=["r"])
    clients.wait_event("b1", "after")
    clients.wait_event("a1", "after-b")
    assert clients.events("b1", "during") == []  # lost, as the documentation says
    assert len(a.command("fetch")) == 2
    for node in (a, b):
        assert node.alive
        log = node.stderr()
        assert log.count(OUTAGE) == 1, log
        assert log.count(RECOVERY) == 1, log


def test_a_server_starts_and_serves_while_redis_is_down(
    own_redis: RedisServer, start_nodes: StartNodes, clients: Clients
) -> None:
    own_redis.kill()
    (a,) = start_nodes("A", redis=own_redis.url, linked=False)
    clients.connect("a1", a, rooms=["r"])
    a.command("emit", event="alone", to=["r"])
    clients.wait_event("a1", "alone")
    assert a.command("state")["up"] is False

    own_redis.start()
    a.wait_up()
    (b,) = start_nodes("B", redis=own_redis.url)
    b.command("emit", event="joined", to=["r"])
    clients.wait_event("a1", "joined")
    assert a.stderr().count(OUTAGE) == 1
    assert a.stderr().count(RECOVERY) == 1


def test_malformed_messages_are_logged_and_dropped(
    start_nodes: StartNodes, clients: Clients, redis_url: str, key: str
) -> None:
    a, b = start_nodes("A", "B")
    clients.connect("b1", b, rooms=["r"])
    garbage = [
        (f"{key}#/#", b"\xc1 not msgpack"),
        (f"{key}#/#", pickle.dumps(["uid", {"type": 2}, {}])),
        (f"{key}#/#", msgpack.packb({"not": "a list"})),
        (f"{key}#/#", msgpack.packb(["uid", {"type": 2, "data": "no", "nsp": "/"}, {}])),
        (f"{key}#/#r#", msgpack.packb(["uid", {"type": 0, "data": ["x"], "nsp": "/"}, {}])),
        (f"{key}#/#", msgpack.packb(["uid", {"type": 2, "data": ["x"]}, {"rooms": 5}])),
        (f"{key}#/#", msgpack.packb(["uid", {"type": 2, "data": [msgpack.ExtType(5, b"")]}, {}])),
        (f"{key}-request#/#", b"{not json"),
        (f"{key}-request#/#", msgpack.packb({"type": 99})),
        (f"{key}-request#/#", orjson.dumps({"type": 5, "requestId": "q", "opts": {"rooms": 5}})),
        (f"{key}-response#/#", msgpack.packb([1, 2])),
    ]
    publisher = redis.Redis.from_url(redis_url, protocol=2)
    try:
        for _ in range(2):
            for channel, data in garbage:
                publisher.publish(channel, data)
    finally:
        publisher.close()

    a.command("emit", event="still-working", to=["r"])
    clients.wait_event("b1", "still-working")
    assert clients.events("b1") == [["still-working"]]
    log = b.stderr()
    assert b.alive
    assert "Traceback" not in log
    kinds = [
        "not MessagePack",
        "broadcast is not [uid, packet, opts]",
        "event data is not [name",
        "packet is not an event",
        "rooms is not a list",
        "unsupported MessagePack extension",
        "invalid JSON",
        "unknown request type",
        "request or answer is not a map",
    ]
    for kind in kinds:
        assert log.count(kind) == 1, log  # once per kind, not once per message
    assert log.count("dropped a message from Redis channel") == len(kinds)
