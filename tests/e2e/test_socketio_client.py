"""The real socket.io-client (Node.js) against a live geventsio.Server in this process.

Each test registers handlers, then drives clients through a plan of
``tests/js/sio_plan.mjs`` (see its header): steps wait on acks and events, never on
time. Server-side observations are asserted after the run, with bounded waits where the
server may still be finishing (a disconnect handler).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import gevent
import pytest
from gevent.event import Event

import geventsio
from geventsio import AckTimeout, ConnectionRefused
from tests.server.sio_support import SioServerFactory, Step, bin_, events, record
from tests.support import wait_until

pytestmark = pytest.mark.e2e

TRANSPORTS = ["polling", "websocket", "upgrade"]


@pytest.fixture
def sio_server(serve_app) -> SioServerFactory:
    return SioServerFactory(serve_app)


def name_from_auth(namespace: Any) -> None:
    """Connection middleware: socket.data["name"] from the client's auth."""

    @namespace.use
    def remember(socket: geventsio.Socket, auth: Any) -> None:
        socket.data["name"] = (auth or {}).get("name")


def ack_args(report: dict[str, Any], label: str) -> list[Any]:
    saved = report["results"][label]
    assert "args" in saved, f"{label}: {saved}"
    return saved["args"]


# -- namespaces ------------------------------------------------------------------------


def test_static_namespaces_have_their_own_handlers(sio_server):
    app = sio_server()

    @app.sio.on("who")
    def root_who(socket):
        return f"root {socket.namespace.name}"

    @app.sio.of("/chat").on("who")
    def chat_who(socket):
        return f"chat {socket.namespace.name}"

    report = app.plan(
        Step.connect("root"),
        Step.connect("chat", "/chat"),
        Step.connect("nowhere", "/nowhere", wait="error"),
        Step.call("root", "who", save="root"),
        Step.call("chat", "who", save="chat"),
    )

    assert ack_args(report, "root") == ["root /"]
    assert ack_args(report, "chat") == ["chat /chat"]
    nowhere = report["clients"]["nowhere"]
    assert nowhere["connectErrors"] == [{"message": "Invalid namespace", "data": None}]
    assert nowhere["connects"] == 0


def test_dynamic_namespaces_by_pattern_and_by_predicate(sio_server):
    app = sio_server()
    rooms = app.sio.of(re.compile(r"^/dyn-\d+$"))
    users = app.sio.of(lambda name, auth: name.startswith("/user-") and auth.get("ok") is True)
    connected = []

    @rooms.on("connect")
    def on_connect(socket):
        connected.append(socket.namespace.name)

    @rooms.on("where")
    def where(socket):
        namespace = socket.namespace
        return {"name": namespace.name, "parent_is_rooms": namespace.parent is rooms}

    @rooms.on("shout")
    def shout(socket, text):
        rooms.emit("shouted", text, socket.namespace.name)
        return "shouted"

    @users.on("where")
    def user_where(socket):
        return socket.namespace.name

    report = app.plan(
        Step.connect("d1", "/dyn-1"),
        Step.connect("d2", "/dyn-2"),
        Step.connect("bad", "/dyn-x", wait="error"),
        Step.connect("u7", "/user-7", auth={"ok": True}),
        Step.connect("u8", "/user-8", auth={"ok": False}, wait="error"),
        Step.call("d1", "where", save="d1"),
        Step.call("d2", "where", save="d2"),
        Step.call("d1", "shout", "hello children"),
        Step.wait_event("d1", "shouted"),
        Step.wait_event("d2", "shouted"),
        Step.call("u7", "where", save="u7"),
    )

    assert sorted(connected) == ["/dyn-1", "/dyn-2"]
    assert ack_args(report, "d1") == [{"name": "/dyn-1", "parent_is_rooms": True}]
    assert ack_args(report, "d2") == [{"name": "/dyn-2", "parent_is_rooms": True}]
    # parent.emit reaches every child, each in its own namespace
    assert events(report, "d1", "shouted") == [["hello children", "/dyn-1"]]
    assert events(report, "d2", "shouted") == [["hello children", "/dyn-1"]]
    assert ack_args(report, "u7") == ["/user-7"]
    for refused in ("bad", "u8"):
        errors = report["clients"][refused]["connectErrors"]
        assert errors == [{"message": "Invalid namespace", "data": None}], refused
    assert sorted(rooms.children) == ["/dyn-1", "/dyn-2"]


