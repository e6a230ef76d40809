"""Engine.IO v3 packets and long-polling payloads (socket.io-client 2.x), without I/O.

The packets are those of v4 (:mod:`geventsio.protocol.engineio`); what differs is how
binary travels and how packets are joined on long-polling, as engine.io-parser 2 (the
Node server's ``parser-v3``) writes them:

* **String payload**: each packet as ``<length>:<packet>``, one after the other, the
  length counted in UTF-16 code units (JavaScript's ``String.length``). A binary packet
  is written ``b<type><base64>`` (``b4AQID``). Used when the client cannot take binary
  (``b64=1`` in its query) or when no packet of the answer is binary.
* **Binary payload** (``Content-Type: application/octet-stream``): each packet as
  ``<0 string | 1 binary><length, one byte per decimal digit><0xFF><packet>``, a string
  packet in UTF-8 (its length in bytes), a binary one as its type byte (4) then its
  bytes. Used when the client takes binary and the answer holds some.
* **WebSocket**: a text packet is a text message, as in v4; a binary packet is a binary
  message holding its type byte (4) before its bytes, or ``b4<base64>`` as a text
  message for a client that cannot take binary.

The decoders are strict where engine.io-parser 2 is lenient: a length is ASCII digits
(at most :data:`MAX_LENGTH_DIGITS`), a binary packet is a MESSAGE, and any malformed
part refuses the whole payload (:class:`RemoteProtocolError`), as Node's "parser error".
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence

from geventsio.exceptions import RemoteProtocolError
from geventsio.protocol.engineio import Packet, PacketType, decode_text_packet, encode_text_packet

__all__ = [
    "BINARY_CONTENT_TYPE",
    "MAX_LENGTH_DIGITS",
    "decode_binary_payload",
    "decode_string_payload",
    "decode_ws",
    "encode_binary_payload",
    "encode_packet",
    "encode_string_payload",
    "encode_ws",
    "utf16_length",
]

#: The content type of a binary payload, both ways.
BINARY_CONTENT_TYPE = "application/octet-stream"
#: Digits a payload's length may have (lengths are bounded by ``max_payload`` anyway).
MAX_LENGTH_DIGITS = 10

_MESSAGE_BYTE = bytes([int(PacketType.MESSAGE)])
_BINARY_PREFIX = "b" + str(int(PacketType.MESSAGE))
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[" + chr(0xD800) + "-" + chr(0xDFFF) + "]")
_LENGTH_END = 0xFF


def utf16_length(text: str) -> int:
    """The length of ``text`` in UTF-16 code units (JavaScript's ``String.length``)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def encode_packet(packet: Packet) -> str:
    """The text form of a packet: its type digit and data, binary as ``b4<base64>``."""
    if isinstance(packet.data, bytes):
        return _BINARY_PREFIX + binascii.b2a_base64(packet.data, newline=False).decode("ascii")
    return encode_text_packet(packet)


def encode_string_payload(packets: Sequence[Packet]) -> str:
    """A string payload: ``<length>:<packet>`` for each packet (``0:`` for none)."""
    if not packets:
        return "0:"
    parts = []
    for packet in packets:
        text = encode_packet(packet)
        parts.append(f"{utf16_length(text)}:{text}")
    return "".join(parts)


def _length_header(kind: int, length: int) -> bytes:
    return bytes([kind, *(int(d) for d in str(length)), _LENGTH_END])


def encode_binary_payload(packets: Sequence[Packet]) -> bytes:
    """A binary payload: each packet behind its kind byte and its length's digits."""
    parts = []
    for packet in packets:
        data = packet.data
        if isinstance(data, bytes):
            parts.append(_length_header(1, len(data) + 1))
            parts.append(bytes([int(packet.type)]))
            parts.append(data)
        else:
            encoded = encode_text_packet(packet).encode("utf-8", "surrogatepass")
            parts.append(_length_header(0, len(encoded)))
            parts.append(encoded)
    return b"".join(parts)


def encode_ws(packet: Packet, supports_binary: bool = True) -> str | bytes:
    """The WebSocket message of a packet (binary: the type byte, then its bytes; or
    ``b4<base64>`` text when the client cannot take binary)."""
    data = packet.data
    if isinstance(data, bytes):
        if supports_binary:
            return bytes([int(packet.type)]) + data
        return encode_packet(packet)
    return encode_text_packet(packet)


def _decode_base64_packet(text: str) -> Packet:
    """``b<type><base64>``: only a MESSAGE carries binary."""
    if text[1:2] != str(int(PacketType.MESSAGE)):
        raise RemoteProtocolError(f"binary packet of type {text[1:2]!r}")
    try:
        return Packet(PacketType.MESSAGE, binascii.a2b_base64(text[2:], strict_mode=True))
    except (binascii.Error, ValueError) as exc:
        raise RemoteProtocolError(f"bad base64 in binary packet: {exc}") from None


def decode_packet(text: str) -> Packet:
    """Decode one packet of a string payload or a WebSocket text message.

    :raises RemoteProtocolError: empty, unknown type, or bad base64.
    """
    if text[:1] == "b":
        return _decode_base64_packet(text)
    return decode_text_packet(text)


def decode_ws(message: str | bytes) -> Packet:
    """Decode one WebSocket message (binary: a type byte, which must be MESSAGE).

    :raises RemoteProtocolError: the message is malformed.
    """
    if isinstance(message, str):
        return decode_packet(message)
    if message[:1] != _MESSAGE_BYTE:
        raise RemoteProtocolError(f"binary message of type {message[:1]!r}")
    return Packet(PacketType.MESSAGE, bytes(message[1:]))


def _split_pair(match: re.Match[str]) -> str:
    point = ord(match.group()) - 0x10000
    return chr(0xD800 + (point >> 10)) + chr(0xDC00 + (point & 0x3FF))


def _to_code_units(text: str) -> str:
    """``text`` with each character outside the BMP as its two surrogates, so that
    indexes count UTF-16 code units."""
    return _ASTRAL.sub(_split_pair, text)


def _from_code_units(text: str) -> str:
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _read_length(digits: str) -> int:
    if not (0 < len(digits) <= MAX_LENGTH_DIGITS and digits.isascii() and digits.isdigit()):
        raise RemoteProtocolError(f"bad length {digits[:20]!r} in payload")
    return int(digits)


def decode_string_payload(body: bytes) -> list[Packet]:
    """Decode a string payload (a POST body that is not ``application/octet-stream``).

    :raises RemoteProtocolError: the payload or one of its packets is malformed.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("payload is not valid UTF-8") from None
    if not text:
        raise RemoteProtocolError("empty payload")
    units = text if text.isascii() else _to_code_units(text)
    packets = []
    position = 0
    while position < len(units):
        colon = units.find(":", position)
        if colon < 0:
            raise RemoteProtocolError("payload ends inside a length")
        length = _read_length(units[position:colon])
        start = colon + 1
        position = start + length
        if position > len(units):
            raise RemoteProtocolError("payload shorter than its length says")
        if length:
            packets.append(decode_packet(_from_code_units(units[start:position])))
    return packets


def decode_binary_payload(body: bytes) -> list[Packet]:
    """Decode a binary payload (a POST body of ``application/octet-stream``).

    :raises RemoteProtocolError: the payload or one of its packets is malformed.
    """
    packets = []
    position = 0
    while position < len(body):
        kind = body[position]
        end = body.find(_LENGTH_END, position + 1, position + 2 + MAX_LENGTH_DIGITS)
        digits = body[position + 1 : end]
        if kind not in (0, 1) or end < 0 or not digits or any(d > 9 for d in digits):
            raise RemoteProtocolError("bad packet header in binary payload")
        length = int("".join(str(d) for d in digits))
        start = end + 1
        position = start + length
        if position > len(body) or length == 0:
            raise RemoteProtocolError("binary payload shorter than its length says")
        data = body[start:position]
        if kind == 1:
            packets.append(decode_ws(data))
            continue
        try:
            packets.append(decode_packet(data.decode("utf-8")))
        except UnicodeDecodeError:
            raise RemoteProtocolError("packet is not valid UTF-8") from None
    return packets
