"""Sans-IO RFC 6455 WebSocket framing (the opening handshake is in
:mod:`geventsio.protocol.websocket_handshake`).

Used by the server (frames from clients are masked) and by the Python client (frames
from servers are unmasked, frames it sends are masked). No sockets, no clock, no gevent:
bytes in, events out.

Theory of operation
-------------------
:class:`FrameParser` walks each chunk given to :meth:`FrameParser.feed` once, with an
offset. Its invariants:

* Work and memory are linear in the input. The parser keeps at most 13 bytes of an
  incomplete header (prepended to the next chunk); a payload that spans chunks is
  collected as a list of slices and joined once, when its last byte arrives.
* A frame is judged from its header alone: a frame that would make its message exceed
  ``max_message_size``, or exceed ``max_fragments`` fragments, is refused before any of
  its payload is buffered. Memory held is therefore bounded by ``max_message_size``.
* Text is validated with an incremental UTF-8 decoder as fragments arrive, so a bad
  byte fails the message at the fragment that carries it.
* With permessage-deflate agreed (an :class:`~geventsio.protocol.deflate.Inflater`
  given), a message whose first frame has RSV1 set is inflated fragment by fragment,
  and ``max_message_size`` bounds its inflated size too: inflating stops, and the
  message fails with 1009, at the first byte past it. Without an inflater, RSV1 is a
  protocol error (1002).
* A violation raises :class:`WebSocketProtocolError`, carrying the close code to send.
  The parser is then dead: the stream is out of step, and every later ``feed()`` raises
  the same error. Events completed earlier in the same chunk are on the error's
  ``events`` attribute.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from geventsio.exceptions import LocalProtocolError, RemoteProtocolError
from geventsio.protocol.deflate import InflateError, Inflater

__all__ = [
    "SHORT_TEXT_HEADERS",
    "BinaryMessage",
    "CloseCode",
    "CloseReceived",
    "Event",
    "FrameParser",
    "Opcode",
    "Ping",
    "Pong",
    "TextMessage",
    "WebSocketProtocolError",
    "apply_mask",
    "apply_mask_python",
    "encode_binary",
    "encode_close",
    "encode_compressed",
    "encode_frame",
    "encode_ping",
    "encode_pong",
    "encode_text",
]


class Opcode(IntEnum):
    """The frame opcodes of RFC 6455, section 5.2."""

    CONTINUATION = 0
    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10


class CloseCode(IntEnum):
    """The close codes of RFC 6455, section 7.4.1, that this module names."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_FRAME_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


@dataclass(frozen=True, slots=True, init=False)
class TextMessage:
    """A complete text message (all its fragments, decoded)."""

    data: str

    def __init__(self, data: str) -> None:
        # One per message: set through the slot, not object.__setattr__ (still frozen).
        _SET_TEXT(self, data)


@dataclass(frozen=True, slots=True, init=False)
class BinaryMessage:
    """A complete binary message (all its fragments, joined)."""

    data: bytes

    def __init__(self, data: bytes) -> None:
        # One per message: set through the slot, not object.__setattr__ (still frozen).
        _SET_BINARY(self, data)


_SET_TEXT = vars(TextMessage)["data"].__set__
_SET_BINARY = vars(BinaryMessage)["data"].__set__


@dataclass(frozen=True, slots=True)
class Ping:
    """A ping; answer it with :func:`encode_pong` and the same payload."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame. ``code`` is 1005 (no status) when the frame had no body."""

    code: int
    reason: str


Event: TypeAlias = TextMessage | BinaryMessage | Ping | Pong | CloseReceived


class WebSocketProtocolError(RemoteProtocolError):
    """The peer broke RFC 6455 (or a configured limit) after the handshake.

    :param close_code: the close code to send: 1002 protocol error, 1007 invalid
        UTF-8, 1008 too many fragments, 1009 message too big.
    :param reason: a short ASCII explanation, at most 123 bytes, fit for a close frame.

    ``events`` holds the events that :meth:`FrameParser.feed` completed from the same
    chunk before the violation.
    """

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason
        self.events: list[Event] = []


# ---------------------------------------------------------------------------- masking