def test_a_dynamic_child_is_reachable_by_its_name(sio_server):
    app = sio_server()
    rooms = app.sio.of(re.compile(r"^/dyn-\d+$"))

    @rooms.on("poke")
    def poke(socket):
        app.sio.of("/dyn-1").emit("poked", "by name")
        rooms.emit("end")
        return app.sio.of("/dyn-1") is socket.namespace

    report = app.plan(
        Step.connect("d1", "/dyn-1"),
        Step.call("d1", "poke"),
        Step.wait_event("d1", "end"),
    )

    assert events(report, "d1", "poked") == [["by name"]]
    assert ack_args(report, "poke") == [True]


def test_namespaces_are_multiplexed_on_one_engine_connection(sio_server):
    app = sio_server()
    app.sio.of("/b")
    seen: dict[str, tuple[str, int]] = {}

    def engine(socket):
        seen[socket.namespace.name] = (socket.engine_sid, len(app.sio.engine.sessions))
        return socket.engine_sid

    app.sio.on("engine", engine)
    app.sio.of("/b").on("engine", engine)

    report = app.plan(
        Step.connect("a", "/", forceNew=False),
        Step.connect("b", "/b", forceNew=False),
        Step.call("a", "engine", save="a"),
        Step.call("b", "engine", save="b"),
    )

    (sid_a, sessions_a), (sid_b, sessions_b) = seen["/"], seen["/b"]
    assert sid_a == sid_b
    assert sessions_a == sessions_b == 1
    clients = report["clients"]
    assert clients["a"]["engineIds"] == clients["b"]["engineIds"] == [sid_a]
    assert ack_args(report, "a") == ack_args(report, "b") == [sid_a]
    assert clients["a"]["ids"] != clients["b"]["ids"]


def test_connection_middleware_refuses_with_message_and_data(sio_server):
    app = sio_server()
    admin = app.sio.of("/admin")
    connect_calls = []

    @admin.use
    def check_token(socket, auth):
        if not auth or auth.get("token") != "secret":
            raise ConnectionRefused("unauthorised", {"hint": "send a token"})
        socket.data["user"] = auth["user"]

    @admin.on("connect")
    def on_admin_connect(socket, auth):
        connect_calls.append(auth)

    @admin.on("whoami")
    def whoami(socket):
        return socket.data["user"]

    @app.sio.of("/closed").on("connect")
    def refuse(socket):
        return False

    report = app.plan(
        Step.connect("ann", "/admin", auth={"token": "secret", "user": "ann"}),
        Step.connect("wrong", "/admin", auth={"token": "guess"}, wait="error"),
        Step.connect("none", "/admin", wait="error"),
        Step.connect("root", "/"),  # the middleware belongs to /admin only
        Step.connect("closed", "/closed", wait="error"),
        Step.call("ann", "whoami"),
    )

    clients = report["clients"]
    refusal = {"message": "unauthorised", "data": {"hint": "send a token"}}
    assert clients["wrong"]["connectErrors"] == [refusal]
    assert clients["none"]["connectErrors"] == [refusal]
    assert clients["root"]["connects"] == 1
    assert clients["closed"]["connectErrors"] == [{"message": "Connection refused", "data": None}]
    assert ack_args(report, "whoami") == ["ann"]
    # the connect handler runs only after the middleware let the socket in
    assert connect_calls == [{"token": "secret", "user": "ann"}]
    assert not app.sio.of("/closed").sockets


