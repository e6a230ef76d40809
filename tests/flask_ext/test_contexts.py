"""The Flask contexts around each event: what flask_ext keeps per socket between events
must not show (``g``, request attributes, teardown functions, signals, context
variables), on both ways of pushing the contexts (Flask's context variables directly, or
the contexts' own push), with and without the application-level teardown functions and
signals that make the fast path push the contexts one by one."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from contextvars import ContextVar, copy_context
from typing import Any

import flask
import gevent
import pytest
from flask import Flask, current_app, g, request, url_for

from flask_ext import SocketIO, disconnect, emit, join_room, rooms
from flask_ext import context as context_module
from flask_ext.context import EventContexts
from flask_ext.event import EventContext, current_event, optional_event
from flask_ext.fastpath import FastContexts


@pytest.fixture(params=["fast path", "public API"])
def push(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with either way of making the contexts (``public API``: a Flask the
    fast path was not written for)."""
    if request.param == "public API":
        monkeypatch.setattr(context_module, "fast_path_available", lambda: False)
    return str(request.param)


@pytest.fixture
def observed() -> list[Any]:
    return []


@pytest.fixture(params=["app teardown", "request teardown only", "no teardown"])
def teardowns(request: pytest.FixtureRequest) -> str:
    """The teardown functions the application has: a ``teardown_appcontext`` function
    and a ``teardown_request`` one (the fast path pushes the request context by itself
    only without the first; its handlers run an event in one call then), the second
    only, or none."""
    return str(request.param)


#: A context variable the handlers of ``events_app`` set and read.
MARK: ContextVar[str] = ContextVar("test_contexts.mark")


@pytest.fixture
def events_app(
    app: Flask, push: str, observed: list[Any], teardowns: str
) -> tuple[Flask, SocketIO]:
    """An application whose handlers report what they see of the Flask contexts."""
    socketio = SocketIO(app)

    @app.route("/page/<int:number>")
    def page(number: int) -> str:
        return str(number)

    def teardown_request(exc: BaseException | None) -> None:
        event = getattr(request, "event", {"message": "(not an event)"})
        observed.append(("teardown_request", event["message"], repr(exc)))

    def teardown_appcontext(exc: BaseException | None) -> None:
        observed.append(("teardown_appcontext", getattr(g, "count", None), repr(exc)))

    if teardowns != "no teardown":
        app.teardown_request(teardown_request)
    if teardowns == "app teardown":
        app.teardown_appcontext(teardown_appcontext)

    @socketio.on("count")
    def count() -> int:
        g.count = getattr(g, "count", 0) + 1
        return int(g.count)

    @socketio.on("mark")
    def mark(value: str) -> None:
        request.mark = value  # type: ignore[attr-defined]
        request.event["args"] = ("changed",)

    @socketio.on("peek")
    def peek() -> dict[str, Any]:
        return {
            "mark": getattr(request, "mark", None),
            "sid": request.sid,
            "event": request.event,
            "path": request.path,
            "args": request.args.to_dict(),
        }

    @socketio.on("links")
    def links() -> list[str]:
        return [current_app.name, url_for("page", number=3), url_for("page", number=4)]

    @socketio.on("fail")
    def fail() -> None:
        raise ValueError("boom")

    @socketio.on("arity")
    def arity(*args: Any) -> list[Any]:
        return [list(args), list(request.event["args"])]

    @socketio.on("copy")
    def copy() -> list[Any]:
        @flask.copy_current_request_context
        def later() -> list[Any]:
            return [request.sid, request.event["message"]]

        return gevent.spawn(later).get(timeout=5)

    @socketio.on("kick")
    def kick() -> None:
        g.where = "kick"
        disconnect()  # runs the disconnect handler now, nested in this event
        observed.append(("kick", g.where, request.event["message"]))

    @socketio.on("set_mark")
    def set_mark(value: str) -> str:
        MARK.set(value)
        return MARK.get()

    @socketio.on("get_mark")
    def get_mark() -> str:
        return MARK.get("unset")

    @socketio.on("disconnect")
    def on_disconnect(reason: str) -> None:
        observed.append(("disconnect", getattr(g, "where", None), request.event["message"]))

    return app, socketio


