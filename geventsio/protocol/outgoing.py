"""An outgoing Engine.IO packet that encodes itself once per wire form.

A broadcast builds one :class:`OutgoingPacket` and hands the same object to every
recipient; each transport asks for the form it writes (a WebSocket frame, a WebSocket
message for gevent-websocket, or a long-polling segment) and the first request caches it.

This is where a Socket.IO packet becomes Engine.IO packets on the way out: the server,
the adapters and the engine all deal in these objects, and none of them encodes again.
"""

from __future__ import annotations

from typing import Any

from geventsio import _json
from geventsio.protocol import socketio
from geventsio.protocol import websocket as ws_frames
from geventsio.protocol.binary import BINARY_TYPES
from geventsio.protocol.deflate import Deflater
from geventsio.protocol.engineio import Packet, PacketType, encode_polling_segment, encode_ws
from geventsio.protocol.serializers import JSON, Serializer


class OutgoingPacket:
    """One packet and its lazily cached encodings.

    :param packet: the Engine.IO packet to send.
    :param compress: whether a transport that compresses may compress it (Node's
        ``options.compress``): a long-polling answer is compressed when one of its
        packets allows it (see :func:`geventsio.engine.http.compress_response`).
    """

    __slots__ = (
        "_deflated",
        "_frame",
        "_message",
        "_packet",
        "_segment",
        "_utf8",
        "compress",
        "size",
    )

    def __init__(
        self,
        packet: Packet | None,
        compress: bool = True,
        *,
        utf8: bytes | None = None,
        message: bytes | None = None,
    ) -> None:
        self._packet: Packet | None = packet
        self.compress = compress
        #: An estimate of the bytes it occupies in a buffer, for slow-consumer limits.
        if packet is not None:
            self.size = len(packet.data) + 1
        elif utf8 is not None:
            self.size = len(utf8)
        else:
            assert message is not None
            self.size = len(message) + 1
        self._utf8: bytes | None = utf8
        self._frame: bytes | None = None
        self._message: str | bytes | None = message
        self._segment: str | None = None
        self._deflated: tuple[object, bytes] | None = None

    @staticmethod
    def message(data: str | bytes, compress: bool = True) -> OutgoingPacket:
        """A MESSAGE packet carrying ``data`` (static methods, not class methods: compiled,
        a call of the class itself is a direct one, with no keyword arguments parsed)."""
        return OutgoingPacket(Packet(PacketType.MESSAGE, data), compress)

    @staticmethod
    def text_message(utf8: bytes) -> OutgoingPacket:
        """A text MESSAGE given whole as UTF-8 bytes, ``b"4"`` and its data: the payload
        of its WebSocket frame as it is. Its :attr:`packet` is decoded only if asked for
        (a long-polling answer, listeners), so a WebSocket's answer is never a ``str``."""
        return OutgoingPacket(None, True, utf8=utf8)

    @staticmethod
    def binary_message(data: bytes) -> OutgoingPacket:
        """A binary MESSAGE carrying ``data``: its WebSocket message as it is, its
        :attr:`packet` made only if asked for (a long-polling answer, listeners)."""
        return OutgoingPacket(None, True, message=data)

    @property
    def text_utf8(self) -> bytes | None:
        """The whole text MESSAGE as UTF-8 (``b"4"`` and its data) when the packet was
        made from it (:meth:`text_message`), else None: what counts its bytes can do so
        without decoding it."""
        return self._utf8

    @property
    def packet(self) -> Packet:
        """The Engine.IO packet."""
        packet = self._packet
        if packet is None:
            if self._utf8 is not None:
                packet = Packet(PacketType.MESSAGE, self._utf8[1:].decode())
            else:
                assert isinstance(self._message, bytes)
                packet = Packet(PacketType.MESSAGE, self._message)
            self._packet = packet
        return packet

    def ws_message(self) -> str | bytes:
        """The WebSocket message (text or binary) of this packet."""
        if self._message is None:
            self._message = encode_ws(self.packet)
        return self._message

    def ws_frame(self) -> bytes:
        """The complete, unmasked RFC 6455 frame of this packet."""
        if self._frame is None:
            utf8 = self._utf8
            if utf8 is not None:
                if len(utf8) < 126:  # a short answer: encode_text's header, without its call
                    self._frame = ws_frames.SHORT_TEXT_HEADERS[len(utf8)] + utf8
                else:
                    self._frame = ws_frames.encode_text(utf8)
            else:
                message = self.ws_message()
                if isinstance(message, str):
                    self._frame = ws_frames.encode_text(message.encode("utf-8"))
                else:
                    self._frame = ws_frames.encode_binary(message)
        return self._frame

    def ws_payload(self) -> memoryview:
        """The payload of :meth:`ws_frame` (a view of it, not a copy)."""
        frame = self.ws_frame()
        length = frame[1] & 0x7F
        return memoryview(frame)[2 if length < 126 else 4 if length == 126 else 10 :]

    def ws_deflated_frame(self, deflater: Deflater) -> bytes:
        """The frame of this packet compressed by ``deflater`` (permessage-deflate).

        A deflater that keeps no context compresses the same way for every connection
        with its settings: the first such frame is cached, and a broadcast is compressed
        once. One that keeps its context compresses for its own connection, in order:
        call this only when the frame is sent.
        """
        key = deflater.shared_key
        cached = self._deflated
        if key is not None and cached is not None and cached[0] == key:
            return cached[1]
        frame = ws_frames.encode_compressed(
            deflater.deflate(self.ws_payload()), text=isinstance(self.ws_message(), str)
        )
        if key is not None:
            self._deflated = (key, frame)
        return frame

    def polling_segment(self) -> str:
        """The long-polling form of this packet."""
        if self._segment is None:
            self._segment = encode_polling_segment(self.packet)
        return self._segment


