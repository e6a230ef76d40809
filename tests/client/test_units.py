"""Pure parts of the client: handler dispatch, the handshake, ack values."""

from __future__ import annotations

from typing import Any

import pytest

from geventsio import LocalProtocolError, RemoteProtocolError
from geventsio.client.ack import unpack
from geventsio.client.dispatch import Dispatcher
from geventsio.client.engine import Handshake
from geventsio.protocol.engineio import Packet, PacketType


def run(dispatcher: Dispatcher) -> None:
    """Let the worker run everything queued, then end."""
    dispatcher.start()
    dispatcher.stop()
    dispatcher.join()


def test_lifecycle_handlers_get_what_they_accept() -> None:
    dispatcher = Dispatcher()
    calls: list[tuple[Any, ...]] = []
    dispatcher.register("disconnect", lambda: calls.append(("no reason",)), "/")
    dispatcher.register("disconnect", lambda reason: calls.append((reason,)), "/other")
    dispatcher.register("reconnect_attempt", lambda *args: calls.append(args), "/")
    for namespace in ("/", "/other"):
        dispatcher.fire(namespace, "disconnect", ("ping timeout",))
    dispatcher.fire(None, "reconnect_attempt", (3,))
    run(dispatcher)
    assert calls == [("no reason",), ("ping timeout",), (3,)]


def test_events_run_in_order_with_acks_and_catch_all() -> None:
    dispatcher = Dispatcher()
    acks: list[Any] = []
    seen: list[Any] = []
    dispatcher.register("add", lambda a, b: a + b, "/")
    dispatcher.register("*", lambda event, *args: seen.append((event, args)), "/")
    assert dispatcher.fire("/", "add", (1, 2), acks.append)
    assert dispatcher.fire("/", "other", ("x",))
    assert not dispatcher.fire("/", "disconnect", ("reason",))  # no catch-all for these
    assert not dispatcher.fire("/nowhere", "add", (1, 2))
    run(dispatcher)
    assert acks == [3]
    assert seen == [("other", ("x",))]


def test_a_failing_handler_is_logged_and_the_next_one_runs(caplog: Any) -> None:
    dispatcher = Dispatcher()
    acks: list[Any] = []

    def broken() -> None:
        raise RuntimeError("boom")

    dispatcher.register("broken", broken, "/")
    dispatcher.register("fine", lambda: "ok", "/")
    dispatcher.fire("/", "broken", (), acks.append)
    dispatcher.fire("/", "fine", (), acks.append)
    run(dispatcher)
    assert acks == ["ok"]  # no ack for the handler that raised
    assert "boom" in caplog.text and "error in handler" in caplog.text


@pytest.mark.parametrize(
    ("event", "handler", "namespace", "message"),
    [
        ("x", "not callable", "/", "callable"),
        ("x", print, "chat", "start with '/'"),
        ("reconnect", print, "/chat", "whole connection"),
    ],
)
def test_registration_misuse(event: str, handler: Any, namespace: str, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        Dispatcher().register(event, handler, namespace)


def test_handshake_parse() -> None:
    data = (
        '{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,'
        '"maxPayload":10}'
    )
    assert Handshake.parse(Packet(PacketType.OPEN, data)) == Handshake(
        "abc", ("websocket",), 0.3, 0.2, 10
    )


@pytest.mark.parametrize(
    "packet",
    [
        Packet(PacketType.MESSAGE, '{"sid":"abc"}'),
        Packet(PacketType.OPEN, "not json"),
        Packet(PacketType.OPEN, '{"sid":"abc"}'),  # no ping interval
        Packet(PacketType.OPEN, '["sid"]'),
    ],
)
def test_handshake_parse_refuses(packet: Packet) -> None:
    with pytest.raises(RemoteProtocolError):
        Handshake.parse(packet)


@pytest.mark.parametrize(
    ("args", "value"), [([], None), ([1], 1), ([[1, 2]], [1, 2]), ([1, "b"], (1, "b"))]
)
def test_ack_values(args: list[Any], value: Any) -> None:
    assert unpack(args) == value