def test_g_is_empty_at_each_event(events_app: tuple[Flask, SocketIO]) -> None:
    app, socketio = events_app
    one, two = socketio.test_client(app), socketio.test_client(app)
    assert [one.emit("count", callback=True) for _ in range(3)] == [1, 1, 1]
    assert two.emit("count", callback=True) == 1


def _teardowns(teardowns: str, *entries: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The teardown entries expected, but those of functions not registered."""
    registered = {
        "app teardown": ("teardown_request", "teardown_appcontext"),
        "request teardown only": ("teardown_request",),
        "no teardown": (),
    }[teardowns]
    return [entry for entry in entries if entry[0] in registered]


def test_teardown_functions_run_after_each_event(
    events_app: tuple[Flask, SocketIO], observed: list[Any], teardowns: str
) -> None:
    app, socketio = events_app
    client = socketio.test_client(app)
    client.emit("count")
    client.emit("count")
    expected = _teardowns(
        teardowns,
        ("teardown_request", "count", "None"),
        ("teardown_appcontext", 1, "None"),
    )
    assert observed[-2 * len(expected) :] == expected * 2


def test_teardown_functions_run_once_per_event_from_the_first(
    events_app: tuple[Flask, SocketIO], observed: list[Any], teardowns: str
) -> None:
    app, socketio = events_app
    client = socketio.test_client(app)  # the connect event has no handler: no contexts
    client.emit("count")
    assert observed == _teardowns(
        teardowns,
        ("teardown_request", "count", "None"),
        ("teardown_appcontext", 1, "None"),
    )


def test_teardown_functions_get_the_handlers_exception(
    events_app: tuple[Flask, SocketIO], observed: list[Any], teardowns: str
) -> None:
    app, socketio = events_app
    client = socketio.test_client(app)
    client.emit("count")
    observed.clear()
    with pytest.raises(ValueError, match="boom"):
        client.emit("fail")
    assert observed == _teardowns(
        teardowns,
        ("teardown_request", "fail", "ValueError('boom')"),
        ("teardown_appcontext", None, "ValueError('boom')"),
    )
    observed.clear()
    client.emit("count")  # the socket's contexts are still usable
    assert observed == _teardowns(
        teardowns,
        ("teardown_request", "count", "None"),
        ("teardown_appcontext", 1, "None"),
    )


def test_a_handler_gets_the_events_arguments_however_many(
    events_app: tuple[Flask, SocketIO],
) -> None:
    """The fast handler calls a handler of one argument without ``*args``."""
    app, socketio = events_app
    client = socketio.test_client(app)
    for args in [(), ("one",), ("one", 2), ([1, 2],), ("one", 2, [3])]:
        assert client.emit("arity", *args, callback=True) == [list(args), list(args)]


def test_an_error_handler_answers_in_the_contexts_of_the_event(app: Flask, push: str) -> None:
    socketio = SocketIO(app)

    @socketio.on("fail")
    def fail(value: str) -> None:
        g.value = value
        MARK.set(value)
        raise ValueError(value)

    @socketio.on_error()
    def on_error(exc: Exception) -> list[Any]:
        return [str(exc), g.value, request.event["message"], MARK.get("unset")]

    client = socketio.test_client(app)
    for value in ("a", "b"):
        assert client.emit("fail", value, callback=True) == [value, value, "fail", value]


def test_request_attributes_do_not_leak_between_events(
    events_app: tuple[Flask, SocketIO],
) -> None:
    app, socketio = events_app
    client = socketio.test_client(app, query_string="room=blue")
    client.emit("mark", "one")
    seen = client.emit("peek", callback=True)
    assert seen["mark"] is None  # set on the previous event's request object
    assert seen["sid"] == client.get_sid()
    assert seen["event"] == {"message": "peek", "args": []}
    assert (seen["path"], seen["args"]["room"]) == ("/socket.io/", "blue")


def test_request_attributes_do_not_leak_between_sockets(
    events_app: tuple[Flask, SocketIO],
) -> None:
    app, socketio = events_app
    one, two = socketio.test_client(app), socketio.test_client(app)
    one.emit("mark", "one")
    seen = two.emit("peek", callback=True)
    assert (seen["mark"], seen["sid"]) == (None, two.get_sid())
    assert one.emit("peek", callback=True)["sid"] == one.get_sid()


def test_current_app_and_url_for(events_app: tuple[Flask, SocketIO]) -> None:
    app, socketio = events_app
    client = socketio.test_client(app)
    assert client.emit("links", callback=True) == [app.name, "/page/3", "/page/4"]
    assert client.emit("links", callback=True) == [app.name, "/page/3", "/page/4"]


def test_copy_current_request_context_carries_the_event(
    events_app: tuple[Flask, SocketIO],
) -> None:
    app, socketio = events_app
    client = socketio.test_client(app)
    assert client.emit("copy", callback=True) == [client.get_sid(), "copy"]


def test_the_helpers_act_on_the_events_client_in_a_copied_request_context(
    app: Flask, push: str
) -> None:
    """``flask.copy_current_request_context`` carries the event, as it carries
    ``request.sid``: ``emit()`` without ``to=``, ``join_room()`` and ``rooms()`` act on
    the event's client in a greenlet that runs after the handler returned (Flask-SocketIO's
    helpers read ``request.sid`` there)."""
    socketio = SocketIO(app)
    tasks: list[gevent.Greenlet[Any, Any]] = []

    @socketio.on("later")
    def later(value: str) -> None:
        @flask.copy_current_request_context
        def task() -> None:
            join_room("copied")
            emit("done", [value, request.sid, request.event["message"], rooms()])  # type: ignore[attr-defined]

        tasks.append(gevent.spawn(task))

    client = socketio.test_client(app)
    client.emit("later", "x")
    gevent.joinall(tasks, raise_error=True)
    sid = client.get_sid()
    client.emit("later", "y")  # the socket's contexts, pushed again, serve the next event
    gevent.joinall(tasks, raise_error=True)
    received = client.get_received()
    assert [message["args"] for message in received if message["name"] == "done"] == [
        [["x", sid, "later", [sid, "copied"]]],
        [["y", sid, "later", [sid, "copied"]]],
    ]


def test_an_event_nested_in_an_event_of_the_same_socket_has_its_own_contexts(
    events_app: tuple[Flask, SocketIO], observed: list[Any]
) -> None:
    app, socketio = events_app
    client = socketio.test_client(app)
    client.emit("kick")
    events = [entry for entry in observed if entry[0] in ("disconnect", "kick")]
    assert events == [("disconnect", None, "disconnect"), ("kick", "kick", "kick")]


def test_signals_are_sent_for_each_event(events_app: tuple[Flask, SocketIO]) -> None:
    app, socketio = events_app
    client = socketio.test_client(app)
    client.emit("count")  # the socket's first event (the plain push opens the session)
    sent: list[str] = []
    receivers = {
        flask.appcontext_pushed: lambda sender, **extra: sent.append("pushed"),
        flask.request_tearing_down: lambda sender, **extra: sent.append("request down"),
        flask.appcontext_tearing_down: lambda sender, **extra: sent.append("app down"),
        flask.appcontext_popped: lambda sender, **extra: sent.append("popped"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver, app)
    try:
        client.emit("count")
        client.emit("count")
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver, app)
    assert sent == ["pushed", "request down", "app down", "popped"] * 2


def test_context_variables_a_handler_sets_stay_in_its_event(
    events_app: tuple[Flask, SocketIO],
) -> None:
    app, socketio = events_app
    one, two = socketio.test_client(app), socketio.test_client(app)
    assert one.emit("set_mark", "one", callback=True) == "one"
    assert one.emit("get_mark", callback=True) == "unset"
    assert two.emit("get_mark", callback=True) == "unset"


@pytest.mark.parametrize(
    "signal",
    [
        flask.appcontext_pushed,
        flask.request_tearing_down,
        flask.appcontext_tearing_down,
        flask.appcontext_popped,
    ],
    ids=lambda signal: str(signal.name),
)
def test_each_signal_sees_the_contexts_flask_gives_it(
    events_app: tuple[Flask, SocketIO], signal: Any
) -> None:
    """Any one receiver makes the fast path push the contexts one by one (the request
    context only where Flask has it); the event is current throughout."""
    app, socketio = events_app
    client = socketio.test_client(app)
    client.emit("count")
    seen: list[tuple[bool, bool, str | None]] = []

    def receiver(sender: Flask, **extra: Any) -> None:
        event = optional_event()
        name = None if event is None else event.event
        seen.append((flask.has_app_context(), flask.has_request_context(), name))

    signal.connect(receiver, app)
    try:
        client.emit("count")
    finally:
        signal.disconnect(receiver, app)
    in_app = signal is not flask.appcontext_popped
    in_request = signal is flask.request_tearing_down
    assert seen == [(in_app, in_request, "count")]


def test_teardown_appcontext_runs_after_the_request_context_is_popped(
    app: Flask, push: str
) -> None:
    socketio = SocketIO(app)
    seen: list[tuple[bool, bool, str | None]] = []

    @app.teardown_appcontext
    def teardown(exc: BaseException | None) -> None:
        event = optional_event()
        name = None if event is None else event.event
        seen.append((flask.has_app_context(), flask.has_request_context(), name))

    @socketio.on("ping")
    def ping() -> str:
        return "pong"

    client = socketio.test_client(app)
    assert client.emit("ping", callback=True) == "pong"
    assert seen == [(True, False, "ping")]


def test_after_this_request_functions_never_run_nor_pile_up(app: Flask, push: str) -> None:
    socketio = SocketIO(app)
    called: list[str] = []

    @socketio.on("later")
    def later() -> int:
        pending = len(flask.globals.request_ctx._after_request_functions)
        flask.after_this_request(lambda response: called.append("after"))
        return pending

    client = socketio.test_client(app)
    assert [client.emit("later", callback=True) for _ in range(3)] == [0, 0, 0]
    assert called == []


def test_flashed_messages_are_read_once(app: Flask, push: str) -> None:
    """Flask caches the messages read in the request context: the next event must not
    see them again."""
    socketio = SocketIO(app)

    @socketio.on("flash")
    def flash(message: str) -> None:
        flask.flash(message)

    @socketio.on("read")
    def read() -> list[str]:
        return list(flask.get_flashed_messages())

    client = socketio.test_client(app)
    client.emit("flash", "one")
    assert client.emit("read", callback=True) == ["one"]
    assert client.emit("read", callback=True) == []


def test_a_context_copied_in_a_handler_has_no_event_after_it(app: Flask, push: str) -> None:
    socketio = SocketIO(app)
    copies: list[Any] = []

    @socketio.on("copy")
    def copy() -> str:
        copies.append(copy_context())
        return copies[-1].run(lambda: current_event().event)

    client = socketio.test_client(app)
    assert client.emit("copy", callback=True) == "copy"
    assert copies[0].run(optional_event) is None


def test_a_request_class_with_its_own_init_makes_a_request_per_event(push: str) -> None:
    serials = itertools.count()

    class CountingRequest(flask.Request):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.serial = next(serials)

    app = Flask(__name__)
    app.request_class = CountingRequest
    socketio = SocketIO(app)

    @socketio.on("serial")
    def serial() -> int:
        return int(request.serial)  # type: ignore[attr-defined]

    client = socketio.test_client(app)
    first, second = client.emit("serial", callback=True), client.emit("serial", callback=True)
    assert first != second


# -- concurrent events of one socket (async_handlers=True), without a server ---------------


class _Namespace:
    name = "/"


class _Handshake:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/socket.io/", "SERVER_NAME": "localhost"}
    environ |= {"SERVER_PORT": "80", "wsgi.url_scheme": "http", "QUERY_STRING": "EIO=4"}


class _Socket:
    """What EventContexts reads of a geventsio socket."""

    def __init__(self, id: str) -> None:
        self.id = id
        self.namespace = _Namespace()
        self.handshake = _Handshake()
        self.data: dict[str, Any] = {}
        self.recovered = False

    def __hash__(self) -> int:
        return id(self)


def _raise(event: EventContext, exc: Exception) -> Any:
    raise exc


@pytest.fixture
def contexts(app: Flask, push: str) -> Iterator[EventContexts]:
    yield EventContexts(app, _raise)


def test_an_event_runs_in_a_context_of_its_own(contexts: EventContexts) -> None:
    """The handler sees none of the caller's context variables, and the caller none of
    the handler's."""
    socket: Any = _Socket("s1")

    def handler() -> str | None:
        seen = MARK.get(None)
        MARK.set("handler")
        return seen

    token = MARK.set("caller")
    try:
        for _ in range(2):  # the second time with the socket's contexts kept
            assert contexts.run(EventContext(socket, "e", ()), True, handler, ()) is None
            assert MARK.get() == "caller"
    finally:
        MARK.reset(token)


