"""Socket.IO and Engine.IO packets are values: equal by their fields, hashable when their
fields are, read-only, in the compiled build and the pure one alike."""

from __future__ import annotations

import pytest

from geventsio.protocol import engineio, socketio

EVENT = socketio.PacketType.EVENT


def test_a_socketio_packet_is_a_value():
    packet = socketio.Packet(EVENT, "/chat", ("a", 1), 7)
    assert packet == socketio.Packet(EVENT, "/chat", ("a", 1), 7)
    assert packet != socketio.Packet(EVENT, "/chat", ("a", 1), 8)
    assert packet != (EVENT, "/chat", ("a", 1), 7)  # not a tuple
    assert hash(packet) == hash(socketio.Packet(EVENT, "/chat", ("a", 1), 7))
    assert (packet.type, packet.namespace, packet.data, packet.id) == (EVENT, "/chat", ("a", 1), 7)
    assert repr(packet) == (
        "Packet(type=<PacketType.EVENT: 2>, namespace='/chat', data=('a', 1), id=7)"
    )
    assert socketio.Packet(EVENT) == socketio.Packet(EVENT, "/", None, None)


def test_a_socketio_packet_is_read_only():
    packet = socketio.Packet(EVENT, "/", ["a"])
    for name in ("type", "namespace", "data", "id"):
        with pytest.raises(AttributeError):
            setattr(packet, name, None)
    with pytest.raises(AttributeError):
        packet.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        hash(packet)  # a list in its data: unhashable, as a tuple holding one


def test_an_engineio_packet_is_a_read_only_value():
    packet = engineio.Packet(engineio.PacketType.MESSAGE, b"\x01")
    assert packet == engineio.Packet(engineio.PacketType.MESSAGE, b"\x01")
    assert packet != engineio.Packet(engineio.PacketType.MESSAGE, "\x01")
    assert packet.is_binary and not engineio.Packet(engineio.PacketType.MESSAGE, "x").is_binary
    assert hash(packet) == hash(engineio.Packet(engineio.PacketType.MESSAGE, b"\x01"))
    assert repr(engineio.PING) == "Packet(type=<PacketType.PING: 2>, data='')"
    with pytest.raises(AttributeError):
        packet.data = "y"  # type: ignore[misc]