# -- events and acknowledgements -------------------------------------------------------


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_events_acks_and_binary_both_ways(sio_server, transports):
    app = sio_server()
    received: list[tuple[Any, ...]] = []
    callback_answers = []

    @app.sio.on("echo")
    def echo(socket, *args):
        received.append((type(socket), args))
        return ("echoed", *args)  # a tuple: several ack arguments

    @app.sio.on("nothing")
    def nothing(socket):
        return None

    @app.sio.on("binary")
    def binary(socket, payload):
        received.append(("binary", payload))
        return {
            "sizes": [len(payload["a"]["b"]), len(payload["list"][0])],
            "back": {"nested": [b"\x00\xff", {"deep": b"\x01\x02\x03"}]},
        }

    @app.sio.on("ask-me")
    def ask_me(socket):
        socket.emit("question", "first?", callback=lambda *args: callback_answers.append(args))
        answer = socket.call("question", "second?", timeout=5)
        socket.emit("pushed", {"deep": {"data": b"\x01\x02"}, "list": [b"\x03", "text"]})
        return {"call_answer": answer}

    report = app.plan(
        Step.connect("a", answer={"question": [{"answer": 42, "raw": bin_(b"\xca\xfe")}]}),
        Step.call("a", "echo", 1, "two", {"three": [3]}),
        Step.call("a", "nothing"),
        Step.call(
            "a", "binary", {"a": {"b": bin_(b"\x00\x01\x02")}, "list": [bin_(b"\xff" * 1000), 1]}
        ),
        Step.call("a", "ask-me"),
        Step.wait_event("a", "pushed"),
        *([Step.op("waitUpgrade", "a")] if transports == "upgrade" else []),
        transports=transports,
    )

    assert ack_args(report, "echo") == ["echoed", 1, "two", {"three": [3]}]
    assert ack_args(report, "nothing") == []
    assert received[0] == (geventsio.Socket, (1, "two", {"three": [3]}))
    assert received[1] == ("binary", {"a": {"b": b"\x00\x01\x02"}, "list": [b"\xff" * 1000, 1]})
    binary_ack = ack_args(report, "binary")[0]
    assert binary_ack["sizes"] == [3, 1000]
    nested = binary_ack["back"]["nested"]
    assert [nested[0]["$bin"], nested[1]["deep"]["$bin"]] == ["00ff", "010203"]
    assert {nested[0]["kind"], nested[1]["deep"]["kind"]} <= {"Buffer", "ArrayBuffer"}
    # the client's binary ack arrives as bytes, for call() and for a callback
    expected_answer = {"answer": 42, "raw": b"\xca\xfe"}
    assert ack_args(report, "ask-me") == [
        {"call_answer": {"answer": 42, "raw": {"$bin": "cafe", "kind": "Buffer"}}}
    ]
    wait_until(lambda: callback_answers, 5, "the emit callback")
    assert callback_answers == [(expected_answer,)]
    [[pushed]] = events(report, "a", "pushed")
    assert pushed["deep"]["data"]["$bin"] == "0102"
    assert pushed["list"][0]["$bin"] == "03" and pushed["list"][1] == "text"
    expected_final = "polling" if transports == "polling" else "websocket"
    assert report["clients"]["a"]["transport"] == expected_final


def test_ack_timeouts_on_both_sides(sio_server):
    app = sio_server()

    @app.sio.on("probe-callback")
    def probe_callback(socket):
        def callback(error, *args):
            socket.emit("callback-result", type(error).__name__, list(args))

        socket.emit("silent", 1, callback=callback, timeout=0.2)
        return "sent"

    @app.sio.on("probe-call")
    def probe_call(socket):
        try:
            socket.call("silent", 2, timeout=0.2)
        except AckTimeout:
            return "AckTimeout"
        return "answered?"

    @app.sio.on("probe-answered")
    def probe_answered(socket):
        socket.emit(
            "talkative",
            callback=lambda error, *args: socket.emit("callback-result", repr(error), list(args)),
            timeout=5,
        )
        return "sent"

    @app.sio.on("slow")
    def slow(socket):
        gevent.sleep(0.5)  # the slowness under test, not a synchronisation
        return "late"

    @app.sio.on("after")
    def after(socket):
        return "fine"

    report = app.plan(
        Step.connect("a", answer={"silent": None, "talkative": ["hi"]}),
        Step.call("a", "probe-callback"),
        Step.wait_event("a", "callback-result"),
        Step.call("a", "probe-call"),
        Step.call("a", "probe-answered"),
        Step.wait_event("a", "callback-result", 2),
        Step.call("a", "slow", timeout=150),
        Step.call("a", "slow", timeout=150, promise=True, save="slow-promise"),
        Step.call("a", "after"),
    )

    assert events(report, "a", "callback-result") == [["AckTimeout", []], ["None", ["hi"]]]
    assert ack_args(report, "probe-call") == ["AckTimeout"]
    assert report["results"]["slow"]["error"] == "operation has timed out"
    assert report["results"]["slow-promise"]["error"] == "operation has timed out"
    assert ack_args(report, "after") == ["fine"]
    assert report["clients"]["a"]["disconnects"] == []


