"""What differs between Socket.IO v5 and v4 (Engine.IO v3 sessions), without I/O."""

from __future__ import annotations

from geventsio.exceptions import ConnectionRefused
from geventsio.protocol.socketio import Decoder, DecoderLimits, Packet, PacketType
from geventsio.server.dialect import V4, V5


def decode(text: str) -> Packet | None:
    return V4.decoder(Decoder(DecoderLimits())).feed(text)


def test_a_v4_connect_carries_its_auth_as_the_namespaces_query() -> None:
    assert decode("0/admin?token=a%20b&n=1&n=2&empty=,") == Packet(
        PacketType.CONNECT, "/admin", {"token": "a b", "n": "2", "empty": ""}
    )
    assert decode("0/admin,") == Packet(PacketType.CONNECT, "/admin")
    assert decode('2/admin?x=1,["e",1]') == Packet(PacketType.EVENT, "/admin", ["e", 1])


def test_socket_ids() -> None:
    assert V4.socket_id("/", "SID") == "SID"
    assert V4.socket_id("/chat", "SID") == "/chat#SID"
    assert V5.socket_id("/", "SID") not in ("SID", V5.socket_id("/", "SID"))


def test_connect_and_refusal_payloads() -> None:
    assert V5.connect_payload("id", None) == {"sid": "id"}
    assert V5.connect_payload("id", "pid") == {"sid": "id", "pid": "pid"}
    assert V4.connect_payload("id", "pid") is None
    assert V5.refusal_payload(ConnectionRefused("no", {"x": 1})) == {
        "message": "no",
        "data": {"x": 1},
    }
    assert V4.refusal_payload(ConnectionRefused("no", {"x": 1})) == {"x": 1}
    assert V4.refusal_payload(ConnectionRefused("no")) == "no"
