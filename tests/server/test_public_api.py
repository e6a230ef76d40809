"""``geventsio.__all__`` and what it promises; ``geventsio.testing``'s in-memory host."""

from __future__ import annotations

from typing import Any

import pytest

import geventsio
from geventsio.testing import InMemoryHost, Packet, PacketType


def test_every_name_in_all_resolves() -> None:
    for name in geventsio.__all__:
        assert getattr(geventsio, name) is not None, name
    assert sorted(geventsio.__all__) == sorted(set(geventsio.__all__))


def test_unserialisable_data_is_a_type_error_at_the_emit() -> None:
    sio = geventsio.Server()
    session = InMemoryHost(sio).open({"QUERY_STRING": "EIO=4"}, lambda packet: None)
    session.send(Packet(PacketType.CONNECT, "/"))
    session.settle(10)
    with pytest.raises(geventsio.NotSerialisable) as raised:
        sio.emit("x", object())
    assert isinstance(raised.value, TypeError)
    assert isinstance(raised.value, geventsio.LocalProtocolError)
    sio.shutdown()


def test_an_in_memory_session_runs_the_real_handlers() -> None:
    sio = geventsio.Server()
    packets: list[Packet] = []

    @sio.on("double")
    def double(socket: geventsio.Socket, x: int) -> int:
        socket.emit("seen", socket.handshake.query.get("who"))
        return 2 * x

    @sio.on("fail")
    def fail(socket: geventsio.Socket) -> None:
        raise ValueError("on purpose")

    session = InMemoryHost(sio).open({"QUERY_STRING": "EIO=4&who=ada"}, packets.append)
    session.send(Packet(PacketType.CONNECT, "/"))
    session.settle(10)  # a client sends events once its CONNECT is acknowledged
    session.send(Packet(PacketType.EVENT, "/", ["double", 21], 7))
    session.settle(10)
    kinds: list[tuple[Any, ...]] = [(p.type, p.data) for p in packets[1:]]
    assert packets[0].type is PacketType.CONNECT
    assert kinds == [(PacketType.EVENT, ["seen", "ada"]), (PacketType.ACK, [42])]
    assert session.take_error() is None
    session.send(Packet(PacketType.EVENT, "/", ["fail"]))
    session.settle(10)
    error = session.take_error()
    assert isinstance(error, ValueError)
    session.close()
    assert sio.connections == {}
    sio.shutdown()