def test_what_a_socket_keeps_goes_with_the_socket(app: Flask) -> None:
    contexts = FastContexts(app, _raise)
    sockets = [_Socket("s1"), _Socket("s2")]
    for socket in sockets:
        contexts.run(EventContext(socket, "e", ()), True, lambda: None, ())
    assert contexts.socket_request(sockets[0]) is not contexts.socket_request(sockets[1])
    assert contexts.socket_request(sockets[0]).socket_ref() is sockets[0]
    del socket
    sockets.pop()
    gc.collect()
    assert len(contexts._sockets) == 1
    assert contexts.socket_request(sockets[0]) is not None


def test_concurrent_events_of_one_socket_have_their_own_contexts(
    app: Flask, contexts: EventContexts
) -> None:
    socket: Any = _Socket("s1")
    seen: dict[str, Any] = {}

    def handler(name: str) -> None:
        g.name = name
        gevent.sleep(0.01)  # the other event runs meanwhile
        seen[name] = (g.name, request.event["message"], flask.session.get("who"))
        flask.session["who"] = name

    def run(name: str) -> None:
        event = EventContext(socket, name, ())
        contexts.run(event, True, handler, (name,))

    gevent.joinall([gevent.spawn(run, "a"), gevent.spawn(run, "b")], raise_error=True)
    assert seen["a"][:2] == ("a", "a")
    assert seen["b"][:2] == ("b", "b")
    # Nothing of the session is kept in socket.data (fetch_sockets() sends it around).
    assert socket.data == {}