def test_an_event_nobody_handles_is_not_acknowledged(sio_server):
    app = sio_server()
    report = app.plan(
        Step.connect("a"),
        Step.call("a", "nobody-listens", timeout=300),
    )
    assert report["results"]["nobody-listens"].get("error") == "operation has timed out"


def test_broadcast_acks_collect_every_answer_or_time_out_with_the_partial_ones(sio_server):
    app = sio_server()
    name_from_auth(app.sio.of("/"))

    @app.sio.on("connect")
    def join(socket):
        socket.join("r")

    def collect_with_callbacks(socket):
        def reporter(label):
            def callback(error, responses):
                socket.emit("collected", label, type(error).__name__, sorted(responses))

            return callback

        app.sio.timeout(5).emit("q", callback=reporter("all"))
        app.sio.to("r").emit("q2", callback=reporter("partial"), timeout=0.5)
        return "started"

    def collect_with_call(socket):
        everyone = app.sio.to("r").call("q", timeout=5)
        try:
            app.sio.to("r").call("q2", timeout=0.5)
        except AckTimeout as error:
            return {"all": sorted(everyone), "partial": sorted(error.responses)}
        return "no timeout?"

    app.sio.on("collect-cb", collect_with_callbacks)
    app.sio.on("collect-call", collect_with_call)
    answers = {
        name: {"q": [name.upper()], "q2": [name.upper()] if name != "c" else None} for name in "abc"
    }

    report = app.plan(
        *[Step.connect(name, auth={"name": name}, answer=answers[name]) for name in "abc"],
        Step.call("a", "collect-cb"),
        Step.wait_event("a", "collected", 2),
        Step.call("a", "collect-call"),
    )

    assert sorted(events(report, "a", "collected")) == [
        ["all", "NoneType", ["A", "B", "C"]],
        ["partial", "AckTimeout", ["A", "B"]],
    ]
    assert ack_args(report, "collect-call") == [{"all": ["A", "B", "C"], "partial": ["A", "B"]}]


def test_catch_all_any_and_outgoing_hooks(sio_server):
    app = sio_server()
    caught, incoming, outgoing = [], [], []

    @app.sio.on("connect")
    def hooks(socket):
        socket.on_any(lambda event, *args: incoming.append(event))
        socket.on_any_outgoing(lambda event, *args: outgoing.append((event, args)))

    @app.sio.on("*")
    def catch_all(socket, event, *args):
        caught.append((event, args))
        return f"caught {event}"

    @app.sio.on("known")
    def known(socket):
        return "known"

    @app.sio.on("trigger")
    def trigger(socket):
        socket.emit("direct", 1)
        app.sio.emit("broadcast", {"n": 2})
        return "triggered"

    report = app.plan(
        Step.connect("a"),
        Step.call("a", "known"),
        Step.call("a", "mystery", 1, [2]),
        Step.call("a", "trigger"),
        Step.wait_event("a", "broadcast"),
    )

    assert ack_args(report, "known") == ["known"]
    assert ack_args(report, "mystery") == ["caught mystery"]
    assert caught == [("mystery", (1, [2]))]
    assert incoming == ["known", "mystery", "trigger"]
    assert outgoing == [("direct", (1,)), ("broadcast", ({"n": 2},))]
    assert events(report, "a") == [["direct", 1], ["broadcast", {"n": 2}]]


def test_packet_middleware_rejects_one_event_and_lets_the_others_pass(sio_server):
    app = sio_server()
    handled = []

    class Forbidden(Exception):
        def __init__(self, message, data):
            super().__init__(message)
            self.data = data

    @app.sio.on("connect")
    def guard(socket):
        @socket.use
        def only_allowed(socket, event, args):
            if event == "forbidden":
                raise Forbidden("not allowed", {"event": event, "args": args})

    @app.sio.on("forbidden")
    def forbidden(socket, *args):
        handled.append("forbidden")

    @app.sio.on("allowed")
    def allowed(socket, *args):
        handled.append("allowed")
        return "ok"

    report = app.plan(
        Step.connect("a"),
        Step.emit("a", "forbidden", 1),
        Step.wait_event("a", "error"),
        Step.call("a", "allowed", 2),
    )

    assert events(report, "a", "error") == [
        [{"message": "not allowed", "data": {"event": "forbidden", "args": [1]}}]
    ]
    assert ack_args(report, "allowed") == ["ok"]
    assert handled == ["allowed"]


