"""The real socket.io-client 2.x (npm ``socket.io-client@2``, aliased
``socket.io-client-v2``: Engine.IO v3, Socket.IO v4) against ``allow_eio3=True``: every
transport, binary and acks both ways, a namespace with a query, a middleware's refusal,
the heartbeat (the client pings); and without the option, no connection at all."""

from __future__ import annotations

import time
from typing import Any

import pytest

import geventsio
from tests.server.sio_support import SioServerFactory, bin_, events, run_plan

pytestmark = pytest.mark.e2e

TRANSPORTS = ["polling", "websocket", "upgrade"]


@pytest.fixture
def sio_server(serve_app) -> SioServerFactory:
    return SioServerFactory(serve_app)


def v2_plan(app, *steps: dict[str, Any], transports: str = "websocket", guard: float = 20.0):
    return run_plan(
        app.url, list(steps), transports=transports, guard=guard, script="sio_v2_plan.mjs"
    )


def connect(name: str, nsp: str = "/", **step: Any) -> dict[str, Any]:
    return {"op": "connect", "as": name, "nsp": nsp, **step}


@pytest.mark.parametrize("transports", TRANSPORTS)
@pytest.mark.parametrize("b64", [False, True], ids=["binary", "b64"])
def test_events_binary_and_acks_both_ways(sio_server, transports, b64):
    app = sio_server(allow_eio3=True)
    received: list[Any] = []
    sockets: list[geventsio.Socket] = []

    @app.sio.on("connect")
    def on_connect(socket, auth):
        sockets.append(socket)

    @app.sio.on("echo")
    def echo(socket, *args):
        received.append(args)
        return ("echoed", *args)

    @app.sio.on("ask-me")
    def ask_me(socket):
        answer = socket.call("question", "first?", timeout=5)
        socket.emit("pushed", {"deep": {"data": b"\x01\x02"}, "n": 1.5})
        return {"call_answer": answer}

    opts = {"forceBase64": True} if b64 else {}
    upgrade = [{"op": "waitUpgrade", "as": "a"}] if transports == "upgrade" else []
    report = v2_plan(
        app,
        connect(
            "a",
            opts=opts,
            listen=["pushed"],
            answer={"question": [{"answer": 42, "raw": bin_(b"\xca\xfe")}]},
        ),
        *upgrade,
        {
            "op": "emit",
            "as": "a",
            "event": "echo",
            "args": [1, "two", bin_(b"\x00\xff" * 600)],
            "ack": True,
        },
        {"op": "emit", "as": "a", "event": "ask-me", "ack": True},
        {"op": "waitEvent", "as": "a", "event": "pushed"},
        transports=transports,
    )

    assert received == [(1, "two", b"\x00\xff" * 600)]
    echoed = report["results"]["echo"]["args"]
    assert echoed[:3] == ["echoed", 1, "two"] and echoed[3] == {"$bin": "00ff" * 600}
    [answer] = report["results"]["ask-me"]["args"]
    assert answer["call_answer"] == {"answer": 42, "raw": {"$bin": "cafe"}}
    [[pushed]] = events(report, "a", "pushed")
    assert pushed == {"deep": {"data": {"$bin": "0102"}}, "n": 1.5}
    client = report["clients"]["a"]
    # the main namespace's socket id is the Engine.IO session id, on both sides
    assert client["ids"] == client["engineIds"] == [sockets[0].id]
    assert sockets[0].conn.protocol == 3
    expected = "polling" if transports == "polling" else "websocket"
    assert client["transport"] == expected


@pytest.mark.parametrize("transports", ["polling", "websocket"])
def test_a_namespace_takes_its_query_as_auth(sio_server, transports):
    app = sio_server(allow_eio3=True)
    auths: list[Any] = []

    @app.sio.on("connect", namespace="/chat")
    def on_connect(socket, auth):
        auths.append((socket.id, auth))

    @app.sio.on("where", namespace="/chat")
    def where(socket):
        return [socket.namespace.name, socket.id]

    report = v2_plan(
        app,
        connect("b", "/chat", opts={"query": {"token": "abc", "n": "1"}}),
        {"op": "emit", "as": "b", "event": "where", "ack": True},
        transports=transports,
    )

    [(socket_id, auth)] = auths
    assert auth == {"token": "abc", "n": "1"}
    engine_id = report["clients"]["b"]["engineIds"][0]
    assert socket_id == f"/chat#{engine_id}" == report["clients"]["b"]["ids"][0]
    assert report["results"]["where"]["args"] == [["/chat", socket_id]]


def test_a_middleware_refusal_reaches_the_client_as_its_data_or_message(sio_server):
    app = sio_server(allow_eio3=True)

    @app.sio.of("/private").use
    def refuse(socket, auth):
        raise geventsio.ConnectionRefused("not allowed")

    @app.sio.of("/detailed").use
    def refuse_with_data(socket, auth):
        raise geventsio.ConnectionRefused("not allowed", {"retry": False})

    report = v2_plan(
        app,
        connect("p", "/private", wait="error"),
        connect("d", "/detailed", wait="error"),
        connect("u", "/unknown", wait="error"),
    )

    assert report["clients"]["p"]["errors"] == ["not allowed"]
    assert report["clients"]["d"]["errors"] == [{"retry": False}]
    assert report["clients"]["u"]["errors"] == [{"message": "Invalid namespace"}]


