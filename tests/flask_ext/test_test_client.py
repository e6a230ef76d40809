"""The application of ``app.py`` through ``socketio.test_client``, as a Flask-SocketIO user
tests it: results are read right after ``emit()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_ext import SocketIO
from tests.flask_ext.app import create_app
from tests.support import wait_until

AppFactory = Callable[..., tuple[Flask, SocketIO]]


@pytest.fixture
def chat() -> tuple[Flask, SocketIO]:
    return create_app()


def events_of(socketio: SocketIO) -> list[Any]:
    return socketio.events  # type: ignore[attr-defined, no-any-return]


# -- connecting ---------------------------------------------------------------------------


def test_connect_with_auth(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app, auth={"token": "abc"})
    assert client.is_connected()
    assert client.get_received() == [
        {"name": "hello", "args": [{"auth": {"token": "abc"}, "user": None}], "namespace": "/"}
    ]
    assert client.get_received() == []


def test_connect_without_auth_gets_none(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    assert client.get_received()[0]["args"][0]["auth"] is None


def test_two_clients_have_their_own_sessions(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    one, two = socketio.test_client(app), socketio.test_client(app)
    assert one.eio_sid != two.eio_sid
    assert one.get_sid() != two.get_sid()
    one.disconnect()
    assert not one.is_connected()
    assert two.is_connected()


def test_refused_by_returning_false(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app, query_string="refuse=false")
    assert not client.is_connected()
    assert client.connect_errors["/"] == {"message": "Connection rejected by server"}
    with pytest.raises(RuntimeError, match="not connected"):
        client.emit("echo", 1)


def test_refused_with_connection_refused_error(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app, query_string="?refuse=raise")
    assert not client.is_connected()
    assert client.connect_errors["/"] == {"message": "go away", "data": {"code": 42}}


def test_unknown_namespace_is_refused(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app, namespace="/nowhere")
    assert not client.is_connected("/nowhere")
    assert client.connect_errors["/nowhere"] == {"message": "Invalid namespace"}


def test_connect_sees_query_string_and_headers(app: Flask, socketio: SocketIO) -> None:
    from flask import request

    from flask_ext import emit

    @socketio.on("connect")
    def connect() -> None:  # no auth parameter: called without it
        emit(
            "request",
            {
                "args": request.args.to_dict(flat=False),
                "custom": request.headers.get("X-Custom"),
                "path": request.path,
            },
        )

    client = socketio.test_client(app, query_string="a=1&a=2", headers={"X-Custom": "yes"})
    [received] = client.get_received()
    assert received["args"] == [{"args": {"a": ["1", "2"]}, "custom": "yes", "path": "/socket.io/"}]


# -- events and acknowledgements -------------------------------------------------------------


def test_emit_and_ack(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    client.get_received()
    assert client.emit("echo", {"a": "b"}, callback=True) == {"a": "b"}
    assert client.get_received() == [{"name": "echo", "args": [{"a": "b"}], "namespace": "/"}]
    assert client.emit("echo", {"a": "b"}) is None


def test_tuple_sends_several_arguments(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    client.get_received()
    assert client.emit("pair", callback=True) == [1, "two"]
    assert client.get_received() == [{"name": "pair", "args": [1, "two"], "namespace": "/"}]
    assert client.emit("echo", 1, 2, 3, callback=True) == [1, 2, 3]
    assert client.get_received()[0]["args"] == [1, 2, 3]


def test_binary_round_trip(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    client.get_received()
    assert client.emit("echo", {"blob": b"\x00\x01\xff"}, callback=True) == {
        "blob": b"\x00\x01\xff"
    }
    assert client.get_received()[0]["args"] == [{"blob": b"\x00\x01\xff"}]


def test_send_message_and_json(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    one, two = socketio.test_client(app), socketio.test_client(app)
    one.get_received()
    two.get_received()
    assert one.send("hi there", callback=True) == "hi there"
    assert one.get_received() == [{"name": "message", "args": "hi there", "namespace": "/"}]
    one.send({"x": 1}, json=True)  # the handler broadcasts it
    assert one.get_received() == [{"name": "json", "args": {"x": 1}, "namespace": "/"}]
    assert two.get_received() == [{"name": "json", "args": {"x": 1}, "namespace": "/"}]


def test_request_event_sid_and_namespace(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    info = client.emit("whoami", callback=True)
    assert info["sid"] == client.get_sid()
    assert info["namespace"] == "/"
    assert info["event"] == {"message": "whoami", "args": []}
    assert info["g"] is None  # every event gets a fresh application context


def test_unserialisable_argument_is_a_type_error(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    with pytest.raises(TypeError):
        client.emit("echo", {"bad": object()})


def test_server_asks_and_the_callback_runs_in_the_callers_context(
    chat: tuple[Flask, SocketIO],
) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    client.get_received()
    client.emit("ask", "why?")
    [question] = client.get_received()
    assert question == {"name": "question", "args": ["why?"], "namespace": "/"}


# -- rooms and broadcasts --------------------------------------------------------------------


def test_rooms_with_three_clients(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    one, two, three = (socketio.test_client(app) for _ in range(3))
    for client in (one, two, three):
        client.get_received()
    assert one.emit("join", "red", callback=True) == [one.get_sid(), "red"]
    two.emit("join", "red")
    three.emit("join", "blue")

    three.emit("to room", "red", "hello reds")
    expected = [{"name": "room message", "args": ["hello reds"], "namespace": "/"}]
    assert one.get_received() == expected
    assert two.get_received() == expected
    assert three.get_received() == []

    one.emit("to room", "red", "not to me", False)  # include_self=False
    assert one.get_received() == []
    assert two.get_received()[0]["args"] == ["not to me"]

    two.emit("leave", "red")
    three.emit("to room", "red", "only one")
    assert one.get_received()[0]["args"] == ["only one"]
    assert two.get_received() == []

    three.emit("close room", "red")
    three.emit("to room", "red", "nobody")
    assert one.get_received() == []


def test_broadcast_leaves_out_the_sender_and_other_namespaces(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    one, two = socketio.test_client(app), socketio.test_client(app)
    chat_client = socketio.test_client(app, namespace="/chat")
    for client in (one, two):
        client.get_received()
    chat_client.get_received("/chat")
    one.emit("broadcast", "all")
    assert one.get_received() == []
    assert two.get_received() == [{"name": "broadcasted", "args": ["all"], "namespace": "/"}]
    assert chat_client.get_received("/chat") == []


def test_http_route_emits_to_a_room(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    inside, outside = socketio.test_client(app), socketio.test_client(app)
    inside.emit("join", "news")
    inside.get_received()
    outside.get_received()
    assert app.test_client().get("/notify/news/hello").text == "sent"
    assert inside.get_received() == [
        {"name": "notice", "args": [{"room": "news", "text": "hello"}], "namespace": "/"}
    ]
    assert outside.get_received() == []


def test_background_task_emits(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    client.get_received()
    client.emit("background", "later")
    received: list[Any] = []
    wait_until(
        lambda: received.extend(client.get_received()) or received, 5, "the background task's event"
    )
    assert received == [{"name": "from background", "args": ["later"], "namespace": "/"}]


def test_start_background_task_returns_a_joinable_greenlet(socketio: SocketIO) -> None:
    task = socketio.start_background_task(lambda a, b=0: a + b, 1, b=2)
    task.join(timeout=5)
    assert task.value == 3


# -- namespaces ----------------------------------------------------------------------------


def test_class_based_namespace(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app, namespace="/chat", auth={"k": "v"})
    assert client.is_connected("/chat")
    assert not client.is_connected()
    [welcome] = client.get_received("/chat")
    assert welcome["args"] == [{"sid": client.get_sid("/chat"), "auth": {"k": "v"}}]
    assert client.emit("echo", 1, "a", namespace="/chat", callback=True) == [1, "a"]
    assert client.get_received("/chat") == [
        {"name": "echoed", "args": [1, "a"], "namespace": "/chat"}
    ]
    client.emit("shout", "hey", namespace="/chat")  # Namespace.emit defaults to /chat
    assert client.get_received("/chat")[0]["args"] == ["HEY"]
    assert client.emit("no such event", namespace="/chat", callback=True) == []
    client.disconnect("/chat")
    assert ("chat disconnect", "client namespace disconnect") in events_of(socketio)


def test_one_client_in_two_namespaces(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    client.connect("/other")
    assert client.is_connected("/") and client.is_connected("/other")
    assert client.get_sid("/") != client.get_sid("/other")
    client.get_received()
    assert client.emit("echo", "x", namespace="/other", callback=True) == "x"
    assert client.get_received("/other") == [{"name": "echo", "args": ["x"], "namespace": "/other"}]
    assert client.get_received() == []


def test_event_decorator_with_a_namespace(app: Flask, socketio: SocketIO) -> None:
    @socketio.event(namespace="/math")
    def double(x: int) -> int:
        return 2 * x

    def triple(x: int) -> int:
        return 3 * x

    socketio.on_event("triple", triple, namespace="/math")
    client = socketio.test_client(app, namespace="/math")
    assert client.emit("double", 21, namespace="/math", callback=True) == 42
    assert client.emit("triple", 2, namespace="/math", callback=True) == 6


def test_catch_all_event_and_catch_all_namespace(app: Flask, socketio: SocketIO) -> None:
    from flask import request

    @socketio.on("*")
    def any_event(event: str, *args: Any) -> list[Any]:
        return [event, *args]

    @socketio.on("where", namespace="*")
    def where() -> str:
        return request.namespace  # type: ignore[no-any-return]

    client = socketio.test_client(app)
    assert client.emit("anything", 1, callback=True) == ["anything", 1]
    client.connect("/dynamic-42")
    assert client.is_connected("/dynamic-42")
    assert client.emit("where", namespace="/dynamic-42", callback=True) == "/dynamic-42"


# -- errors --------------------------------------------------------------------------------


def test_error_handler_return_value_is_the_ack(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    assert client.emit("fail", "boom", callback=True) == "handled: boom"
    assert ("error /", client.get_sid(), "ValueError('boom')") in events_of(socketio)


def test_default_error_handler(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app, namespace="/other")
    assert client.emit("fail", "x", namespace="/other", callback=True) == "default: KeyError"


def test_unhandled_exception_reaches_the_test(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    with pytest.raises(ValueError, match="reraise"):
        client.emit("fail", "reraise", callback=True)
    assert client.emit("echo", "still fine", callback=True) == "still fine"


# -- disconnecting -------------------------------------------------------------------------


def test_disconnect_handler_receives_the_reason(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    sid = client.get_sid()
    client.disconnect()
    assert events_of(socketio) == [("disconnect", sid, "client namespace disconnect")]
    assert events_of(socketio)[0][2] == socketio.reason.CLIENT_DISCONNECT


def test_server_side_disconnect(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client, other = socketio.test_client(app), socketio.test_client(app)
    client.emit("kick me")
    assert not client.is_connected()
    assert other.is_connected()
    assert events_of(socketio) == [("disconnect", client.get_sid(), "server namespace disconnect")]
    with pytest.raises(RuntimeError, match="not connected"):
        client.emit("echo", 1)


def test_disconnect_handler_without_reason(app: Flask, socketio: SocketIO) -> None:
    seen: list[str] = []

    @socketio.on("disconnect")
    def gone() -> None:
        seen.append("gone")

    socketio.test_client(app).disconnect()
    assert seen == ["gone"]


# -- sessions and Flask-Login ----------------------------------------------------------------


def test_managed_session_is_a_per_connection_copy(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    http = app.test_client()
    http.get("/login/alice")
    client = socketio.test_client(app, flask_test_client=http)
    assert client.emit("session get", "color", callback=True) == "blue"
    client.emit("session set", "color", "red")
    assert client.emit("session get", "color", callback=True) == "red"
    other = socketio.test_client(app, flask_test_client=http)
    assert other.emit("session get", "color", callback=True) == "blue"
    with http.session_transaction() as cookie_session:
        assert cookie_session["color"] == "blue"  # never written back to the cookie


def test_unmanaged_session_is_the_cookie_session(app: Flask) -> None:
    app, socketio = create_app(manage_session=False)
    http = app.test_client()
    http.get("/login/bob")
    client = socketio.test_client(app, flask_test_client=http)
    assert client.emit("session get", "color", callback=True) == "blue"
    client.emit("session set", "color", "red")
    # A cookie session cannot be written back: each event reads the cookie again.
    assert client.emit("session get", "color", callback=True) == "blue"


def test_flask_login_current_user(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    http = app.test_client()
    http.get("/login/carol")
    client = socketio.test_client(app, flask_test_client=http)
    assert client.get_received()[0]["args"][0]["user"] == "carol"
    assert client.emit("whoami", callback=True)["user"] == "carol"
    client.connect("/chat")
    assert client.emit("whoami", namespace="/chat", callback=True) == {
        "namespace": "/chat",
        "user": "carol",
    }
    anonymous = socketio.test_client(app)
    assert anonymous.emit("whoami", callback=True)["user"] is None


# -- helpers outside a handler -------------------------------------------------------------


def test_helpers_outside_an_event_say_so(chat: tuple[Flask, SocketIO]) -> None:
    from flask_ext import emit, join_room, rooms, send

    app, _ = chat
    for call in (lambda: emit("x", 1), lambda: send("x"), lambda: join_room("r"), lambda: rooms()):
        with pytest.raises(RuntimeError, match=r"Working outside of a Socket\.IO event"):
            call()
    with app.app_context(), pytest.raises(RuntimeError, match=r"outside of a Socket\.IO"):
        emit("x", 1)


def test_helpers_with_an_explicit_client_work_in_a_view(chat: tuple[Flask, SocketIO]) -> None:
    from flask_ext import emit, join_room, rooms

    app, socketio = chat
    client = socketio.test_client(app)
    client.get_received()
    sid = client.get_sid()
    assert sid is not None
    with app.test_request_context("/"):
        join_room("vip", sid=sid)
        assert rooms(sid=sid) == [sid, "vip"]
        emit("psst", "only you", to="vip")
        emit("all", broadcast=True)
    assert [item["name"] for item in client.get_received()] == ["psst", "all"]


def test_call_waits_for_the_clients_ack(chat: tuple[Flask, SocketIO]) -> None:
    import geventsio

    app, socketio = chat
    client = socketio.test_client(app)
    sid = client.get_sid()
    with pytest.raises(geventsio.AckTimeout):  # the test client never acknowledges
        socketio.call("question", "?", to=sid, timeout=0.05)
    with pytest.raises(ValueError, match="to="):
        socketio.call("question")


def test_disconnect_handler_still_sees_the_rooms(app: Flask, socketio: SocketIO) -> None:
    from flask_ext import disconnect, emit, join_room, leave_room, rooms

    @socketio.on("join")
    def join(room: str) -> None:
        join_room(room)

    @socketio.on("disconnect")
    def gone(reason: str) -> None:
        for room in rooms()[1:]:
            emit("left", reason, to=room, include_self=False)
            leave_room(room)
        disconnect()  # already leaving: must not run this handler again

    leaving, staying = socketio.test_client(app), socketio.test_client(app)
    leaving.emit("join", "lobby")
    staying.emit("join", "lobby")
    leaving.disconnect()
    assert staying.get_received() == [
        {"name": "left", "args": ["client namespace disconnect"], "namespace": "/"}
    ]


def test_lifecycle_event_names_are_reserved(chat: tuple[Flask, SocketIO]) -> None:
    app, socketio = chat
    client = socketio.test_client(app)
    for event in ("connect", "disconnect", "disconnecting"):
        with pytest.raises(TypeError, match="reserved"):
            client.emit(event, {"token": "forged"})
    assert client.is_connected()


def test_namespace_names_without_a_slash(app: Flask, socketio: SocketIO) -> None:
    @socketio.on("ping", namespace="plain")
    def ping() -> str:
        return "pong"

    client = socketio.test_client(app, namespace="/plain")
    assert client.emit("ping", namespace="/plain", callback=True) == "pong"


def test_namespaces_option_accepts_namespaces_without_handlers(app: Flask) -> None:
    socketio = SocketIO(app, namespaces=["/quiet", "loud"])
    assert socketio.test_client(app, namespace="/quiet").is_connected("/quiet")
    assert socketio.test_client(app, namespace="/loud").is_connected("/loud")
    everything = SocketIO(Flask("any"), namespaces="*")
    assert everything.test_client(Flask("any"), namespace="/x").is_connected("/x")