# -- ordering and concurrency ------------------------------------------------------------


@pytest.mark.parametrize("transports", ["polling", "websocket"])
def test_events_of_one_client_are_handled_in_arrival_order(sio_server, transports):
    app = sio_server()
    seen: list[int] = []

    @app.sio.on("n")
    def n(socket, i):
        gevent.sleep(0)  # yield: a later event must still not overtake this one
        seen.append(i)

    @app.sio.on("done")
    def done(socket):
        return len(seen)

    report = app.plan(
        Step.connect("a"),
        Step.op("emitMany", "a", event="n", count=200),
        Step.call("a", "done"),
        transports=transports,
    )

    assert ack_args(report, "done") == [200]
    assert seen == list(range(200))


def test_a_blocked_handler_blocks_neither_other_clients_nor_its_heartbeat(sio_server):
    # A pong may be a second late on a loaded machine: the margin is the timeout's, and
    # the handler still blocks for several intervals.
    app = sio_server(ping_interval=0.25, ping_timeout=1.5)
    life = record(app.sio.of("/"))
    gate = Event()
    released = []

    @app.sio.on("block")
    def block(socket):
        released.append(gate.wait(timeout=5))
        gevent.sleep(2.0)  # eight ping intervals without returning
        return "unblocked"

    @app.sio.on("release")
    def release(socket):
        gate.set()
        return "released"

    report = app.plan(
        Step.connect("a"),
        Step.connect("b"),
        Step.call("a", "block", background=True),
        Step.call("b", "release"),
        Step.op("waitResult", save="block"),
    )

    assert released == [True]  # b was served while a's handler was blocked
    assert ack_args(report, "block") == ["unblocked"]
    assert report["results"]["release"]["t"] < report["results"]["block"]["t"]
    assert report["clients"]["a"]["disconnects"] == []
    assert report["clients"]["b"]["disconnects"] == []
    a_id = report["clients"]["a"]["ids"][0]
    assert life.reason_of(a_id) == "client namespace disconnect"


# In order, "first" can only wait in vain (its wait is short, the outcome the same);
# concurrently, "second" releases it (its wait is long, it never lasts).
@pytest.mark.parametrize(
    ("async_handlers", "second_first", "wait"), [(False, False, 0.3), (True, True, 5.0)]
)
def test_async_handlers_opt_in_lets_events_of_one_client_overlap(
    sio_server, async_handlers, second_first, wait
):
    app = sio_server(async_handlers=async_handlers)
    gate = Event()
    order = []

    @app.sio.on("first")
    def first(socket):
        released = gate.wait(timeout=wait)
        order.append("first")
        return released

    @app.sio.on("second")
    def second(socket):
        gate.set()
        order.append("second")
        return "set"

    report = app.plan(
        Step.connect("a"),
        Step.call("a", "first", background=True),
        Step.call("a", "second"),
        Step.op("waitResult", save="first"),
    )

    assert ack_args(report, "first") == [second_first]
    assert order == (["second", "first"] if second_first else ["first", "second"])


# -- rooms -----------------------------------------------------------------------------


def by_name(sio: geventsio.Server, name: str) -> geventsio.Socket:
    """The socket of "/" whose client said ``name`` in its auth."""
    return next(s for s in sio.of("/").sockets.values() if s.data["name"] == name)


def rooms_server(sio_server: SioServerFactory, legacy_app: Any = None) -> Any:
    """Clients named by their auth; "join" joins rooms and answers the rooms (own room
    left out) and whether the socket is in its own-id room; "leave" leaves one."""
    app = sio_server(legacy_app=legacy_app)
    name_from_auth(app.sio.of("/"))

    def rooms_of(socket):
        return {
            "rooms": sorted(r for r in socket.rooms if r != socket.id),
            "own": socket.id in socket.rooms,
        }

    @app.sio.on("join")
    def join(socket, rooms):
        socket.join(rooms)
        return rooms_of(socket)

    @app.sio.on("leave")
    def leave(socket, room):
        socket.leave(room)
        return rooms_of(socket)

    return app


