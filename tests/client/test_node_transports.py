"""The client against the Node reference server, on each transport: events, acks both
ways, binary both ways, namespaces multiplexed on one connection."""

from __future__ import annotations

from typing import Any

import gevent.event
import pytest

from geventsio.client import Ack
from tests.client.conftest import ClientFactory, NodeServer, NodeServerFactory
from tests.client.helpers import TIMEOUT, Events
from tests.support.waiting import wait_until

# None: the default, polling then an upgrade to WebSocket.
TRANSPORTS = pytest.mark.parametrize(
    ("transports", "final"),
    [(["polling"], "polling"), (["websocket"], "websocket"), (None, "websocket")],
    ids=["polling", "websocket", "upgrade"],
)

BINARY = {"a": [b"\x00\x01\xff", {"deep": [[b""], b"x" * 70_000]}], "text": "caf\u00e9"}


@TRANSPORTS
def test_echo_and_ack(
    shared_node_server: NodeServer, make_client: ClientFactory, transports: Any, final: str
) -> None:
    client = make_client()
    events = Events(client)
    client.connect(shared_node_server.url, transports=transports)
    assert client.connected
    assert client.sid() is not None
    assert events.wait_for("connect") == [("connect", "/")]
    assert client.call("echo", 1, "two", [3.5, None], {"four": True}) == (
        1,
        "two",
        [3.5, None],
        {"four": True},
    )
    answered = gevent.event.AsyncResult()
    ack = client.emit("echo", "x", callback=lambda *args: answered.set(args))
    assert isinstance(ack, Ack)
    assert answered.get(timeout=TIMEOUT) == ("x",)
    assert ack.get(timeout=TIMEOUT) == "x"
    wait_until(lambda: client.transport == final, TIMEOUT, f"transport {final}")
    assert client.call("transport") == final


@TRANSPORTS
def test_msgpack_serializer_against_the_node_msgpack_parser(
    node_server_factory: NodeServerFactory,
    make_client: ClientFactory,
    transports: Any,
    final: str,
) -> None:
    server = node_server_factory(parser="msgpack")
    client = make_client(serializer="msgpack")
    received = gevent.event.AsyncResult()
    client.on("binary", lambda *args: received.set(args))
    client.connect(server.url, transports=transports)
    assert client.call("echo", 1, "two", [3.5, None], {"four": True}) == (
        1,
        "two",
        [3.5, None],
        {"four": True},
    )
    assert client.call("echo", BINARY, b"top") == (BINARY, b"top")
    client.call("emit_back", "binary", BINARY, [b"\x01"])
    assert received.get(timeout=TIMEOUT) == (BINARY, [b"\x01"])
    wait_until(lambda: client.transport == final, TIMEOUT, f"transport {final}")


@TRANSPORTS
def test_binary_nested_both_ways(
    shared_node_server: NodeServer, make_client: ClientFactory, transports: Any, final: str
) -> None:
    client = make_client()
    received = gevent.event.AsyncResult()
    client.on("binary", lambda *args: received.set(args))
    client.connect(shared_node_server.url, transports=transports)
    assert client.call("echo", BINARY, b"top") == (BINARY, b"top")
    client.call("emit_back", "binary", BINARY, [b"\x01"])
    assert received.get(timeout=TIMEOUT) == (BINARY, [b"\x01"])


@TRANSPORTS
def test_the_client_answers_the_servers_acks(
    shared_node_server: NodeServer, make_client: ClientFactory, transports: Any, final: str
) -> None:
    client = make_client()
    client.on("double", lambda number: number * 2)
    client.on("pair", lambda a, b: (b, a))
    client.on("nothing", lambda: None)
    client.on("bytes", lambda data: {"got": data})
    client.connect(shared_node_server.url, transports=transports)
    assert client.call("ask", "double", 21) == [42]
    assert client.call("ask", "pair", 1, 2) == [2, 1]
    assert client.call("ask", "nothing") == []
    assert client.call("ask", "bytes", b"\x00") == [{"got": b"\x00"}]


@TRANSPORTS
def test_namespaces_share_one_connection(
    shared_node_server: NodeServer, make_client: ClientFactory, transports: Any, final: str
) -> None:
    client = make_client()
    client.connect(shared_node_server.url, namespaces=["/", "/other"], transports=transports)
    root, root_id, root_engine = client.call("whoami")
    other, other_id, other_engine = client.call("whoami", namespace="/other")
    assert (root, other) == ("/", "/other")
    assert root_engine == other_engine
    assert root_id != other_id
    assert (client.sid(), client.sid("/other")) == (root_id, other_id)
    assert client.call("echo", b"o", namespace="/other") == b"o"


def test_namespaces_default_to_those_with_handlers(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client()
    client.on("anything", lambda: None, namespace="/other")
    client.connect(shared_node_server.url, transports=["websocket"])
    assert client.sid("/other") is not None
    assert client.sid("/") is None


def test_send_catch_all_and_decorator(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client()
    seen: list[tuple[Any, ...]] = []

    @client.on("*")
    def anything(event: str, *args: Any) -> None:
        seen.append((event, *args))

    @client.on("known")
    def known(value: int) -> None:
        seen.append(("known!", value))

    client.connect(shared_node_server.url, transports=["websocket"])
    ack = client.send({"hello": "world"}, callback=lambda data: None)
    assert ack is not None and ack.get(timeout=TIMEOUT) == {"hello": "world"}
    client.call("emit_back", "unknown", 1, b"2")
    client.call("emit_back", "known", 3)
    wait_until(lambda: len(seen) == 2, TIMEOUT)
    assert seen == [("unknown", 1, b"2"), ("known!", 3)]


def test_upgrades_keep_the_session(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    # Whether a GET is pending when the upgrade completes is a race (Node then ends it
    # with a CLOSE meant for polling only): repeat, to meet both cases.
    for attempt in range(10):
        client = make_client()
        events = Events(client)
        client.connect(shared_node_server.url)
        wait_until(lambda c=client: c.transport == "websocket", TIMEOUT, "upgrade")
        assert client.call("echo", attempt) == attempt
        client.disconnect()
        assert events.reasons() == ["io client disconnect"]
