"""``Socket.handle_event``'s shortcut (no middleware, catch-all listener nor observer)
answers every event as the general path does."""

from __future__ import annotations

from typing import Any

import gevent
import pytest

import geventsio
from geventsio.testing import InMemoryHost, Packet, PacketType

EVENTS: list[tuple[str, list[Any]]] = [
    ("echo", ["x"]),
    ("echo", [{"a": [1, 2]}]),
    ("echo", [b"\x00\x01"]),
    ("many", [1, "two", None]),
    ("none", []),
    ("no_ack", [1]),
    ("raise", [1]),
    ("timeout", []),
    ("wrong_arity", [1, 2, 3]),
    ("own", ["mine", 2]),
    ("shadowed", [5]),
    ("unknown", [1]),
    ("caught", ["z"]),
]


def answers(general: bool, catch_all: bool) -> list[tuple[Any, ...]]:
    sio = geventsio.Server()
    errors: list[str] = []
    sio.on_error(lambda socket, exc: errors.append(type(exc).__name__))

    @sio.on("connect")
    def connect(socket: geventsio.Socket) -> None:
        socket.on("own", lambda *args: ("own", *args))
        socket.on("shadowed", lambda x: ("own", x))
        if general:  # a middleware that lets everything through takes the general path
            socket.use(lambda socket, event, args: None)

    sio.on("echo", lambda socket, data: data)
    sio.on("many", lambda socket, *args: tuple(args))
    sio.on("none", lambda socket: None)
    sio.on("no_ack", lambda socket, x: geventsio.NO_ACK)
    sio.on("shadowed", lambda socket, x: ("namespace", x))
    sio.on("wrong_arity", lambda socket, x: x)

    @sio.on("raise")
    def raise_(socket: geventsio.Socket, x: int) -> None:
        raise ValueError(x)

    @sio.on("timeout")
    def timeout(socket: geventsio.Socket) -> None:
        raise gevent.Timeout()

    if catch_all:
        sio.on("*", lambda socket, event, *args: ("caught", event, *args))

    packets: list[Packet] = []
    session = InMemoryHost(sio).open({"QUERY_STRING": "EIO=4"}, packets.append)
    session.send(Packet(PacketType.CONNECT, "/"))
    session.settle(10)
    for ack_id, (event, args) in enumerate(EVENTS):
        for id_ in (ack_id, None):
            session.send(Packet(PacketType.EVENT, "/", [event, *args], id_))
            session.settle(10)
    session.close()
    sio.shutdown()
    return [(p.type, p.namespace, p.data, p.id) for p in packets[1:]] + [tuple(errors)]


@pytest.mark.parametrize("catch_all", [False, True])
def test_the_event_shortcut_answers_as_the_general_path(catch_all: bool) -> None:
    shortcut = answers(general=False, catch_all=catch_all)
    assert shortcut == answers(general=True, catch_all=catch_all)
    acks = [entry for entry in shortcut[:-1] if entry[0] is PacketType.ACK]
    assert len(acks) == 7 + catch_all * 2  # the echoes, many, none, own, shadowed, caught
    assert shortcut[-1] == ("ValueError",) * 2 + ("Timeout",) * 2 + ("TypeError",) * 2