def test_the_server_emits_to_a_namespace_and_broadcasts(sio_server):
    app = sio_server(allow_eio3=True)

    @app.sio.on("connect", namespace="/room")
    def join(socket, auth):
        socket.join("r")

    @app.sio.on("go", namespace="/room")
    def go(socket):
        app.sio.of("/room").to("r").emit("news", {"blob": b"\xde\xad"})
        return "sent"

    report = v2_plan(
        app,
        *[connect(name, "/room", listen=["news"]) for name in "ab"],
        {"op": "emit", "as": "a", "event": "go", "ack": True},
        *[{"op": "waitEvent", "as": name, "event": "news"} for name in "ab"],
        transports="polling",
    )
    for name in "ab":
        assert events(report, name, "news") == [[{"blob": {"$bin": "dead"}}]]


def test_the_client_pings_and_stays_connected_over_several_intervals(sio_server):
    app = sio_server(allow_eio3=True, ping_interval=0.3, ping_timeout=0.3)
    disconnects: list[str] = []

    @app.sio.on("disconnect")
    def gone(socket, reason):
        disconnects.append(str(reason))

    @app.sio.on("still-there")
    def still_there(socket):
        return [socket.conn.transport.value, list(disconnects)]

    report = v2_plan(
        app,
        connect("a"),
        {"op": "idle", "ms": 2000},  # over six ping intervals, three deadlines
        {"op": "emit", "as": "a", "event": "still-there", "ack": True},
        transports="upgrade",
    )
    client = report["clients"]["a"]
    assert client["pongs"] >= 3, client
    assert client["disconnects"] == []
    assert report["results"]["still-there"]["args"] == [["websocket", []]]


@pytest.mark.parametrize("transports", ["polling", "websocket"])
def test_a_client_that_stops_pinging_is_dropped_after_interval_plus_timeout(sio_server, transports):
    app = sio_server(allow_eio3=True, ping_interval=0.3, ping_timeout=0.2)
    times: dict[str, float] = {}
    reasons: list[str] = []

    @app.sio.on("connect")
    def on_connect(socket, auth):
        times["connect"] = time.monotonic()

    @app.sio.on("disconnect")
    def gone(socket, reason):
        times["disconnect"] = time.monotonic()
        reasons.append(str(reason))

    report = v2_plan(
        app,
        connect("a"),
        {"op": "silence", "as": "a"},
        {"op": "waitDisconnect", "as": "a"},
        transports=transports,
    )
    assert reasons == ["ping timeout"]
    # the deadline runs from the handshake, just before the connect handler
    assert times["disconnect"] - times["connect"] >= 0.4
    assert report["clients"]["a"]["pings"] == 0
    assert report["clients"]["a"]["disconnects"] == ["transport close"]


def test_without_the_option_the_client_cannot_connect(sio_server):
    app = sio_server()
    connects: list[Any] = []
    app.sio.on("connect", lambda socket: connects.append(socket))

    for transports in ("polling", "websocket"):
        report = v2_plan(app, connect("a", wait="error"), transports=transports)
        client = report["clients"]["a"]
        assert client["connects"] == 0
        [error] = client["connectErrors"]
        if transports == "polling":  # the 400 with Node's code 5, as the client saw it
            assert error == {"message": "xhr poll error", "description": 400}
    assert connects == []


def test_connection_state_recovery_does_not_apply_to_a_v2_client(sio_server):
    # Its CONNECT acknowledgement carries no pid, so nothing is kept for it, and a query
    # that looks like a recovery request restores nothing.
    app = sio_server(allow_eio3=True, connection_state_recovery=True)
    seen: list[Any] = []

    @app.sio.on("connect", namespace="/chat")
    def on_connect(socket, auth):
        seen.append((socket.recovered, socket.id, auth))

    report = v2_plan(app, connect("a", "/chat", opts={"query": {"pid": "x", "offset": "y"}}))
    [(recovered, socket_id, auth)] = seen
    assert recovered is False
    assert socket_id == "/chat#" + report["clients"]["a"]["engineIds"][0]
    assert auth == {"pid": "x", "offset": "y"}


def test_per_message_deflate_with_a_v2_client(sio_server):
    # engine.io-client 3 offers permessage-deflate by default (Node's ws): large text and
    # binary messages go compressed both ways through the v3 WebSocket.
    app = sio_server(allow_eio3=True, per_message_deflate=True)
    offers: list[str] = []
    app.sio.engine.on(
        "headers", lambda headers, environ: offers.append(environ["HTTP_SEC_WEBSOCKET_EXTENSIONS"])
    )

    @app.sio.on("echo")
    def echo(socket, text, blob):
        return text.upper(), blob[::-1]

    text = "deflate me " * 2000
    report = v2_plan(
        app,
        connect("a"),
        {
            "op": "emit",
            "as": "a",
            "event": "echo",
            "args": [text, bin_(bytes(range(256)) * 40)],
            "ack": True,
        },
    )
    upper, blob = report["results"]["echo"]["args"]
    assert upper == text.upper()
    assert blob == {"$bin": (bytes(range(256)) * 40)[::-1].hex()}
    [offer] = offers
    assert offer.startswith("permessage-deflate")


@pytest.mark.parametrize("transports", ["polling", "websocket"])
def test_the_server_disconnects_a_v2_socket(sio_server, transports):
    app = sio_server(allow_eio3=True)
    reasons: list[str] = []

    @app.sio.on("leave", namespace="/chat")
    def leave(socket):
        socket.disconnect()

    @app.sio.on("disconnect", namespace="/chat")
    def gone(socket, reason):
        reasons.append(str(reason))

    report = v2_plan(
        app,
        connect("a", "/chat"),
        {"op": "emit", "as": "a", "event": "leave"},
        {"op": "waitDisconnect", "as": "a"},
        transports=transports,
    )
    assert report["clients"]["a"]["disconnects"] == ["io server disconnect"]
    assert reasons == ["server namespace disconnect"]