def three_clients_in_rooms() -> list[dict[str, Any]]:
    """a in red, b in red and blue, c in blue."""
    return [
        *[Step.connect(name, auth={"name": name}) for name in "abc"],
        Step.call("a", "join", ["red"], save="a-rooms"),
        Step.call("b", "join", ["red", "blue"], save="b-rooms"),
        Step.call("c", "join", "blue", save="c-rooms"),
    ]


def test_broadcasts_select_rooms_and_reach_each_socket_once(sio_server):
    app = rooms_server(sio_server)
    sio = app.sio

    @sio.on("broadcasts")
    def broadcasts(socket):
        sio.to("red").emit("m", "to red")
        sio.to("red", "blue").emit("m", "to red and blue")
        sio.to("red").to(["blue"]).emit("m", "to red, then blue")
        sio.except_("red").emit("m", "except red")
        sio.to("blue").except_("red").emit("m", "blue except red")
        socket.to("red").emit("m", "from a to red")
        socket.broadcast.emit("m", "from a to all")
        sio.to(by_name(sio, "b").id).emit("m", "to b's own room")
        sio.volatile.emit("m", "volatile")
        sio.emit("end")  # the last packet on every connection: nothing more is coming
        return "done"

    report = app.plan(
        *three_clients_in_rooms(),
        Step.call("a", "broadcasts"),
        *[Step.wait_event(name, "end") for name in "abc"],
    )

    assert ack_args(report, "a-rooms") == [{"rooms": ["red"], "own": True}]
    assert ack_args(report, "b-rooms") == [{"rooms": ["blue", "red"], "own": True}]
    assert ack_args(report, "c-rooms") == [{"rooms": ["blue"], "own": True}]
    received = {name: [args[0] for args in events(report, name, "m")] for name in "abc"}
    assert received == {
        "a": ["to red", "to red and blue", "to red, then blue", "volatile"],
        "b": [
            "to red",
            "to red and blue",
            "to red, then blue",
            "from a to red",
            "from a to all",
            "to b's own room",
            "volatile",
        ],
        "c": [
            "to red and blue",
            "to red, then blue",
            "except red",
            "blue except red",
            "from a to all",
            "volatile",
        ],
    }


def test_room_utilities_and_emits_from_outside_handlers(sio_server):
    holder: dict[str, geventsio.Server] = {}

    def legacy_app(environ, start_response):
        room = parse_qs(environ["QUERY_STRING"])["room"][0]
        holder["sio"].to(room).emit("m", "from legacy")
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"sent"]

    app = rooms_server(sio_server, legacy_app)
    sio = holder["sio"] = app.sio
    life = record(sio.of("/"))

    def census(room):
        return sorted(s.data["name"] for s in sio.in_(room).fetch_sockets())

    @sio.on("utilities")
    def utilities(socket):
        out = {
            "red": census("red"),
            "everyone": sorted(s.data["name"] for s in sio.fetch_sockets()),
        }
        sio.in_("red").sockets_join("green")
        out["green"] = census("green")
        sio.in_("green").sockets_leave("red")
        out["red after sockets_leave"] = census("red")
        sio.to("green").emit("m", "to green")
        sio.close_room("green")
        out["green after close_room"] = census("green")
        sio.to("green").emit("m", "to green after close_room")
        gevent.spawn(sio.to("blue").emit, "m", "from a greenlet").join()
        return out

    @sio.on("end")
    def end(socket):
        sio.to("blue").emit("m", "to blue after b left")
        sio.emit("end")

    @sio.on("kick-blue")
    def kick_blue(socket):
        sio.in_("blue").disconnect_sockets()
        return census("blue")

    report = app.plan(
        *three_clients_in_rooms(),
        Step.call("a", "utilities"),
        Step.op("fetch", path="/notify?room=blue", save="legacy"),
        Step.call("b", "leave", "blue", save="b-left"),
        Step.emit("a", "end"),
        *[Step.wait_event(name, "end") for name in "abc"],
        Step.call("a", "kick-blue"),
        Step.op("waitDisconnect", "c"),
    )

    assert ack_args(report, "utilities") == [
        {
            "red": ["a", "b"],
            "everyone": ["a", "b", "c"],
            "green": ["a", "b"],
            "red after sockets_leave": [],
            "green after close_room": [],
        }
    ]
    assert report["results"]["legacy"] == {"status": 200, "body": "sent"}
    assert ack_args(report, "b-left") == [{"rooms": [], "own": True}]
    received = {name: [args[0] for args in events(report, name, "m")] for name in "abc"}
    assert received == {
        "a": ["to green"],
        "b": ["to green", "from a greenlet", "from legacy"],
        "c": ["from a greenlet", "from legacy", "to blue after b left"],
    }
    assert ack_args(report, "kick-blue") == [[]]
    clients = report["clients"]
    assert clients["c"]["disconnects"] == [{"reason": "io server disconnect", "active": False}]
    assert clients["a"]["disconnects"] == clients["b"]["disconnects"] == []
    assert life.reason_of(clients["c"]["ids"][0]) == "server namespace disconnect"


