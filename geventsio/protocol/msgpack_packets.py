"""Socket.IO v5 packets in msgpack, as the npm package ``socket.io-msgpack-parser`` writes
them, without I/O.

One packet is one binary Engine.IO MESSAGE holding one msgpack map::

    {"type": <0..4>, "data": <payload>, "nsp": "<namespace>", "id": <ack id>}

``data`` and ``id`` are left out when absent (the npm package checks ``data === undefined``
on DISCONNECT). Binary travels inside the map as msgpack ``bin``: there are no attachments
and no BINARY_EVENT or BINARY_ACK packet types. Keys other than these four (the JavaScript
client adds ``options``) are ignored, as the npm decoder ignores them. JavaScript's
``undefined``, which notepack.io writes as the extension ``(0, b"\x00")`` (a CONNECT without
auth has ``data: undefined``), is read as ``None``: absent at the top, ``null`` inside.

The interface is that of :mod:`geventsio.protocol.socketio` (:func:`encode`,
:func:`encode_ack`, :class:`Decoder`), and so are the rules: the same packet-type table and
:class:`~geventsio.protocol.socketio.DecoderLimits`. The decoder is strict: a text message,
bytes that are not exactly one msgpack map, an extension type, a non-string map key in the
payload, or a payload nesting deeper than ``max_depth`` are :class:`RemoteProtocolError`.
"""

from __future__ import annotations

from typing import Any

import msgpack

from geventsio.exceptions import LocalProtocolError, RemoteProtocolError
from geventsio.protocol import binary
from geventsio.protocol.socketio import (
    _RULES,
    DecoderLimits,
    Packet,
    PacketType,
    _check_outgoing,
    _parse_namespace,
    _violation,
)

__all__ = ["Decoder", "encode", "encode_ack"]

_DEFAULT_LIMITS = DecoderLimits()
# Only the plain types travel in msgpack, as the npm package checks (0..4).
_LAST_WIRE_TYPE = PacketType.CONNECT_ERROR


def encode(packet: Packet) -> list[str | bytes]:
    """Encode a packet as the data of the one binary Engine.IO MESSAGE that carries it.

    :param packet: the packet to send; a BINARY_EVENT or BINARY_ACK is sent as EVENT or ACK.
    :returns: a list of one ``bytes``, the msgpack map.
    :raises LocalProtocolError: the packet breaks the protocol (see
        :func:`geventsio.protocol.socketio.encode`), or its data holds something msgpack
        cannot write (an object of another type, an integer beyond 64 bits).
    """
    rule = _check_outgoing(packet)
    return [_pack(rule.plain, packet.namespace, packet.data, packet.id)]


def encode_ack(namespace: str, ack_id: int, args: list[Any]) -> list[str | bytes]:
    """Encode an ACK whose namespace and ack id came from a packet the decoder accepted.

    :raises LocalProtocolError: the arguments cannot be written in msgpack.
    """
    return [_pack(PacketType.ACK, namespace, args, ack_id)]


def _pack(packet_type: PacketType, namespace: str, data: Any, ack_id: int | None) -> bytes:
    packet: dict[str, Any] = {"type": int(packet_type)}
    if data is not None:
        packet["data"] = data
    packet["nsp"] = namespace
    if ack_id is not None:
        packet["id"] = ack_id
    try:
        return msgpack.packb(packet, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise LocalProtocolError(f"data msgpack cannot represent: {exc}") from exc


_UNDEFINED = (0, b"\x00")  # how notepack.io (the npm parser's msgpack) writes ``undefined``


def _refuse_ext(code: int, data: bytes) -> Any:
    """``undefined`` becomes ``None`` (JSON would make it ``null`` or drop it); any other
    extension type is refused."""
    if (code, data) == _UNDEFINED:
        return None
    raise RemoteProtocolError(f"msgpack extension type {code} in a packet")


class Decoder:
    """Turns the data of incoming binary Engine.IO MESSAGEs into Socket.IO packets.

    Every packet is complete in one message, so the decoder keeps no state between
    messages; one per connection all the same, as with the JSON decoder.

    :param limits: bounds on what the peer may send (``max_attachments`` does not apply).
    """

    def __init__(self, limits: DecoderLimits = _DEFAULT_LIMITS) -> None:
        self._limits = limits

    def feed(self, message: str | bytes) -> Packet | None:
        """Decode the data of one Engine.IO MESSAGE.

        :param message: one binary message (``bytes``, ``bytearray`` or ``memoryview``).
        :returns: the packet (never ``None``: the return type matches the JSON decoder's).
        :raises RemoteProtocolError: the message is text, is not exactly one msgpack map,
            or breaks the protocol; the message of the exception says how.
        :raises TypeError: ``message`` is neither text nor binary.
        """
        if isinstance(message, str):
            raise RemoteProtocolError("text message where the msgpack parser expects binary")
        if not isinstance(message, binary.BINARY_TYPES):
            raise TypeError(f"expected str or bytes, got {type(message).__name__}")
        limits = self._limits
        try:
            decoded = msgpack.unpackb(
                message,
                raw=False,
                strict_map_key=False,  # checked below, for a clearer error
                ext_hook=_refuse_ext,
            )
        except RemoteProtocolError:
            raise
        except Exception as exc:  # msgpack raises several unrelated types
            raise RemoteProtocolError(f"invalid msgpack: {exc}") from exc
        if not isinstance(decoded, dict):
            raise RemoteProtocolError("msgpack packet is not a map")
        packet_type = decoded.get("type")
        if type(packet_type) is not int or not 0 <= packet_type <= _LAST_WIRE_TYPE:
            raise RemoteProtocolError(f"invalid packet type {packet_type!r}")
        namespace = decoded.get("nsp")
        if not isinstance(namespace, str) or not namespace.startswith("/") or "," in namespace:
            raise RemoteProtocolError(f"invalid namespace {namespace!r}")
        namespace = _parse_namespace(namespace, limits)
        ack_id = decoded.get("id")
        if ack_id is not None and (type(ack_id) is not int or not 0 <= ack_id <= limits.max_ack_id):
            raise RemoteProtocolError(f"invalid ack id {ack_id!r}")
        data = decoded.get("data")
        _check_payload(data, limits.max_depth)
        rule = _RULES[packet_type]
        problem = _violation(rule, ack_id, data)
        if problem is not None:
            raise RemoteProtocolError(problem)
        return Packet(rule.plain, namespace, data, ack_id)


def _check_payload(data: Any, limit: int) -> None:
    """Refuse a payload nesting deeper than ``limit`` or with map keys that are not strings
    (JSON could not hold them, and neither can the application's handlers expect them)."""
    if not isinstance(data, (list, dict)):
        return
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise RemoteProtocolError(f"payload nests deeper than {limit} levels")
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise RemoteProtocolError(f"map key {key!r} in the payload is not a string")
            children = value.values()
        else:
            children = value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
