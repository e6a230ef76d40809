"""Engine.IO v4 packets and long-polling payloads, without I/O.

A packet is a type digit followed by its data. Over WebSocket a text packet travels as a
text message and a binary packet as a binary message holding the raw bytes (no type
digit: it is always a MESSAGE). Over long-polling, packets are joined by the record
separator 0x1E and a binary packet is written as ``b`` followed by its base64 form.
"""

from __future__ import annotations

import binascii
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


class Packet:
    """One Engine.IO packet (immutable: its fields are read-only properties; a plain
    class, native when compiled, because one is made per message).

    :param type: the packet type.
    :param data: text (``str``) or binary (``bytes``, MESSAGE only) data; ``""`` when absent.
    """

    __slots__ = ("_data", "_type")

    def __init__(self, type: PacketType, data: str | bytes = "") -> None:
        self._type = type
        self._data = data

    @property
    def type(self) -> PacketType:
        """The packet type."""
        return self._type

    @property
    def data(self) -> str | bytes:
        """The packet's text or binary data."""
        return self._data

    @property
    def is_binary(self) -> bool:
        """Whether the packet carries binary data."""
        return isinstance(self._data, bytes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet) or type(other) is not type(self):
            return NotImplemented
        return self._type == other._type and self._data == other._data

    def __hash__(self) -> int:
        return hash((self._type, self._data))

    def __repr__(self) -> str:
        return f"Packet(type={self._type!r}, data={self._data!r})"


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
