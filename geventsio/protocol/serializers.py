"""The packet serializers a server or client may speak: ``"json"`` (Socket.IO's default
parser) or ``"msgpack"`` (the npm package ``socket.io-msgpack-parser``), without I/O.

A :class:`Serializer` bundles the three things the rest of the code needs from a packet
format: encode a packet, encode an ACK answered to the peer, and make one decoder per
connection. The choice is made once per server or client (python-socketio's
``serializer`` option); the msgpack module is imported only when it is chosen, so the
``msgpack`` package stays optional.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from geventsio.protocol import socketio
from geventsio.protocol.socketio import DecoderLimits, Packet

__all__ = ["JSON", "SERIALIZER_NAMES", "PacketDecoder", "Serializer", "serializer_named"]


class PacketDecoder(Protocol):
    """What a decoder of either format offers (see :class:`socketio.Decoder`)."""

    def feed(self, message: str | bytes) -> Packet | None:
        """Decode one Engine.IO MESSAGE's data; ``None`` while a packet is incomplete."""


@dataclass(frozen=True, slots=True)
class Serializer:
    """A packet format.

    :param name: ``"json"`` or ``"msgpack"``.
    :param encode: a packet to the data of the Engine.IO MESSAGEs that carry it.
    :param encode_ack: ``(namespace, ack_id, args)`` of an ACK to the same.
    :param decoder: ``decoder(limits)`` makes one decoder for one connection.
    """

    name: str
    encode: Callable[[Packet], list[str | bytes]]
    encode_ack: Callable[[str, int, list[Any]], list[str | bytes]]
    decoder: Callable[[DecoderLimits], PacketDecoder]


JSON = Serializer("json", socketio.encode, socketio.encode_ack, socketio.Decoder)
SERIALIZER_NAMES = ("json", "msgpack")
_loaded: dict[str, Serializer] = {"json": JSON}


def serializer_named(name: object) -> Serializer:
    """The serializer called ``name``.

    :raises ValueError: ``name`` is neither ``"json"`` nor ``"msgpack"``.
    :raises ImportError: ``"msgpack"`` without the ``msgpack`` package (install the
        ``msgpack`` extra: ``pip install geventsio[msgpack]``).
    """
    # ``name`` is an object, so that a compiled build says ValueError for any type too.
    if not isinstance(name, str) or name not in SERIALIZER_NAMES:
        raise ValueError(f"serializer must be one of {SERIALIZER_NAMES}, not {name!r}")
    serializer = _loaded.get(name)
    if serializer is not None:
        return serializer
    try:
        module = importlib.import_module("geventsio.protocol.msgpack_packets")
    except ImportError as exc:
        raise ImportError(
            'serializer="msgpack" needs the msgpack package: pip install "geventsio[msgpack]"'
        ) from exc
    serializer = _loaded[name] = Serializer(name, module.encode, module.encode_ack, module.Decoder)
    return serializer