# -- disconnection ---------------------------------------------------------------------


def test_disconnect_reasons_of_client_server_and_engine_closes(sio_server):
    app = rooms_server(sio_server)
    life = record(app.sio.of("/"))

    @app.sio.on("kick")
    def kick(socket):
        socket.disconnect()

    report = app.plan(
        Step.connect(
            "kicked",
            auth={"name": "kicked"},
            reconnection=True,
            reconnectionDelay=10,
            reconnectionDelayMax=20,
        ),
        Step.connect("leaver", auth={"name": "leaver"}),
        Step.connect("closer", auth={"name": "closer"}, reconnection=False),
        Step.call("kicked", "join", ["red"]),
        Step.emit("kicked", "kick"),
        Step.op("waitDisconnect", "kicked"),
        Step.op("disconnect", "leaver"),
        Step.op("closeEngine", "closer"),
        Step.op("waitDisconnect", "closer"),
    )

    clients = report["clients"]
    kicked, leaver, closer = (clients[n]["ids"][0] for n in ("kicked", "leaver", "closer"))
    # the server's namespace disconnect: the client is told, and will not reconnect
    assert clients["kicked"]["disconnects"] == [{"reason": "io server disconnect", "active": False}]
    assert life.reason_of(kicked) == "server namespace disconnect"
    assert life.disconnecting_rooms[kicked] == {kicked, "red"}
    assert life.reason_of(leaver) == "client namespace disconnect"
    assert clients["leaver"]["disconnects"] == [{"reason": "io client disconnect", "active": False}]
    assert life.reason_of(closer) == "transport close"
    assert clients["closer"]["disconnects"][0]["reason"] == "forced close"
    assert clients["kicked"]["connects"] == 1
    assert not app.sio.of("/").sockets


def test_a_client_process_that_dies_is_a_transport_close(sio_server):
    # (a long-polling client that vanishes mid-GET: tests/server/test_raw_clients.py)
    app = rooms_server(sio_server)
    life = record(app.sio.of("/"))

    report = app.plan(
        Step.connect("a", auth={"name": "a"}),
        Step.call("a", "join", ["red"]),
        Step.op("exit"),
    )

    a_id = report["clients"]["a"]["ids"][0]
    assert life.reason_of(a_id) == "transport close"
    assert life.disconnecting_rooms[a_id] == {a_id, "red"}


def test_server_shutdown_disconnects_everyone_and_clients_reconnect(sio_server):
    app = sio_server()
    life = record(app.sio.of("/"))

    @app.sio.on("shutdown")
    def shutdown(socket):
        gevent.spawn(app.sio.shutdown)

    fast = {"reconnection": True, "reconnectionDelay": 20, "reconnectionDelayMax": 40}
    report = app.plan(
        Step.connect("a", **fast),
        Step.connect("b", **fast),
        Step.emit("a", "shutdown"),
        Step.op("waitDisconnect", "a"),
        Step.op("waitDisconnect", "b"),
        Step.op("waitConnect", "a", count=2),
        Step.op("waitConnect", "b", count=2),
    )

    clients = report["clients"]
    for name in "ab":
        first = clients[name]["ids"][0]
        assert life.reason_of(first) == "server shutting down"
        assert clients[name]["disconnects"] == [{"reason": "transport close", "active": True}]
        assert clients[name]["connects"] == 2


