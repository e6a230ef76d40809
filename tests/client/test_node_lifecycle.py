"""Connecting, disconnecting and reconnecting against the Node reference server: errors,
disconnect reasons, heartbeat, buffered, volatile and retried emits."""

from __future__ import annotations

import itertools
import ssl
import time
from typing import Any

import gevent
import gevent.event
import gevent.server
import pytest

from geventsio import AckTimeout, LocalProtocolError, NotConnected
from geventsio.client import ConnectFailed, EmitBufferFull, NamespaceRefused
from tests.client.conftest import ClientFactory, NodeServer, NodeServerFactory
from tests.client.helpers import TIMEOUT, Events
from tests.support.waiting import wait_until

BOTH = pytest.mark.parametrize("transport", ["polling", "websocket"])


# -- connecting ----------------------------------------------------------------------


def test_connection_refused_fails_quickly(make_client: ClientFactory) -> None:
    listener = gevent.server.StreamServer(("127.0.0.1", 0), lambda *args: None)
    listener.init_socket()
    port = listener.server_port
    listener.close()  # the port is now (almost certainly) closed
    client = make_client()
    events = Events(client)
    start = time.monotonic()
    with pytest.raises(ConnectFailed) as info:
        client.connect(f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 2
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert not client.connected
    client.wait()  # returns at once: nothing to wait for
    assert [entry[:2] for entry in events.log] == [("connect_error", "/")]


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_a_silent_server_times_out(make_client: ClientFactory, transport: str) -> None:
    release = gevent.event.Event()
    silent = gevent.server.StreamServer(("127.0.0.1", 0), lambda *args: release.wait())
    silent.start()
    try:
        client = make_client(request_timeout=0.3)
        start = time.monotonic()
        with pytest.raises(ConnectFailed, match=r"within 0\.3s"):
            client.connect(f"http://127.0.0.1:{silent.server_port}", transports=[transport])
        assert time.monotonic() - start < 2
    finally:
        release.set()
        silent.stop()


def test_refused_namespace_carries_the_servers_data(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client()
    events = Events(client, ["/refused"])
    with pytest.raises(NamespaceRefused) as info:
        client.connect(shared_node_server.url, namespaces=["/refused"])
    error = info.value
    assert isinstance(error, ConnectionError)
    assert (error.namespace, error.server_message) == ("/refused", "not allowed")
    assert error.data == {"reason": "nope", "code": 42}
    [(_, namespace, reported)] = events.of("connect_error")
    assert namespace == "/refused" and reported is error
    assert not client.connected
    client.wait()


def test_one_refused_namespace_fails_the_whole_connect(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client()
    events = Events(client, ["/", "/refused"])
    with pytest.raises(NamespaceRefused):
        client.connect(
            shared_node_server.url, namespaces=["/", "/refused"], transports=["websocket"]
        )
    assert not client.connected and client.sid() is None
    assert events.reasons("/") == ["io client disconnect"]
    with pytest.raises(NotConnected):
        client.emit("echo")


def test_auth_dict(shared_node_server: NodeServer, make_client: ClientFactory) -> None:
    client = make_client()
    client.connect(shared_node_server.url, namespaces=["/private"], auth={"token": "secret"})
    assert client.call("auth", namespace="/private") == {"token": "secret"}


def test_auth_refused(shared_node_server: NodeServer, make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(NamespaceRefused, match="bad token"):
        client.connect(shared_node_server.url, namespaces=["/private"], auth={"token": "wrong"})


def test_auth_callable_is_called_on_each_connection(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    counter = itertools.count(1)
    client = make_client()
    events = Events(client, ["/", "/private"])
    client.connect(
        shared_node_server.url,
        namespaces=["/", "/private"],
        auth=lambda: {"token": "secret", "n": next(counter)},
        transports=["websocket"],
    )
    # Called once per namespace and connection, in the order of the namespaces.
    assert (client.call("auth")["n"], client.call("auth", namespace="/private")["n"]) == (1, 2)
    client.emit("drop_all")
    events.wait_for("connect", 4)  # each namespace connected twice
    assert (client.call("auth")["n"], client.call("auth", namespace="/private")["n"]) == (3, 4)


def test_tls_certificate_is_verified(
    node_server_factory: NodeServerFactory, make_client: ClientFactory, tls_files: Any
) -> None:
    server = node_server_factory(tls=tls_files)
    client = make_client()
    with pytest.raises(ConnectFailed) as info:
        client.connect(server.url)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)

    trusting = make_client(ssl_context=ssl.create_default_context(cafile=str(tls_files[0])))
    trusting.connect(server.url)  # polling over https, then wss
    wait_until(lambda: trusting.transport == "websocket", TIMEOUT)
    assert trusting.call("echo", b"secure") == b"secure"
    trusting.disconnect()

    careless = make_client(ssl_verify=False)
    careless.connect(server.url.replace("https", "wss"), transports=["websocket"])
    assert careless.call("echo", 1) == 1


# -- disconnecting -------------------------------------------------------------------


@BOTH
def test_server_disconnect_does_not_reconnect(
    shared_node_server: NodeServer, make_client: ClientFactory, transport: str
) -> None:
    client = make_client()
    events = Events(client)
    client.connect(shared_node_server.url, transports=[transport])
    client.emit("disconnect_me")
    client.wait()
    assert events.reasons() == ["io server disconnect"]
    assert not events.of("reconnect_attempt")
    assert not client.connected and client.transport is None


def test_server_disconnect_of_one_namespace_keeps_the_others(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client()
    events = Events(client, ["/", "/other"])
    client.connect(shared_node_server.url, namespaces=["/", "/other"], transports=["websocket"])
    client.emit("disconnect_me")
    events.wait_for("disconnect")
    assert events.reasons() == ["io server disconnect"]
    assert client.call("echo", 1, namespace="/other") == 1
    with pytest.raises(NotConnected):
        client.emit("echo")
    assert client.connected  # every namespace still wanted is connected


@BOTH
def test_client_disconnect(
    shared_node_server: NodeServer, make_client: ClientFactory, transport: str
) -> None:
    client = make_client()
    events = Events(client, ["/", "/other"])
    client.connect(shared_node_server.url, namespaces=["/", "/other"], transports=[transport])
    pending = client.emit("flaky", "never", 10**9, timeout=TIMEOUT)
    start = time.monotonic()
    client.disconnect()
    assert time.monotonic() - start < 1.5
    client.wait()
    assert events.reasons("/") == events.reasons("/other") == ["io client disconnect"]
    assert not events.of("reconnect_attempt")
    assert pending is not None
    with pytest.raises(NotConnected):
        pending.get()
    with pytest.raises(NotConnected):
        client.emit("echo")
    client.disconnect()  # twice is fine


def test_disconnect_from_a_handler(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client()
    events = Events(client)
    client.on("bye", client.disconnect)
    client.connect(shared_node_server.url, transports=["websocket"])
    client.emit("emit_back", "bye")
    client.wait()
    assert events.reasons() == ["io client disconnect"]


def test_connect_again_after_disconnect(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client()
    client.connect(shared_node_server.url, transports=["websocket"])
    first = client.sid()
    with pytest.raises(LocalProtocolError):
        client.connect(shared_node_server.url)
    client.disconnect()
    client.connect(shared_node_server.url, transports=["polling"])
    assert client.sid() not in (None, first)
    assert client.call("echo", 5) == 5


# -- reconnecting --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "reason"),
    [("polling", "transport error"), ("websocket", "transport close")],
)
def test_a_dropped_connection_reconnects(
    shared_node_server: NodeServer, make_client: ClientFactory, transport: str, reason: str
) -> None:
    client = make_client()
    events = Events(client)
    client.connect(shared_node_server.url, transports=[transport])
    first = client.sid()
    client.emit("drop_all")
    events.wait_for("reconnect")
    events.wait_for("connect", 2)
    assert events.reasons() == [reason]
    assert events.of("reconnect_attempt")[0] == ("reconnect_attempt", 1)
    assert events.of("reconnect") == [("reconnect", 1)]
    assert client.sid() not in (None, first)
    assert client.call("echo", "again") == "again"


def test_ping_timeout_reconnects(
    node_server_factory: NodeServerFactory, make_client: ClientFactory
) -> None:
    server = node_server_factory(ping_interval=200, ping_timeout=200)
    client = make_client()
    events = Events(client)
    client.connect(server.url, transports=["websocket"])
    client.call("stop_pings")
    start = time.monotonic()
    events.wait_for("disconnect")
    assert time.monotonic() - start < 2
    assert events.reasons() == ["ping timeout"]
    events.wait_for("connect", 2)
    assert client.call("echo", 1) == 1


@BOTH
def test_pongs_go_out_while_a_handler_blocks(
    node_server_factory: NodeServerFactory, make_client: ClientFactory, transport: str
) -> None:
    # Five heartbeats pass while the handler blocks; each may take up to a second to be
    # answered (a loaded machine stalls a polling round trip), not 150 ms.
    server = node_server_factory(ping_interval=100, ping_timeout=1000)
    client = make_client()
    events = Events(client)
    release = gevent.event.Event()
    client.on("block", release.wait)
    client.connect(server.url, transports=[transport])
    sid = client.sid()
    client.call("emit_back", "block")
    wait_until(lambda: client.call("pongs", timeout=TIMEOUT) >= 5, TIMEOUT, "5 pongs")
    release.set()
    assert client.call("echo", "alive") == "alive"
    assert client.sid() == sid
    assert not events.of("disconnect")


def test_parse_error_reconnects(shared_node_server: NodeServer, make_client: ClientFactory) -> None:
    client = make_client()
    events = Events(client)
    client.connect(shared_node_server.url, transports=["websocket"])
    client.emit("garbage")
    events.wait_for("connect", 2)
    assert events.reasons() == ["parse error"]


@BOTH
def test_server_restart_delivers_buffered_emits(
    node_server: NodeServer, make_client: ClientFactory, transport: str
) -> None:
    client = make_client()
    events = Events(client)
    client.connect(node_server.url, transports=[transport])
    node_server.kill()
    events.wait_for("disconnect")
    assert not client.connected
    acks = [client.emit("echo", n, timeout=TIMEOUT) for n in range(3)]
    client.emit("record", "kept")
    client.emit("record", "dropped", volatile=True)
    dropped = client.emit("echo", "dropped", volatile=True, timeout=TIMEOUT)
    assert dropped is not None
    with pytest.raises(NotConnected, match="volatile"):
        dropped.get()
    events.wait_for("reconnect_error")  # the server is down: attempts fail
    node_server.start()
    events.wait_for("reconnect")
    assert [ack.get() for ack in acks if ack is not None] == [0, 1, 2]
    assert client.call("records") == ["kept"]
    assert client.connected


def test_the_emit_buffer_is_bounded(node_server: NodeServer, make_client: ClientFactory) -> None:
    client = make_client(max_buffered_emits=2)
    events = Events(client)
    client.connect(node_server.url, transports=["websocket"])
    node_server.kill()
    events.wait_for("disconnect")
    client.emit("record", 1)
    client.emit("record", 2)
    with pytest.raises(EmitBufferFull):
        client.emit("record", 3)
    client.emit("record", 4, volatile=True)  # dropped, not refused
    node_server.start()
    events.wait_for("connect", 2)
    assert client.call("records") == [1, 2]


def test_reconnection_gives_up_after_its_attempts(
    node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client(reconnection_attempts=2)
    events = Events(client)
    client.connect(node_server.url, transports=["websocket"])
    pending = client.emit("flaky", "never", 10**9, callback=lambda *args: None)
    node_server.kill()
    client.wait()
    names = [entry[0] for entry in events.log]
    assert names == [
        "connect",
        "disconnect",
        "reconnect_attempt",
        "reconnect_error",
        "connect_error",
        "reconnect_attempt",
        "reconnect_error",
        "connect_error",
        "reconnect_failed",
    ]
    assert [entry[1] for entry in events.of("reconnect_attempt")] == [1, 2]
    assert isinstance(events.of("reconnect_error")[0][1], ConnectFailed)
    assert pending is not None
    with pytest.raises(NotConnected):
        pending.get()


def test_no_reconnection_when_disabled(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client(reconnection=False)
    events = Events(client)
    client.connect(shared_node_server.url, transports=["websocket"])
    client.emit("drop_all")
    client.wait()
    assert events.reasons() == ["transport close"]
    assert not events.of("reconnect_attempt")


# -- acknowledgements ------------------------------------------------------------------


def test_call_times_out(shared_node_server: NodeServer, make_client: ClientFactory) -> None:
    client = make_client()
    client.connect(shared_node_server.url, transports=["websocket"])
    start = time.monotonic()
    with pytest.raises(AckTimeout):
        client.call("flaky", "never", 10**9, timeout=0.2)
    assert time.monotonic() - start < 1.5
    assert client.call("echo", "still fine") == "still fine"


def test_a_lost_connection_fails_the_pending_call(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client()
    client.connect(shared_node_server.url, transports=["websocket"])

    def call() -> BaseException | None:
        try:
            client.call("flaky", "never", 10**9, timeout=TIMEOUT)
        except NotConnected as exc:
            return exc
        return None

    pending = gevent.spawn(call)
    gevent.idle()
    client.emit("drop_all")
    error = pending.get(timeout=TIMEOUT)
    assert isinstance(error, NotConnected) and "connection lost" in str(error)


def test_retries_resend_until_acknowledged(
    shared_node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client()
    client.connect(shared_node_server.url, transports=["websocket"])
    answers: list[Any] = []
    ack = client.emit("flaky", "k1", 2, timeout=0.2, retries=3, callback=answers.append)
    assert ack is not None and ack.get(timeout=TIMEOUT) == 3  # acked on the third try
    wait_until(lambda: answers == [3], TIMEOUT)
    exhausted = client.emit("flaky", "k2", 5, timeout=0.1, retries=2)
    assert exhausted is not None
    with pytest.raises(AckTimeout, match="after 3 tries"):
        exhausted.get(timeout=TIMEOUT)


def test_retries_survive_a_reconnection(
    node_server: NodeServer, make_client: ClientFactory
) -> None:
    client = make_client()
    events = Events(client)
    client.connect(node_server.url, transports=["websocket"])
    node_server.kill()
    events.wait_for("disconnect")
    queued = [client.emit("flaky", f"r{n}", 0, timeout=2, retries=1) for n in range(3)]
    node_server.start()
    assert [ack.get(timeout=TIMEOUT) for ack in queued if ack is not None] == [1, 1, 1]


def test_misuse_fails_at_once(shared_node_server: NodeServer, make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(NotConnected, match="connect"):
        client.emit("echo")
    client.connect(shared_node_server.url, transports=["websocket"])
    with pytest.raises(LocalProtocolError, match="reserved"):
        client.emit("connect")
    with pytest.raises(LocalProtocolError, match="JSON"):
        client.emit("echo", {1: "int key"})
    with pytest.raises(LocalProtocolError, match="timeout"):
        client.emit("echo", retries=2)
    with pytest.raises(NotConnected, match="/nope"):
        client.emit("echo", namespace="/nope")
    with pytest.raises(LocalProtocolError, match="whole connection"):
        client.on("reconnect", lambda: None, namespace="/other")
    assert client.call("echo", "ok") == "ok"
