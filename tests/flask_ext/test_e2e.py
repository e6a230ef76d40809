"""The Flask application of ``app.py`` served for real, driven by Node's socket.io-client."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import flask
import orjson
import pytest
from flask import Flask, g, request

from flask_ext import Namespace, SocketIO
from tests.flask_ext.app import create_app
from tests.server.sio_support import RawSio
from tests.support import LiveServer, open_websocket, wait_until
from tests.support.node import run_node

ServeApp = Callable[..., LiveServer]


@pytest.mark.e2e
def test_flask_app_with_the_javascript_client(serve_app: ServeApp) -> None:
    app, socketio = create_app()
    assert socketio.server is not None
    # The Flask app itself is the WSGI app: init_app wrapped its wsgi_app.
    server = serve_app(app, engine=socketio.server.engine)

    result = run_node("flask_e2e.mjs", server.url)

    assert result.get("ok"), result
    assert result["hello"] == {"auth": {"token": "t"}, "user": "alice"}
    assert result["transport"] == "websocket"
    # Flask-Login and the session cookie set by an HTTP route, inside a handler.
    whoami = result["whoami"]
    assert (whoami["user"], whoami["color"], whoami["sid"]) == ("alice", "blue", result["sid"])
    assert whoami["event"] == {"message": "whoami", "args": []}
    assert result["sessionAfterSet"] == "green"
    # A tuple is several arguments, both as an event and as an acknowledgement.
    assert result["pairAck"] == [1, "two"]
    assert result["pairEvent"] == [1, "two"]
    # An HTTP route emitting to a room.
    assert result["rooms"] == [result["sid"], "news"]
    assert result["notifyStatus"] == 200
    assert result["notice"] == {"room": "news", "text": "hello"}
    # emit(callback=...) gets the client's ack arguments, in the asking client's context.
    assert result["answered"] == {"answer": ["because", 4], "sid": result["sid"]}
    # A class-based namespace.
    assert result["welcome"] == {"sid": result["chatSid"], "auth": {"k": 1}}
    assert result["chatEcho"] == [1, "a"]
    assert result["chatWhoami"] == {"namespace": "/chat", "user": "alice"}
    # A refusal with data.
    assert result["refused"] == {"message": "go away", "data": {"code": 42}}

    events = socketio.events  # type: ignore[attr-defined]
    wait_until(
        lambda: ("disconnect", result["sid"], "client namespace disconnect") in events,
        5,
        "the disconnect handler",
    )
    assert ("chat disconnect", "client namespace disconnect") in events


def test_catch_all_namespaces_are_removed_when_empty(serve_app: ServeApp) -> None:
    # namespaces="*" accepts any name: without the cleanup, every name a client ever
    # tried would stay in memory (and, on Redis, subscribed).
    app = Flask(__name__)
    socketio = SocketIO(app, namespaces="*")
    assert socketio.server is not None
    server = serve_app(app, engine=socketio.server.engine)
    (parent,) = socketio.server.parent_namespaces
    ws, open_data = open_websocket(server)
    raw = RawSio(ws, open_data)
    names = [f"/a{i}" for i in range(30)]
    for name in names:
        raw.connect(name)
    assert len(parent.children) == len(names)
    for name in names:
        raw.send(f"1{name},")
    wait_until(lambda: not parent.children, 5.0, "the empty children removed")
    ws.close()


def test_a_disconnected_client_leaves_nothing_behind(serve_app: ServeApp) -> None:
    # The cached route of a socket once kept, through werkzeug's NoMatch traceback, the
    # frames of its first event, and so the socket, its connection and its session:
    # ~14 KiB per connection, for good (bench/soak.py found it).
    app = Flask(__name__)
    socketio = SocketIO(app)
    socketio.on("echo")(lambda data: data)
    assert socketio.server is not None
    server = serve_app(app, engine=socketio.server.engine)
    sessions = []
    for _ in range(6):
        ws, open_data = open_websocket(server)
        raw = RawSio(ws, open_data)
        raw.connect()
        raw.emit("echo", 1, ack_id=1)
        assert raw.recv() == "31[1]"
        sessions.append(weakref.ref(socketio.server.engine.sessions[open_data["sid"]]))
        ws.close()
    server.wait_sessions(0)
    gc.collect()
    # Nothing that grows with the clients served (the test harness may hold the first).
    assert sum(ref() is not None for ref in sessions) <= 1


#: A context variable the handlers of ``_described`` set.
_MARK: ContextVar[str] = ContextVar("test_e2e.mark")


def _describe(*args: Any) -> dict[str, Any]:
    """What an event's handler sees of its request, ``g``, session and context
    variables."""
    before = [getattr(g, "seen", None), _MARK.get(None)]
    g.seen = "yes"
    _MARK.set("set")
    flask.session["count"] = flask.session.get("count", 0) + 1
    return {
        "args": list(args),
        "before": before,
        "event": request.event,  # type: ignore[attr-defined]
        "namespace": request.namespace,  # type: ignore[attr-defined]
        "sid": request.sid,  # type: ignore[attr-defined]
        "count": flask.session["count"],
        "query": request.args.get("q"),
    }


def _fail(value: str) -> None:
    g.value = value
    raise ValueError(value)


class _Described(Namespace):
    """``_describe`` and ``_fail`` as a class-based namespace's methods."""

    def on_describe(self, *args: Any) -> dict[str, Any]:
        return _describe(*args)

    def on_fail(self, value: str) -> None:
        _fail(value)


