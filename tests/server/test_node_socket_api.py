"""Node's Socket API beyond emit: catch-all listeners managed as Node's are
(``prependAny``, ``offAny``, ``listenersAny`` and their outgoing twins) and chained emit
options (``socket.timeout(s).emit``, ``socket.volatile``, ``socket.compress``), against a
raw client on a real WebSocket."""

from __future__ import annotations

import gzip

import gevent.event
import orjson
import pytest

from geventsio import AckTimeout
from tests.support import wait_until


def connected(app):
    """A raw client connected to ``/``, and the server's socket for it."""
    sockets = []

    @app.sio.on("connect")
    def keep(socket):
        sockets.append(socket)

    raw = app.raw()
    assert raw.connect() == sockets[0].id
    return raw, sockets[0]


def next_event(raw) -> list:
    while True:
        message = raw.recv(timeout=5)
        if isinstance(message, str) and message.startswith("2"):
            return orjson.loads(message[1:])


def test_catch_all_listeners_prepended_listed_and_removed(sio_server) -> None:
    app = sio_server()
    heard: list[str] = []
    raw, socket = connected(app)
    handled = gevent.event.Event()
    socket.on("sync", lambda *_: handled.set())

    def sent_and_handled(event: str) -> None:
        handled.clear()
        raw.emit(event)
        raw.emit("sync")  # events are handled in order: after this one, the first is
        assert handled.wait(5)

    def first(event, *args):
        heard.append(f"first:{event}")

    def second(event, *args):
        heard.append(f"second:{event}")

    socket.on_any(second)
    socket.prepend_any(first)
    assert socket.listeners_any() == [first, second]
    sent_and_handled("a")
    socket.off_any(first)
    assert socket.listeners_any() == [second]
    socket.listeners_any().clear()  # a copy: the socket's own list is untouched
    assert socket.listeners_any() == [second]
    sent_and_handled("b")
    socket.off_any()
    sent_and_handled("c")

    assert heard == ["first:a", "second:a", "first:sync", "second:sync", "second:b", "second:sync"]


def test_outgoing_listeners_prepended_listed_and_removed(sio_server) -> None:
    app = sio_server()
    seen: list[str] = []
    raw, socket = connected(app)

    def late(event, *args):
        seen.append(f"late:{event}")

    def early(event, *args):
        seen.append(f"early:{event}")

    socket.on_any_outgoing(late)
    socket.prepend_any_outgoing(early)
    assert socket.listeners_any_outgoing() == [early, late]
    socket.emit("one")
    assert next_event(raw) == ["one"]
    socket.off_any_outgoing(late)
    socket.emit("two")
    assert next_event(raw) == ["two"]
    socket.off_any_outgoing()
    socket.emit("three")
    assert next_event(raw) == ["three"]
    assert seen == ["early:one", "late:one", "early:two"]
    assert socket.listeners_any_outgoing() == []


def test_timeout_emit_gets_the_answer_or_an_ack_timeout(sio_server) -> None:
    app = sio_server()
    raw, socket = connected(app)
    answered = gevent.event.AsyncResult()
    silent = gevent.event.AsyncResult()

    socket.timeout(5).emit("ask", 1, callback=lambda error, *args: answered.set((error, args)))
    message = raw.recv(timeout=5)
    assert isinstance(message, str) and message.startswith("2"), message
    ack_id = int(message[1 : message.index("[")])
    raw.send(f'3{ack_id}["yes"]')
    assert answered.get(timeout=5) == (None, ("yes",))

    socket.timeout(0.2).emit("ask", 2, callback=lambda error, *args: silent.set((error, args)))
    error, args = silent.get(timeout=5)  # the client never answers
    assert isinstance(error, AckTimeout) and args == ()


def test_timeout_call_raises_ack_timeout(sio_server) -> None:
    app = sio_server()
    _raw, socket = connected(app)
    with pytest.raises(AckTimeout):
        socket.timeout(0.2).call("ask")  # the raw client never answers


def test_volatile_and_compress_chain_and_still_deliver(sio_server) -> None:
    app = sio_server()
    raw, socket = connected(app)
    socket.volatile.compress(False).emit("news", "x")
    assert next_event(raw) == ["news", "x"]
    emitter = socket.compress(True).timeout(1)
    assert (emitter.seconds, emitter.is_volatile, emitter.compressed) == (1, False, True)
    with pytest.raises(ValueError, match="positive"):
        socket.timeout(0)


def polling_connected(app, headers=()):
    """A raw long-polling client connected to ``/``, and the server's socket for it."""
    sockets = []

    @app.sio.on("connect")
    def keep(socket):
        sockets.append(socket)

    client = app.live.polling(headers=headers)
    client.handshake()
    client.send("0")  # Socket.IO CONNECT to "/"
    (ack,) = client.get()
    assert str(ack.data).startswith("0{")
    return client, sockets[0]


def test_volatile_is_dropped_unless_a_poll_is_waiting(sio_server) -> None:
    app = sio_server()
    client, socket = polling_connected(app)
    socket.volatile.emit("news", "lost")  # no GET waiting: Node drops it too
    socket.emit("news", "kept")
    assert client.get_response().body == b'42["news","kept"]'

    waiting = client.spawn_get()
    wait_until(lambda: socket.conn.writable, 5.0, "a GET waiting on the server")
    socket.volatile.emit("news", "delivered")
    assert waiting.get(timeout=5).body == b'42["news","delivered"]'
    client.close()


def test_compress_false_leaves_a_polling_answer_uncompressed(sio_server) -> None:
    app = sio_server()
    client, socket = polling_connected(app, headers=[("Accept-Encoding", "gzip")])
    large = "x" * 2000
    expected = b'42["news","' + large.encode() + b'"]'

    socket.compress(False).emit("news", large)
    response = client.get_response()
    assert (response.header("Content-Encoding"), response.body) == (None, expected)

    app.sio.to(socket.id).compress(False).emit("news", large)  # a broadcast, too
    response = client.get_response()
    assert (response.header("Content-Encoding"), response.body) == (None, expected)

    socket.emit("news", large)
    response = client.get_response()
    assert response.header("Content-Encoding") == "gzip"
    assert gzip.decompress(response.body) == expected
    client.close()


def test_a_listener_that_removes_itself_leaves_the_others_called_once(sio_server) -> None:
    app = sio_server()
    heard: list[str] = []
    raw, socket = connected(app)
    done = gevent.event.Event()

    def once(event, *args):
        heard.append(f"once:{event}")
        socket.off_any(once)
        socket.on_any(late)  # added while the listeners run: heard from the next event

    def steady(event, *args):
        heard.append(f"steady:{event}")
        if event == "b":
            done.set()

    def late(event, *args):
        heard.append(f"late:{event}")

    socket.on_any(once)
    socket.on_any(steady)
    raw.emit("a")
    raw.emit("b")
    assert done.wait(5)
    assert heard == ["once:a", "steady:a", "steady:b", "late:b"]