def apply_mask_python(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated; the pure-Python fallback.

    :param data: the payload to (un)mask.
    :param mask: the 4-byte masking key.
    """
    size = len(data)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def _choose_apply_mask() -> Callable[[bytes, bytes], bytes]:
    """The C ``apply_mask`` of ``websockets.speedups`` if importable, else the fallback."""
    try:
        from websockets.speedups import apply_mask as c_apply_mask
    except ImportError:
        return apply_mask_python
    return c_apply_mask


#: XOR a payload with a 4-byte mask: ``websockets.speedups.apply_mask`` when available.
apply_mask: Callable[[bytes, bytes], bytes] = _choose_apply_mask()


# ---------------------------------------------------------------------------- parsing

_OPCODES = frozenset(int(op) for op in Opcode)
# Plain ints on the hot path: an enum attribute lookup costs ~0.1 us.
_CONTINUATION, _TEXT, _BINARY, _CLOSE = 0, 1, 2, 8
#: First bytes of a whole (FIN) text or binary frame, no reserved bits: the common case.
_WHOLE_MESSAGE_B0 = frozenset({0x80 | _TEXT, 0x80 | _BINARY})
_MAX_CONTROL_PAYLOAD = 125
_BAD_UTF8 = "text is not valid UTF-8"
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
_utf8_decoder = codecs.getincrementaldecoder("utf-8")


def _error(close_code: int, reason: str) -> WebSocketProtocolError:
    return WebSocketProtocolError(close_code, reason)


def _valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 7.4 and the IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _parse_close(payload: bytes) -> CloseReceived:
    if not payload:
        return CloseReceived(CloseCode.NO_STATUS_RCVD.value, "")
    if len(payload) == 1:
        raise _error(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = _U16.unpack_from(payload)[0]
    if not _valid_close_code(code):
        raise _error(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise _error(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "close reason is not UTF-8") from None
    return CloseReceived(code, reason)


_CONTROL_EVENTS: dict[int, Callable[[bytes], Event]] = {
    Opcode.CLOSE: _parse_close,
    Opcode.PING: Ping,
    Opcode.PONG: Pong,
}


class FrameParser:
    """Turn the bytes of a WebSocket connection into :data:`Event` objects.

    :param max_message_size: the largest message payload accepted, in bytes, summed
        over its fragments; a larger one fails with close code 1009.
    :param max_fragments: the most frames one message may be split into; more fails
        with close code 1008.
    :param expect_masked: ``True`` on the server (client frames must be masked),
        ``False`` on the client (server frames must not be).
    :param inflater: the decompressor of permessage-deflate, when it was agreed.
    :raises LocalProtocolError: if a limit is not positive.

    Frames after a close frame are parsed like any other: stopping reading is the
    caller's business.
    """

    def __init__(
        self,
        *,
        max_message_size: int,
        max_fragments: int = 1024,
        expect_masked: bool = True,
        inflater: Inflater | None = None,
    ) -> None:
        if max_message_size < 0 or max_fragments < 1:
            raise LocalProtocolError(
                "max_message_size must be >= 0 and max_fragments >= 1, got "
                f"{max_message_size} and {max_fragments}"
            )
        self._max_size = max_message_size
        self._max_fragments = max_fragments
        self._mask_bit = 0x80 if expect_masked else 0
        self._error: WebSocketProtocolError | None = None
        self._tail = b""  # an incomplete header, kept for the next chunk
        # The frame whose payload is still arriving: first byte, mask key, slices.
        self._frame_b0 = -1
        self._frame_mask = b""
        self._frame_parts: list[bytes] = []
        self._frame_missing = 0
        # The fragmented message in progress (opcode 0: none).
        self._msg_opcode = 0
        self._msg_size = 0
        self._msg_fragments = 0
        self._msg_text: list[str] = []
        self._msg_binary: list[bytes] = []
        self._decoder = _utf8_decoder()
        self._inflater = inflater
        self._msg_compressed = False
        self._msg_inflated = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Parse a chunk of the stream.

        :param data: the next bytes received, of any length (``b""`` is fine); a
            ``bytearray`` or ``memoryview`` is copied to ``bytes`` first.
        :returns: the events this chunk completed, in order: zero, one or many.
        :raises WebSocketProtocolError: on a protocol violation or a limit exceeded;
            it carries ``close_code``, ``reason`` and the ``events`` completed before it.
        """
        if self._error is not None:
            raise self._error
        events: list[Event] = []
        try:
            self._feed(data if type(data) is bytes else bytes(data), events)
        except WebSocketProtocolError as exc:
            exc.events = events
            self._error = exc
            raise
        return events

    def whole_messages(self, data: bytes) -> list[str | bytes] | None:
        """The messages of ``data`` when it is exactly a run of complete, masked,
        unfragmented text or binary frames of under 64 KiB each, and nothing else is in
        progress: what :meth:`feed` would return as events, without building them. None
        for anything else, valid or not (without consuming it): then call :meth:`feed`,
        which also words any error."""
        size = len(data)
        if (
            size < 6
            or not self._mask_bit
            or self._tail
            or self._frame_b0 >= 0
            or self._msg_opcode
            or self._error is not None
        ):
            return None
        length = data[1] ^ 0x80  # the mask bit must be set
        if length == size - 6 and length < 126 and length <= self._max_size:
            # One short frame, the common read: no loop. (Written out as in the loop.)
            b0 = data[0]
            payload = apply_mask(data[6:], data[2:6])
            if b0 == 0x81:
                try:
                    return [payload.decode("utf-8")]
                except UnicodeDecodeError:
                    return None
            return [payload] if b0 == 0x82 else None
        messages: list[str | bytes] = []
        pos = 0
        while pos < size:
            if size - pos < 6:
                return None
            b0, length = data[pos], data[pos + 1] ^ 0x80  # the mask bit must be set
            if length < 126:
                start = pos + 6
            elif length == 126 and size - pos >= 8:
                length, start = _U16.unpack_from(data, pos + 2)[0], pos + 8
            else:
                return None
            end = start + length
            if end > size or length > self._max_size:
                return None
            payload = apply_mask(data[start:end], data[start - 4 : start])
            if b0 == 0x82:
                messages.append(payload)
            elif b0 != 0x81:
                return None
            else:
                try:
                    messages.append(payload.decode("utf-8"))
                except UnicodeDecodeError:
                    return None
            pos = end
        return messages

    def _feed(self, data: bytes, events: list[Event]) -> None:
        if self._tail:
            data = self._tail + data
            self._tail = b""
        pos = self._continue_frame(data, events) if self._frame_b0 >= 0 else 0
        end = len(data)
        while pos < end:
            header = self._read_header(data, pos, end)
            if header is None:
                self._tail = data[pos:]
                return
            b0, mask, start, stop = header
            if stop > end:
                self._frame_b0, self._frame_mask = b0, mask
                self._frame_parts = [data[start:]]
                self._frame_missing = stop - end
                return
            payload = data[start:stop]
            self._on_frame(b0, apply_mask(payload, mask) if mask else payload, events)
            pos = stop

    def _continue_frame(self, data: bytes, events: list[Event]) -> int:
        """Add ``data`` to the frame in progress; return where the next frame starts."""
        missing = self._frame_missing
        if len(data) < missing:
            self._frame_parts.append(data)
            self._frame_missing -= len(data)
            return len(data)
        self._frame_parts.append(data[:missing])
        payload = b"".join(self._frame_parts)
        b0, mask = self._frame_b0, self._frame_mask
        self._frame_b0, self._frame_mask, self._frame_parts = -1, b"", []
        self._on_frame(b0, apply_mask(payload, mask) if mask else payload, events)
        return missing

    def _read_header(self, data: bytes, pos: int, end: int) -> tuple[int, bytes, int, int] | None:
        """Read and check the header at ``pos``: ``(b0, mask, start, stop)``, or ``None``
        when the header is incomplete. ``start:stop`` is where the payload lies."""
        if end - pos < 2:
            return None
        b0, b1 = data[pos], data[pos + 1]
        if b0 not in _WHOLE_MESSAGE_B0 or b1 & 0x80 != self._mask_bit or self._msg_opcode:
            self._check_first_bytes(b0, b1)
        length = b1 & 0x7F
        start = pos + 2
        if length == 126:
            if end - start < 2:
                return None
            length = _U16.unpack_from(data, start)[0]
            start += 2
        elif length == 127:
            if end - start < 8:
                return None
            length = _U64.unpack_from(data, start)[0]
            start += 8
        if b0 & 0x0F < _CLOSE and (
            self._msg_size + length > self._max_size
            or self._msg_fragments >= self._max_fragments
            or length >> 63
        ):
            self._refuse_data_frame(length)
        if b1 & 0x80:
            if end - start < 4:
                return None
            return b0, data[start : start + 4], start + 4, start + 4 + length
        return b0, b"", start, start + length

    def _check_first_bytes(self, b0: int, b1: int) -> None:
        opcode = b0 & 0x0F
        if b0 & 0x70:
            self._check_reserved_bits(b0)
        if opcode not in _OPCODES:
            raise _error(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode}")
        if b1 & 0x80 != self._mask_bit:
            side = "client frames must be masked" if self._mask_bit else "server frames must not be"
            raise _error(CloseCode.PROTOCOL_ERROR, f"mask bit wrong: {side} masked")
        if opcode >= _CLOSE:
            if not b0 & 0x80:
                raise _error(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
            if b1 & 0x7F > _MAX_CONTROL_PAYLOAD:
                raise _error(CloseCode.PROTOCOL_ERROR, "control frame payload over 125 bytes")
        elif opcode == _CONTINUATION and not self._msg_opcode:
            raise _error(CloseCode.PROTOCOL_ERROR, "continuation frame without a message")
        elif opcode != _CONTINUATION and self._msg_opcode:
            raise _error(CloseCode.PROTOCOL_ERROR, "new message inside a fragmented message")

    def _check_reserved_bits(self, b0: int) -> None:
        if self._inflater is None or b0 & 0x30:
            raise _error(CloseCode.PROTOCOL_ERROR, "reserved bits set, no extension negotiated")
        if b0 & 0x0F not in (_TEXT, _BINARY):
            raise _error(
                CloseCode.PROTOCOL_ERROR, "RSV1 set on a frame other than a message's first"
            )

    def _refuse_data_frame(self, length: int) -> None:
        if length >> 63:
            raise _error(CloseCode.PROTOCOL_ERROR, "64-bit payload length with the top bit set")
        if self._msg_size + length > self._max_size:
            raise _error(CloseCode.MESSAGE_TOO_BIG, f"message over {self._max_size} bytes")
        if self._msg_fragments >= self._max_fragments:
            reason = f"message in over {self._max_fragments} fragments"
            raise _error(CloseCode.POLICY_VIOLATION, reason)

    def _on_frame(self, b0: int, payload: bytes, events: list[Event]) -> None:
        """Turn one complete, unmasked frame into zero or one event."""
        if b0 == 0x81:  # a whole text message in one frame: the common case
            try:
                events.append(TextMessage(payload.decode("utf-8")))
            except UnicodeDecodeError:
                raise _error(CloseCode.INVALID_FRAME_PAYLOAD_DATA, _BAD_UTF8) from None
        elif b0 == 0x82:
            events.append(BinaryMessage(payload))
        elif b0 & 0x0F >= _CLOSE:
            events.append(_CONTROL_EVENTS[b0 & 0x0F](payload))
        else:
            self._on_fragment(b0, payload, events)

    def _on_fragment(self, b0: int, payload: bytes, events: list[Event]) -> None:
        if b0 & 0x0F:
            self._msg_opcode = b0 & 0x0F
            self._msg_compressed = bool(b0 & 0x40)
        fin = bool(b0 & 0x80)
        self._msg_fragments += 1
        self._msg_size += len(payload)
        if self._msg_compressed:
            payload = self._inflate(payload, fin)
        if self._msg_opcode == _BINARY:
            self._msg_binary.append(payload)
        else:
            try:
                self._msg_text.append(self._decoder.decode(payload, fin))
            except UnicodeDecodeError:
                raise _error(CloseCode.INVALID_FRAME_PAYLOAD_DATA, _BAD_UTF8) from None
        if fin:
            events.append(self._finish_message())

    def _inflate(self, payload: bytes, fin: bool) -> bytes:
        assert self._inflater is not None  # RSV1 is refused without one
        try:
            payload = self._inflater.inflate(payload, fin, self._max_size - self._msg_inflated)
        except InflateError as exc:
            if exc.too_big:
                raise _error(
                    CloseCode.MESSAGE_TOO_BIG, f"message inflates over {self._max_size} bytes"
                ) from None
            raise _error(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "invalid compressed data") from None
        self._msg_inflated += len(payload)
        return payload

    def _finish_message(self) -> Event:
        event: Event
        if self._msg_opcode == _BINARY:
            event = BinaryMessage(b"".join(self._msg_binary))
        else:
            event = TextMessage("".join(self._msg_text))
        self._msg_opcode = self._msg_size = self._msg_fragments = self._msg_inflated = 0
        self._msg_compressed = False
        self._msg_text, self._msg_binary = [], []
        self._decoder.reset()
        return event


# ---------------------------------------------------------------------------- encoding

_H2 = struct.Struct("!BB")
_H4 = struct.Struct("!BBH")
_H10 = struct.Struct("!BBQ")


def _header(b0: int, length: int, mask_bit: int) -> bytes:
    if length < 126:
        return _H2.pack(b0, mask_bit | length)
    if length < 0x10000:
        return _H4.pack(b0, mask_bit | 126, length)
    return _H10.pack(b0, mask_bit | 127, length)


def _frame(b0: int, payload: bytes, mask: bytes | None) -> bytes:
    if mask is None:
        return _header(b0, len(payload), 0) + payload
    if len(mask) != 4:
        raise LocalProtocolError(f"a masking key is 4 bytes, got {len(mask)}")
    return b"".join((_header(b0, len(payload), 0x80), mask, apply_mask(payload, mask)))


def encode_frame(
    opcode: Opcode, payload: bytes, *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """Build one frame.

    :param opcode: the frame's opcode.
    :param payload: the frame's payload, unmasked.
    :param fin: ``False`` for every fragment of a message but the last.
    :param mask: a 4-byte masking key (the client must mask, e.g. ``os.urandom(4)``);
        ``None`` for an unmasked (server) frame.
    :raises LocalProtocolError: for an unknown opcode, a bad mask, or a control frame
        that is fragmented or carries over 125 bytes.
    """
    if opcode not in _OPCODES:
        raise LocalProtocolError(f"unknown opcode {opcode!r}")
    if opcode >= _CLOSE and (not fin or len(payload) > _MAX_CONTROL_PAYLOAD):
        raise LocalProtocolError("a control frame is unfragmented, with at most 125 bytes")
    return _frame((0x80 if fin else 0) | opcode, payload, mask)


#: The header of an unmasked single-frame text message of n < 126 bytes, by n.
SHORT_TEXT_HEADERS: tuple[bytes, ...] = tuple(bytes((0x81, n)) for n in range(126))


def encode_text(data: str | bytes, *, mask: bytes | None = None) -> bytes:
    """A single-frame text message; ``bytes`` are taken as already UTF-8 encoded.

    :param mask: a 4-byte masking key on the client side, else ``None``.
    """
    if type(data) is bytes and mask is None and len(data) < 126:  # a short answer: no calls
        return SHORT_TEXT_HEADERS[len(data)] + data
    return _frame(0x81, data.encode("utf-8") if isinstance(data, str) else data, mask)


def encode_binary(data: bytes, *, mask: bytes | None = None) -> bytes:
    """A single-frame binary message.

    :param mask: a 4-byte masking key on the client side, else ``None``.
    """
    if mask is None:
        return _header(0x82, len(data), 0) + data
    return _frame(0x82, data, mask)


def encode_compressed(payload: bytes, *, text: bool, mask: bytes | None = None) -> bytes:
    """A single-frame message compressed by permessage-deflate (RSV1 set).

    :param payload: the message as :meth:`~geventsio.protocol.deflate.Deflater.deflate`
        returned it.
    :param text: a text message (else binary).
    :param mask: a 4-byte masking key on the client side, else ``None``.
    """
    return _frame(0xC1 if text else 0xC2, payload, mask)


def encode_close(code: int = 1000, reason: str = "", *, mask: bytes | None = None) -> bytes:
    """A close frame.

    :param code: a close code valid on the wire (1000-1003, 1007-1014, 3000-4999).
    :param reason: at most 123 bytes once UTF-8 encoded.
    :param mask: a 4-byte masking key on the client side, else ``None``.
    :raises LocalProtocolError: for a code not allowed on the wire or a reason too long.
    """
    if not _valid_close_code(code):
        raise LocalProtocolError(f"close code {code} may not be sent")
    payload = _U16.pack(code) + reason.encode("utf-8")
    if len(payload) > _MAX_CONTROL_PAYLOAD:
        raise LocalProtocolError("a close reason is at most 123 bytes of UTF-8")
    return _frame(0x88, payload, mask)


def encode_ping(payload: bytes = b"", *, mask: bytes | None = None) -> bytes:
    """A ping frame.

    :raises LocalProtocolError: if the payload is over 125 bytes.
    """
    return encode_frame(Opcode.PING, payload, mask=mask)


def encode_pong(payload: bytes = b"", *, mask: bytes | None = None) -> bytes:
    """A pong frame, e.g. answering a :class:`Ping` with its payload.

    :raises LocalProtocolError: if the payload is over 125 bytes.
    """
    return encode_frame(Opcode.PONG, payload, mask=mask)