def test_an_idle_socket_drops_its_contexts_and_keeps_its_session(app: Flask) -> None:
    """Only the sockets that had an event last keep their environ, request template and
    contexts between events; the others keep their session copy and make the rest
    again at their next event (issue 20: an idle connection holds ~3 KiB less)."""
    contexts = FastContexts(app, _raise, warm_sockets=2)
    sockets = [_Socket(f"s{number}") for number in range(3)]

    def remember(value: str) -> tuple[str, str]:
        flask.session["who"] = value
        g.mark = value
        return request.sid, request.path  # type: ignore[attr-defined]

    def recall() -> tuple[Any, ...]:
        seen = (flask.session.get("who"), getattr(g, "mark", None))
        return (*seen, request.sid, request.event["message"])  # type: ignore[attr-defined]

    def run(socket: Any, name: str, function: Any, *args: Any) -> Any:
        return contexts.run(EventContext(socket, name, args), True, function, args)

    assert run(sockets[0], "remember", remember, "ada") == ("s0", "/socket.io/")
    first = contexts.socket_request(sockets[0])
    assert first.spare is not None and first.basis is not None
    run(sockets[1], "remember", remember, "grace")
    assert first.spare is not None  # two warm sockets: both kept
    run(sockets[2], "remember", remember, "edsger")
    assert (first.spare, first.basis) == (None, None)  # the coldest of three dropped them
    assert contexts.socket_request(sockets[2]).spare is not None
    assert run(sockets[0], "recall", recall) == ("ada", None, "s0", "recall")
    assert first.spare is not None  # warm again
    assert contexts.socket_request(sockets[1]).spare is None  # and now the coldest is s1
    assert run(sockets[1], "recall", recall) == ("grace", None, "s1", "recall")
    assert all(socket.data == {} for socket in sockets)