def encode_for_engine(
    packet: socketio.Packet, compress: bool = True, serializer: Serializer = JSON
) -> list[OutgoingPacket]:
    """Encode a Socket.IO packet once into the Engine.IO packets every recipient gets
    (``compress``: see :class:`OutgoingPacket`), in the server's ``serializer``."""
    return [OutgoingPacket.message(part, compress) for part in serializer.encode(packet)]


def encode_ack_for_engine(
    namespace: str, ack_id: int, args: list[Any], serializer: Serializer = JSON
) -> list[OutgoingPacket]:
    """:func:`encode_for_engine` for an ACK the server answers a client's event with."""
    if serializer is JSON:
        # The JSON ACK as UTF-8 bytes, built in one step from orjson's bytes (the same
        # bytes socketio.encode_ack gives, with "4" before them), unless an argument is
        # binary or what JSON cannot write: socketio.encode_ack deals with those (as
        # attachments, or with its error). Written out here: it runs once per answer.
        for arg in args:
            if isinstance(arg, BINARY_TYPES):
                break
        else:
            try:
                payload = _json.dumps_utf8(args)
            except TypeError:
                pass  # what JSON cannot write: the general encoder words the error
            else:
                if namespace == "/":
                    utf8 = b"43%d%s" % (ack_id, payload)
                else:
                    utf8 = b"43%s,%d%s" % (namespace.encode(), ack_id, payload)
                return [OutgoingPacket.text_message(utf8)]
        if len(args) == 1 and type(args[0]) is bytes:  # the commonest binary answer
            return _lone_binary_ack(namespace, ack_id, args[0])
        binary_ack = _json_binary_ack(namespace, ack_id, args)
        if binary_ack is not None:
            return binary_ack
    return [OutgoingPacket.message(part) for part in serializer.encode_ack(namespace, ack_id, args)]


#: The JSON of the arguments of a BINARY_ACK that answers one buffer.
_LONE_PLACEHOLDER = b'[{"_placeholder":true,"num":0}]'


def _lone_binary_ack(namespace: str, ack_id: int, data: bytes) -> list[OutgoingPacket]:
    """The BINARY_ACK answering one buffer, ``data``, as :func:`_json_binary_ack` would
    build it, without its walk and JSON writer."""
    if namespace == "/":
        text = b"461-%d%s" % (ack_id, _LONE_PLACEHOLDER)
    else:
        text = b"461-%s,%d%s" % (namespace.encode(), ack_id, _LONE_PLACEHOLDER)
    return [OutgoingPacket.text_message(text), OutgoingPacket.binary_message(data)]


#: What an argument of a binary ACK may be, besides binary, for :func:`_json_binary_ack`.
_SCALARS = (str, int, float, type(None))


def _json_binary_ack(namespace: str, ack_id: int, args: list[Any]) -> list[OutgoingPacket] | None:
    """A BINARY_ACK whose arguments are each binary or a scalar (the common binary
    answer: the bytes themselves), built as :func:`socketio.encode_ack` builds it, from
    orjson's bytes; None for any other arguments (nested binary, containers), which
    :func:`socketio.encode_ack` deals with."""
    shown: list[Any] = []
    attachments: list[OutgoingPacket] = []
    for arg in args:
        if isinstance(arg, BINARY_TYPES):
            shown.append({"_placeholder": True, "num": len(attachments)})
            attachments.append(OutgoingPacket.binary_message(bytes(arg)))
        elif isinstance(arg, _SCALARS):
            shown.append(arg)
        else:
            return None
    try:
        payload = _json.dumps_utf8(shown)
    except TypeError:  # a lone surrogate: the general path words the error
        return None
    count = len(attachments)
    if namespace == "/":
        text = b"46%d-%d%s" % (count, ack_id, payload)
    else:
        text = b"46%d-%s,%d%s" % (count, namespace.encode(), ack_id, payload)
    return [OutgoingPacket.text_message(text), *attachments]
