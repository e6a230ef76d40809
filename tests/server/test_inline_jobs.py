"""A WebSocket's events run in the greenlet that read them; while one blocks, a relay
greenlet reads on for it (:mod:`geventsio.engine.lending`).

What must hold whichever greenlet runs a handler: the client's acknowledgements and the
close still arrive while a handler blocks, events are handled in order, handlers do not
see each other's context variables, and no relay outlives the blocked handler. Each test
runs under every pywsgi handler the application may be served by (geventsio's, pywsgi's,
gevent-websocket's, which answers ``101`` itself); the gunicorn workers end in the same
handlers (tests/deploy).
"""

from __future__ import annotations

from contextvars import ContextVar

import gevent
import orjson
import pytest
from gevent import pywsgi
from gevent.event import Event
from geventwebsocket.handler import WebSocketHandler

import geventsio
from tests.server.sio_support import RawSio, SioApp
from tests.support import wait_until

HANDLERS = {"geventsio": None, "pywsgi": pywsgi.WSGIHandler, "gevent-websocket": WebSocketHandler}


@pytest.fixture(params=list(HANDLERS))
def sio_server(serve_app, request):
    """``sio_server(**options) -> SioApp`` served by each pywsgi handler in turn."""

    def start(**options: object) -> SioApp:
        sio = geventsio.Server(**options)
        live = serve_app(
            geventsio.WSGIApp(sio), engine=sio.engine, handler_class=HANDLERS[request.param]
        )
        return SioApp(sio, live)

    return start


_SEEN: ContextVar[int | None] = ContextVar("_SEEN", default=None)


def answer_question(raw: RawSio, answer: str) -> None:
    """Read the server's ``question`` event and acknowledge it."""
    message = raw.recv(5)
    assert isinstance(message, str) and message.endswith('["question"]'), message
    raw.send(f"3{message[1 : message.index('[')]}" + orjson.dumps([answer]).decode())


def test_an_event_is_handled_in_the_greenlet_that_read_it(sio_server):
    app = sio_server()
    where = []

    @app.sio.on("where")
    def on_where(socket: geventsio.Socket) -> str:
        where.append(gevent.getcurrent() is socket.connection.engine.inline_reader)
        return "here"

    raw = app.raw()
    raw.connect()
    for ack_id in range(3):
        raw.emit("where", ack_id=ack_id)
        assert raw.recv(5) == f'3{ack_id}["here"]'
    assert where == [True, True, True]


def test_a_blocked_handler_is_relayed_and_what_follows_keeps_its_order(sio_server):
    app = sio_server()
    gate, order, relays = Event(), [], []

    @app.sio.on("block")
    def block(socket: geventsio.Socket) -> str:
        order.append(("answer", socket.call("question", timeout=5)))  # read by the relay
        relays.append(socket.connection._lease.relay)
        gate.wait(5)
        return "unblocked"

    @app.sio.on("next")
    def next_event(socket: geventsio.Socket, number: int) -> int:
        order.append(number)
        return number

    @app.sio.on("where")
    def on_where(socket: geventsio.Socket) -> bool:
        return gevent.getcurrent() is socket.connection.engine.inline_reader

    raw = app.raw()
    raw.connect()
    raw.emit("block", ack_id=1)
    answer_question(raw, "yes")
    for number in range(3):
        raw.emit("next", number, ack_id=10 + number)
    wait_until(lambda: relays, 5, "the blocked handler got its answer")
    gate.set()
    assert [raw.recv(5) for _ in range(4)] == ['31["unblocked"]', "310[0]", "311[1]", "312[2]"]
    assert order == [("answer", "yes"), 0, 1, 2]
    (relay,) = relays
    wait_until(lambda: relay.dead, 5, "the relay stopped once the handler returned")
    raw.emit("where", ack_id=20)
    assert raw.recv(5) == "320[true]"  # the reader is back: inline again


def test_a_client_leaving_while_a_handler_blocks_is_disconnected_after_it(sio_server):
    app = sio_server()
    entered, gate, order = Event(), Event(), []

    @app.sio.on("block")
    def block(socket: geventsio.Socket) -> None:
        entered.set()
        gate.wait(5)
        order.append("block returned")

    @app.sio.on("disconnect")
    def on_disconnect(socket: geventsio.Socket, reason: geventsio.DisconnectReason) -> None:
        order.append(str(reason))

    raw = app.raw()
    raw.connect()
    raw.emit("block")
    assert entered.wait(5)
    raw.ws.close()
    sid = raw.engine_sid
    wait_until(lambda: sid not in app.sio.engine.sessions, 5, "the relay read the close")
    gate.set()
    wait_until(lambda: len(order) == 2, 5, "the disconnect handler ran")
    assert order == ["block returned", "transport close"]


def test_handlers_do_not_see_each_others_context_variables(sio_server):
    app = sio_server()
    seen = []

    @app.sio.on("set")
    def on_set(socket: geventsio.Socket, value: int) -> int:
        seen.append(_SEEN.get())
        _SEEN.set(value)
        return value

    raw = app.raw()
    raw.connect()
    for value in (1, 2):
        raw.emit("set", value, ack_id=value)
        assert raw.recv(5) == f"3{value}[{value}]"
    assert seen == [None, None]


def test_an_event_read_while_the_worker_runs_other_work_waits_for_it(sio_server):
    app = sio_server()
    gate, order, sockets = Event(), [], []

    @app.sio.on("hello")
    def hello(socket: geventsio.Socket) -> str:
        sockets.append(socket)
        return "ok"

    @app.sio.on("after")
    def after(socket: geventsio.Socket) -> str:
        order.append("event")
        return "ok"

    def queued() -> None:
        gate.wait(5)
        order.append("queued")

    raw = app.raw()
    raw.connect()
    raw.emit("hello", ack_id=0)
    assert raw.recv(5) == '30["ok"]'
    sockets[0].connection.run_soon(queued)  # not from the reader: the worker runs it
    wait_until(lambda: sockets[0].connection._working)
    raw.emit("after", ack_id=1)  # read while the worker is blocked: queued behind it
    gevent.sleep(0.1)
    assert order == []
    gate.set()
    assert raw.recv(5) == '31["ok"]'
    assert order == ["queued", "event"]