def _register(socketio: SocketIO, handlers: str) -> None:
    if handlers == "functions":
        socketio.on("describe")(_describe)
        socketio.on("fail")(_fail)
    elif handlers == "catch-all":
        chosen = {"describe": _describe, "fail": _fail}
        socketio.on("*")(lambda event, *args: chosen[event](*args))
    else:
        socketio.on_namespace(_Described("/"))


def _described(serve_app: ServeApp, handlers: str, general: bool) -> list[Any]:
    """The answers of an application to a client's events, with each event's request,
    ``g``, session and context variables as the handler sees them (``general``: a
    ``before_event`` function lets every event through, which takes flask_ext's
    general path)."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "e2e"
    socketio = SocketIO(app)
    _register(socketio, handlers)

    @socketio.on_error()
    def on_error(exc: Exception) -> list[Any]:
        return [repr(exc), g.value, request.event["message"]]  # type: ignore[attr-defined]

    if general:
        socketio.before_event(lambda event, *args: None)
    assert socketio.server is not None
    server = serve_app(app, engine=socketio.server.engine)
    ws, open_data = open_websocket(server, q="blue")
    raw = RawSio(ws, open_data)
    sid = raw.connect()
    calls: list[tuple[Any, ...]] = [("describe",), ("describe", 1), ("fail", "x")]
    calls += [("describe", 1, [2]), ("fail", "y"), ("describe", {"a": None})]
    answers = []
    for ack_id, call in enumerate(calls):
        raw.emit(*call, ack_id=ack_id)
        answer = raw.recv()
        assert isinstance(answer, str) and answer.startswith(f"3{ack_id}["), answer
        answers.append(orjson.loads(answer[len(f"3{ack_id}") :].replace(sid, "<sid>")))
    ws.close()
    return answers


@pytest.mark.parametrize("handlers", ["functions", "catch-all", "class"])
def test_a_warm_sockets_events_are_answered_as_on_the_general_path(
    serve_app: ServeApp, handlers: str
) -> None:
    """A warm socket's events take flask_ext's one-call handler
    (``fastpath._plain_event_handler``, with the event's handlers as functions, as a
    catch-all or in a class): its answers are the general path's."""
    fast = _described(serve_app, handlers, general=False)
    assert fast == _described(serve_app, handlers, general=True)
    assert fast[3] == [
        {
            "args": [1, [2]],
            "before": [None, None],
            "event": {"message": "describe", "args": [1, [2]]},
            "namespace": "/",
            "sid": "<sid>",
            "count": 3,
            "query": "blue",
        }
    ]
    assert fast[4] == [["ValueError('y')", "y", "fail"]]
