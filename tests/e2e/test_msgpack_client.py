"""``serializer="msgpack"`` against the real socket.io-client 4.8 with the npm
``socket.io-msgpack-parser`` (Node.js), on both transports: events, binary, acks both ways
and broadcasts; and a malformed msgpack message, which closes only its own connection.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

import geventsio
from tests.server.sio_support import SioServerFactory, Step, bin_, events
from tests.support import wait_until

pytestmark = pytest.mark.e2e

TRANSPORTS = ["polling", "websocket", "upgrade"]


@pytest.fixture
def sio_server(serve_app) -> SioServerFactory:
    return SioServerFactory(serve_app)


def ack_args(report: dict[str, Any], label: str) -> list[Any]:
    saved = report["results"][label]
    assert "args" in saved, f"{label}: {saved}"
    return saved["args"]


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_events_binary_and_acks_both_ways(sio_server, transports):
    app = sio_server(serializer="msgpack")
    received: list[Any] = []

    @app.sio.on("echo")
    def echo(socket, *args):
        received.append(args)
        return ("echoed", *args)

    @app.sio.on("ask-me")
    def ask_me(socket):
        answer = socket.call("question", "first?", timeout=5)
        socket.emit("pushed", {"deep": {"data": b"\x01\x02"}, "n": 1.5, "none": None})
        return {"call_answer": answer}

    @app.sio.on("where", namespace="/chat")
    def where(socket):
        return socket.namespace.name

    report = app.plan(
        Step.connect("a", answer={"question": [{"answer": 42, "raw": bin_(b"\xca\xfe")}]}),
        Step.connect("b", "/chat"),
        Step.call("a", "echo", 1, "two", {"three": [3]}, bin_(b"\x00\xff" * 600)),
        Step.call("a", "ask-me"),
        Step.wait_event("a", "pushed"),
        Step.call("b", "where"),
        *([Step.op("waitUpgrade", "a")] if transports == "upgrade" else []),
        transports=transports,
        parser="msgpack",
    )

    assert received == [(1, "two", {"three": [3]}, b"\x00\xff" * 600)]
    echoed = ack_args(report, "echo")
    assert echoed[:4] == ["echoed", 1, "two", {"three": [3]}]
    assert echoed[4]["$bin"] == "00ff" * 600
    [answer] = ack_args(report, "ask-me")
    assert answer["call_answer"]["answer"] == 42
    assert answer["call_answer"]["raw"]["$bin"] == "cafe"
    [[pushed]] = events(report, "a", "pushed")
    assert pushed["deep"]["data"]["$bin"] == "0102"
    assert pushed["n"] == 1.5 and pushed["none"] is None
    assert ack_args(report, "where") == ["/chat"]
    expected = "polling" if transports == "polling" else "websocket"
    assert report["clients"]["a"]["transport"] == expected


@pytest.mark.parametrize("transports", ["polling", "websocket"])
def test_broadcasts_with_binary_and_acks(sio_server, transports):
    app = sio_server(serializer="msgpack")

    @app.sio.on("connect")
    def join(socket):
        socket.join("r")

    @app.sio.on("go")
    def go(socket):
        app.sio.emit("news", {"blob": b"\xde\xad"}, to="r")
        return sorted(app.sio.to("r").call("poll", timeout=5))

    report = app.plan(
        *[Step.connect(name, answer={"poll": [name, bin_(name.encode())]}) for name in "abc"],
        Step.emit("a", "go", ack=True, save="go"),
        *[Step.wait_event(name, "news") for name in "abc"],
        transports=transports,
        parser="msgpack",
    )

    for name in "abc":
        [[news]] = events(report, name, "news")
        assert news["blob"]["$bin"] == "dead"
    # each client answered the broadcast's ack with its name, as text and as binary
    [answers] = ack_args(report, "go")
    assert [name for name, _ in answers] == ["a", "b", "c"]
    assert [blob["$bin"] for _, blob in answers] == ["61", "62", "63"]


def test_malformed_msgpack_closes_only_that_connection(sio_server):
    app = sio_server(serializer="msgpack")
    disconnects: list[str] = []

    @app.sio.on("disconnect")
    def gone(socket, reason):
        disconnects.append(reason)

    @app.sio.on("ping-me")
    def ping_me(socket):
        return "pong"

    good = app.raw()
    bad = app.raw()
    for raw in (good, bad):
        raw.send(msgpack.packb({"type": 0, "nsp": "/"}))
        answer = msgpack.unpackb(raw.recv(5))
        assert answer["type"] == 0 and "sid" in answer["data"]
    bad.send(b"\x92\x01")  # an array of two items, truncated
    assert bad.closed()
    good.send(msgpack.packb({"type": 2, "nsp": "/", "data": ["ping-me"], "id": 1}))
    assert msgpack.unpackb(good.recv(5)) == {"type": 3, "nsp": "/", "data": ["pong"], "id": 1}
    wait_until(lambda: disconnects, 5, "the bad client's disconnect")
    assert len(disconnects) == 1


def test_a_json_packet_to_a_msgpack_server_closes_the_connection(sio_server):
    app = sio_server(serializer="msgpack")
    raw = app.raw()
    raw.send("0")  # text: the JSON parser's CONNECT
    assert raw.closed()


def test_unknown_serializer_is_refused():
    with pytest.raises(ValueError, match="serializer"):
        geventsio.Server(serializer="yaml")


def test_max_payload_bounds_a_msgpack_message(sio_server):
    app = sio_server(serializer="msgpack", max_payload=10_000)
    received: list[int] = []

    @app.sio.on("blob")
    def blob(socket, data):
        received.append(len(data))
        return len(data)

    raw = app.raw()
    raw.send(msgpack.packb({"type": 0, "nsp": "/"}))
    assert msgpack.unpackb(raw.recv(5))["type"] == 0
    raw.send(msgpack.packb({"type": 2, "nsp": "/", "data": ["blob", b"x" * 5_000], "id": 1}))
    assert msgpack.unpackb(raw.recv(5))["data"] == [5_000]
    raw.send(msgpack.packb({"type": 2, "nsp": "/", "data": ["blob", b"x" * 20_000], "id": 2}))
    assert raw.closed()
    assert received == [5_000]
