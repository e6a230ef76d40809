"""The client against geventsio's own server, in process: acks both ways, binary,
namespaces, refusal, server disconnect, and reconnection after a server restart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent.event
import pytest
from gevent import pywsgi

import geventsio
from geventsio import ConnectionRefused
from geventsio.client import NamespaceRefused
from geventsio.serving import make_server
from geventsio.serving.runner import shutdown
from tests.client.conftest import ClientFactory
from tests.client.helpers import TIMEOUT, Events
from tests.client.test_node_transports import BINARY, TRANSPORTS
from tests.support.waiting import wait_until


def build_server(serializer: str = "json") -> geventsio.Server:
    """A geventsio.Server with the same handlers as ``tests/js/client_server.mjs``."""
    sio = geventsio.Server(serializer=serializer)

    def echo(socket: Any, *args: Any) -> Any:
        return args

    sio.on("echo", echo)
    sio.on("echo", echo, namespace="/other")

    @sio.on("ask")
    def ask(socket: Any, event: str, *args: Any) -> Any:
        answer = socket.call(event, *args, timeout=5)
        return [] if answer is None else list(answer) if isinstance(answer, tuple) else [answer]

    @sio.on("emit_back")
    def emit_back(socket: Any, event: str, *args: Any) -> None:
        socket.emit(event, *args)

    def whoami(socket: Any) -> Any:
        return socket.namespace.name, socket.id, socket.engine_sid

    sio.on("whoami", whoami)
    sio.on("whoami", whoami, namespace="/other")

    @sio.on("disconnect_me")
    def disconnect_me(socket: Any) -> None:
        socket.disconnect()

    @sio.of("/refused").use
    def refuse(socket: Any, auth: Any) -> None:
        raise ConnectionRefused("not allowed", {"reason": "nope", "auth": auth})

    return sio


class OwnServer:
    """geventsio.Server served on 127.0.0.1, restartable on the same port."""

    def __init__(self, serializer: str = "json") -> None:
        self.serializer = serializer
        self.port = 0
        self.app: geventsio.WSGIApp | None = None
        self.wsgi: pywsgi.WSGIServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OwnServer:
        self.app = geventsio.WSGIApp(build_server(self.serializer))
        self.wsgi = make_server(self.app, "127.0.0.1", self.port)
        self.wsgi.start()
        self.port = self.wsgi.server_port
        return self

    def stop(self) -> None:
        wsgi, self.wsgi = self.wsgi, None
        if wsgi is not None:
            assert self.app is not None
            shutdown(wsgi, self.app, timeout=1.0)


@pytest.fixture
def own_server() -> Iterator[OwnServer]:
    server = OwnServer().start()
    yield server
    server.stop()


@pytest.fixture
def msgpack_server() -> Iterator[OwnServer]:
    server = OwnServer("msgpack").start()
    yield server
    server.stop()


@TRANSPORTS
def test_msgpack_serializer_acks_both_ways_and_binary(
    msgpack_server: OwnServer, make_client: ClientFactory, transports: Any, final: str
) -> None:
    client = make_client(serializer="msgpack")
    received = gevent.event.AsyncResult()
    client.on("binary", lambda *args: received.set(args))
    client.on("bytes", lambda data: (data, {"nested": [data]}))
    client.connect(msgpack_server.url, namespaces=["/", "/other"], transports=transports)
    assert client.call("echo", 1, "two", None, 1.5) == (1, "two", None, 1.5)
    assert client.call("echo", BINARY, b"top") == (BINARY, b"top")
    assert client.call("echo", "x", namespace="/other") == "x"
    client.call("emit_back", "binary", BINARY)
    assert received.get(timeout=TIMEOUT) == (BINARY,)
    assert client.call("ask", "bytes", b"\x00") == [b"\x00", {"nested": [b"\x00"]}]
    wait_until(lambda: client.transport == final, TIMEOUT, f"transport {final}")


def test_client_refuses_an_unknown_serializer() -> None:
    with pytest.raises(ValueError, match="serializer"):
        geventsio.Client(serializer="yaml")


@TRANSPORTS
def test_acks_both_ways_and_binary(
    own_server: OwnServer, make_client: ClientFactory, transports: Any, final: str
) -> None:
    client = make_client()
    received = gevent.event.AsyncResult()
    client.on("binary", lambda *args: received.set(args))
    client.on("double", lambda number: number * 2)
    client.on("bytes", lambda data: (data, {"nested": [data]}))
    client.connect(own_server.url, transports=transports)
    assert client.call("echo", 1, "two", None) == (1, "two", None)
    assert client.call("echo", BINARY, b"top") == (BINARY, b"top")
    client.call("emit_back", "binary", BINARY)  # no ack asked: the echo says it was sent
    assert received.get(timeout=TIMEOUT) == (BINARY,)
    assert client.call("ask", "double", 21) == [42]
    assert client.call("ask", "bytes", b"\x00") == [b"\x00", {"nested": [b"\x00"]}]
    wait_until(lambda: client.transport == final, TIMEOUT, f"transport {final}")


def test_namespaces_share_one_connection(own_server: OwnServer, make_client: ClientFactory) -> None:
    client = make_client()
    client.connect(own_server.url, namespaces=["/", "/other"])
    root = client.call("whoami")
    other = client.call("whoami", namespace="/other")
    assert (root[0], other[0]) == ("/", "/other")
    assert root[2] == other[2]  # one engine session
    assert (client.sid(), client.sid("/other")) == (root[1], other[1])


def test_refusal_carries_the_servers_data(
    own_server: OwnServer, make_client: ClientFactory
) -> None:
    client = make_client()
    with pytest.raises(NamespaceRefused) as info:
        client.connect(own_server.url, namespaces=["/refused"], auth={"token": "t"})
    assert info.value.server_message == "not allowed"
    assert info.value.data == {"reason": "nope", "auth": {"token": "t"}}


def test_server_disconnect_does_not_reconnect(
    own_server: OwnServer, make_client: ClientFactory
) -> None:
    client = make_client()
    events = Events(client)
    client.connect(own_server.url, transports=["websocket"])
    client.emit("disconnect_me")
    client.wait()
    assert events.reasons() == ["io server disconnect"]
    assert not events.of("reconnect_attempt")


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_reconnects_after_a_restart_and_delivers_buffered_emits(
    own_server: OwnServer, make_client: ClientFactory, transport: str
) -> None:
    client = make_client()
    events = Events(client)
    client.connect(own_server.url, transports=[transport])
    own_server.stop()
    events.wait_for("disconnect")
    assert events.reasons()[0] in ("transport close", "transport error")
    buffered = [client.emit("echo", n, timeout=TIMEOUT) for n in range(3)]
    events.wait_for("reconnect_error")
    own_server.start()
    events.wait_for("connect", 2)
    assert [ack.get() for ack in buffered if ack is not None] == [0, 1, 2]
    assert client.call("echo", "after") == "after"
