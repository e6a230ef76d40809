"""Engine.IO v4 packets and long-polling payloads, without I/O.

A packet is a type digit followed by its data. Over WebSocket a text packet travels as a
text message and a binary packet as a binary message holding the raw bytes (no type
digit: it is always a MESSAGE). Over long-polling, packets are joined by the record
separator 0x1E and a binary packet is written as ``b`` followed by its base64 form.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from enum import IntEnum

from geventsio.exceptions import RemoteProtocolError

RECORD_SEPARATOR = "\x1e"
_RECORD_SEPARATOR_BYTES = b"\x1e"


class PacketType(IntEnum):
    """Engine.IO v4 packet types."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


_TYPE_BY_DIGIT = {str(int(t)): t for t in PacketType}


@dataclass(frozen=True, slots=True, init=False)
class Packet:
    """One Engine.IO packet.

    :param type: the packet type.
    :param data: text (``str``) or binary (``bytes``, MESSAGE only) data; ``""`` when absent.
    """

    type: PacketType
    data: str | bytes = ""

    def __init__(self, type: PacketType, data: str | bytes = "") -> None:
        # Made per message: each field set once through its slot, as the generated
        # __init__ of a frozen dataclass does, without its object.__setattr__ calls.
        _SET_TYPE(self, type)
        _SET_DATA(self, data)

    @property
    def is_binary(self) -> bool:
        """Whether the packet carries binary data."""
        return isinstance(self.data, bytes)


_SET_TYPE = vars(Packet)["type"].__set__
_SET_DATA = vars(Packet)["data"].__set__

PING = Packet(PacketType.PING)
PONG = Packet(PacketType.PONG)
NOOP = Packet(PacketType.NOOP)
CLOSE = Packet(PacketType.CLOSE)
UPGRADE = Packet(PacketType.UPGRADE)


def encode_text_packet(packet: Packet) -> str:
    """The text form of a non-binary packet: its type digit followed by its data."""
    assert isinstance(packet.data, str)
    return f"{int(packet.type)}{packet.data}"


def encode_ws(packet: Packet) -> str | bytes:
    """The WebSocket message for a packet: text, or the raw bytes of a binary MESSAGE."""
    if isinstance(packet.data, bytes):
        return packet.data
    return encode_text_packet(packet)


def encode_polling_segment(packet: Packet) -> str:
    """The long-polling form of one packet (binary as ``b`` + base64)."""
    if isinstance(packet.data, bytes):
        return "b" + binascii.b2a_base64(packet.data, newline=False).decode("ascii")
    return encode_text_packet(packet)


def encode_payload(packets: list[Packet]) -> str:
    """A long-polling payload: every packet's polling form, joined by 0x1E."""
    return RECORD_SEPARATOR.join(encode_polling_segment(p) for p in packets)


def decode_text_packet(text: str) -> Packet:
    """Decode one text packet.

    :raises RemoteProtocolError: empty text or unknown type.
    """
    if not text:
        raise RemoteProtocolError("empty packet")
    packet_type = _TYPE_BY_DIGIT.get(text[0])
    if packet_type is None:
        raise RemoteProtocolError(f"unknown packet type {text[0]!r}")
    return Packet(packet_type, text[1:])


def decode_ws(message: str | bytes) -> Packet:
    """Decode one WebSocket message: text is a packet, bytes are a binary MESSAGE."""
    if isinstance(message, str):
        return decode_text_packet(message)
    return Packet(PacketType.MESSAGE, bytes(message))


def _decode_polling_segment(segment: bytes) -> Packet:
    if segment[:1] == b"b":
        try:
            return Packet(PacketType.MESSAGE, binascii.a2b_base64(segment[1:], strict_mode=True))
        except (binascii.Error, ValueError) as exc:
            raise RemoteProtocolError(f"bad base64 in binary packet: {exc}") from None
    try:
        text = segment.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("packet is not valid UTF-8") from None
    return decode_text_packet(text)


def decode_payload(body: bytes) -> list[Packet]:
    """Decode a long-polling request body into its packets.

    :raises RemoteProtocolError: any packet is malformed (the whole body is refused).
    """
    return [_decode_polling_segment(s) for s in body.split(_RECORD_SEPARATOR_BYTES)]