def test_disconnect_with_close_ends_every_namespace_of_the_connection(sio_server):
    app = sio_server()
    root, other = record(app.sio.of("/")), record(app.sio.of("/other"))

    @app.sio.on("close-all")
    def close_all(socket):
        socket.disconnect(close=True)

    report = app.plan(
        Step.connect("root", forceNew=False),
        Step.connect("other", "/other", forceNew=False),
        Step.emit("root", "close-all"),
        Step.op("waitDisconnect", "root"),
        Step.op("waitDisconnect", "other"),
    )

    clients = report["clients"]
    assert clients["root"]["engineIds"] == clients["other"]["engineIds"]
    app.live.wait_sessions(0)
    # as Node does (client._disconnect): every namespace is told, none reconnects
    for name, namespace in (("root", root), ("other", other)):
        assert clients[name]["disconnects"] == [{"reason": "io server disconnect", "active": False}]
        assert namespace.reason_of(clients[name]["ids"][0]) == "server namespace disconnect"


# -- per-socket data and the handshake -------------------------------------------------


@pytest.mark.parametrize("transports", ["polling", "websocket"])
def test_handshake_and_per_socket_data(sio_server, transports):
    app = sio_server()
    handshakes = {}

    @app.sio.on("connect")
    def connect(socket, auth):
        handshakes[socket.id] = socket.handshake
        socket.data["count"] = 0

    @app.sio.on("count")
    def count(socket):
        socket.data["count"] += 1
        return socket.data["count"]

    report = app.plan(
        Step.connect(
            "a", auth={"token": "t"}, query={"room": "blue"}, extraHeaders={"x-custom": "hello"}
        ),
        Step.connect("b"),
        Step.call("a", "count", save="a1"),
        Step.call("a", "count", save="a2"),
        Step.call("b", "count", save="b1"),
        transports=transports,
    )

    assert [ack_args(report, label) for label in ("a1", "a2", "b1")] == [[1], [2], [1]]
    handshake = handshakes[report["clients"]["a"]["ids"][0]]
    assert handshake.headers["x-custom"] == "hello"
    assert handshake.query["room"] == "blue"
    assert (handshake.query["EIO"], handshake.query["transport"]) == ("4", transports)
    assert handshake.auth == {"token": "t"}
    assert handshake.address == "127.0.0.1"
    age = datetime.now(UTC) - datetime.fromisoformat(handshake.time)
    assert 0 <= age.total_seconds() < 60
    assert handshake.url.startswith("/socket.io/?") and "room=blue" in handshake.url
    other = handshakes[report["clients"]["b"]["ids"][0]]
    assert other.auth == {} and "x-custom" not in other.headers


# -- exceptions in handlers ------------------------------------------------------------


def test_handler_exceptions_are_logged_reported_and_the_connection_goes_on(sio_server, caplog):
    app = sio_server()
    reported = []

    def boom(socket, n):
        raise ValueError(f"boom {n}")

    def fine(socket):
        return "fine"

    for namespace in ("/", "/chat"):
        app.sio.on("boom", boom, namespace=namespace)
        app.sio.on("fine", fine, namespace=namespace)

    @app.sio.of("/chat").on_error
    def chat_error(socket, exc):
        reported.append(("chat", socket.id, repr(exc)))

    @app.sio.on_error
    def default_error(socket, exc):
        reported.append(("default", socket.id, repr(exc)))

    report = app.plan(
        Step.connect("a"),
        Step.connect("chat", "/chat"),
        Step.connect("bystander"),
        Step.call("a", "boom", 1, timeout=300, save="a-boom"),
        Step.call("a", "fine", save="a-fine"),
        Step.call("chat", "boom", 2, timeout=300, save="chat-boom"),
        Step.call("chat", "fine", save="chat-fine"),
        Step.call("bystander", "fine", save="bystander"),
    )

    ids = {name: report["clients"][name]["ids"][0] for name in ("a", "chat")}
    assert reported == [
        ("default", ids["a"], "ValueError('boom 1')"),
        ("chat", ids["chat"], "ValueError('boom 2')"),
    ]
    # a handler that raised sends no acknowledgement; the next event is served
    assert report["results"]["a-boom"]["error"] == "operation has timed out"
    assert report["results"]["chat-boom"]["error"] == "operation has timed out"
    for label in ("a-fine", "chat-fine", "bystander"):
        assert ack_args(report, label) == ["fine"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.exc_info[1].args for r in errors] == [("boom 1",), ("boom 2",)]
    assert all(r.name.startswith("geventsio") for r in errors)
    assert "Traceback" in caplog.text and "ValueError: boom 1" in caplog.text
    assert all(c["disconnects"] == [] for c in report["clients"].values())
