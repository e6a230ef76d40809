"""Namespaces in process: registration misuse, and dynamic children as server-wide
namespaces (reachable by name, shut down with the server)."""

from __future__ import annotations

import re

import orjson
import pytest

import geventsio
from geventsio import LocalProtocolError
from geventsio.adapters.memory import InMemoryAdapter
from tests.support import wait_until


def test_names_are_normalised_and_namespaces_created_once():
    sio = geventsio.Server()
    assert sio.of("chat") is sio.of("/chat")
    assert sio.of("/chat").name == "/chat"


def test_registration_misuse_fails_at_once():
    sio = geventsio.Server()
    with pytest.raises(LocalProtocolError, match="not callable"):
        sio.on("chat", "not a function")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="compiled pattern or a callable"):
        sio.of(42)  # type: ignore[arg-type]


class ClosingAdapter(InMemoryAdapter):
    """An in-memory adapter that records its close (as a cluster adapter must close)."""

    closed: list[str] = []

    def close(self) -> None:
        ClosingAdapter.closed.append(self.namespace.name)


def test_shutdown_closes_the_adapter_of_every_namespace(sio_server, monkeypatch):
    # dynamic children included: a cluster adapter holds connections to close
    monkeypatch.setattr(ClosingAdapter, "closed", [])
    app = sio_server(adapter=ClosingAdapter)
    app.sio.of(re.compile(r"^/dyn-\d+$"))
    app.sio.of("/static")
    raw = app.raw()
    raw.connect("/dyn-1")

    app.sio.shutdown()

    assert sorted(ClosingAdapter.closed) == ["/", "/dyn-1", "/static"]


# -- dynamic children are bounded --------------------------------------------------------


class CountingAdapter(InMemoryAdapter):
    """An in-memory adapter that records which namespaces got one and which closed it."""

    opened: list[str] = []
    closed: list[str] = []

    def __init__(self, namespace) -> None:
        super().__init__(namespace)
        CountingAdapter.opened.append(namespace.name)

    def close(self) -> None:
        CountingAdapter.closed.append(self.namespace.name)


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setattr(CountingAdapter, "opened", [])
    monkeypatch.setattr(CountingAdapter, "closed", [])
    return CountingAdapter


def refusal(raw, namespace: str) -> dict:
    """Send a CONNECT that the server refuses; return the connect_error's data."""
    raw.send(f"0{namespace},")
    answer = raw.recv()
    prefix = f"4{namespace},"
    assert isinstance(answer, str) and answer.startswith(prefix), answer
    return orjson.loads(answer[len(prefix) :])


def test_a_child_exists_only_once_the_middleware_accepts(sio_server, counting):
    app = sio_server(adapter=counting)
    parent = app.sio.of(re.compile(r"^/dyn-\d+$"))

    @parent.use
    def only_with_a_token(socket, auth):
        if not auth or auth.get("token") != "yes":
            raise geventsio.ConnectionRefused("no token")

    raw = app.raw()
    for i in range(50):
        assert refusal(raw, f"/dyn-{i}") == {"message": "no token"}
    assert parent.children == {}
    assert app.sio.get_namespace("/dyn-1") is None
    assert counting.opened == ["/"]  # no adapter (no Redis subscription) for any of them

    raw.send('0/dyn-1,{"token":"yes"}')
    assert raw.recv().startswith("0/dyn-1,{")
    assert list(parent.children) == ["/dyn-1"]
    assert counting.opened == ["/", "/dyn-1"]
    raw.ws.close()


@pytest.mark.parametrize("cleanup", [True, False])
def test_empty_children_are_removed_with_cleanup_on(sio_server, counting, cleanup):
    app = sio_server(adapter=counting, cleanup_empty_child_namespaces=cleanup)
    parent = app.sio.of(re.compile(r"^/dyn-\d+$"))
    left = []
    parent.on("disconnect", lambda socket: left.append(socket.namespace.name))
    raw = app.raw()
    names = [f"/dyn-{i}" for i in range(20)]
    for name in names:
        raw.connect(name)
    assert sorted(parent.children) == sorted(names)

    for name in names:
        raw.send(f"1{name},")  # leave the namespace
    wait_until(lambda: len(left) == len(names), 5.0, "every socket gone")
    if cleanup:
        wait_until(lambda: not parent.children, 5.0, "every child removed")
        assert sorted(counting.closed) == sorted(names)
    else:  # Node's default: a child stays once created
        assert sorted(parent.children) == sorted(names)
        assert counting.closed == []
    raw.connect("/dyn-0")  # and a removed child comes back on demand
    assert "/dyn-0" in parent.children
    raw.ws.close()
    app.live.wait_sessions(0)  # its clean-up (an adapter closed) is this test's, not the next's


def test_children_over_the_cap_are_refused_with_a_connect_error(sio_server, caplog):
    app = sio_server(max_child_namespaces=3, cleanup_empty_child_namespaces=True)
    parent = app.sio.of(lambda name, auth: name.startswith("/room-"))
    raw = app.raw()
    for i in range(3):
        raw.connect(f"/room-{i}")
    assert refusal(raw, "/room-3") == {"message": "Too many namespaces"}
    assert refusal(raw, "/room-4") == {"message": "Too many namespaces"}
    assert caplog.text.count("max_child_namespaces") == 1  # a WARNING once, DEBUG after
    assert sorted(parent.children) == ["/room-0", "/room-1", "/room-2"]

    other = app.raw()
    other.connect("/room-1")  # an existing child still takes new sockets
    raw.send("1/room-0,")
    wait_until(lambda: "/room-0" not in parent.children, 5.0, "the empty child removed")
    raw.connect("/room-3")  # room for one more
    raw.ws.close()
    other.ws.close()
