"""permessage-deflate's compression of message payloads (RFC 7692, section 7.2).

A compressed message is raw DEFLATE data, flushed to a byte boundary, without the
``00 00 ff ff`` that ends the flush. Both ends may keep their context (the window of
past messages) from one message to the next, unless ``no_context_takeover`` was agreed.

Theory of operation
-------------------
A zlib context is costly: a compressor takes about 256 KiB with a 15-bit window and
``mem_level`` 8, a decompressor up to 40 KiB. So neither is made before it is needed
(an idle connection, or one exchanging only small messages, holds none), and without
context takeover each is dropped at the end of its message (memory is held only while
a message is being compressed or decompressed).

Decompression is bounded: :meth:`Inflater.inflate` never produces more than the bytes
the message may still have (``max_length``), so a small frame that would inflate to
gigabytes costs at most the limit, and is refused as soon as it exceeds it.
"""

from __future__ import annotations

import zlib
from typing import Any

from geventsio.exceptions import RemoteProtocolError

__all__ = ["TAIL", "Deflater", "InflateError", "Inflater"]

#: The end of a sync flush: removed from every compressed message, added back to inflate.
TAIL = b"\x00\x00\xff\xff"


class InflateError(RemoteProtocolError):
    """A compressed message was corrupt (``too_big`` False) or inflated past its limit."""

    def __init__(self, reason: str, *, too_big: bool = False) -> None:
        super().__init__(reason)
        self.too_big = too_big


class Deflater:
    """Compresses the messages one end sends, in order.

    :param window_bits: the agreed window (9-15).
    :param no_context_takeover: start every message afresh (and keep no compressor
        between messages).
    :param level: zlib's compression level.
    :param mem_level: zlib's ``memLevel``.
    """

    __slots__ = ("_level", "_mem_level", "_no_takeover", "_wbits", "_zlib")

    def __init__(
        self, window_bits: int, no_context_takeover: bool, *, level: int = 6, mem_level: int = 8
    ) -> None:
        self._wbits = -window_bits
        self._no_takeover = no_context_takeover
        self._level = level
        self._mem_level = mem_level
        self._zlib: Any = None

    @property
    def allocated(self) -> bool:
        """Whether a zlib compressor is held now."""
        return self._zlib is not None

    @property
    def shared_key(self) -> tuple[int, int, int] | None:
        """What the compressed form of a message depends on, when it depends on nothing
        else (no context takeover): every connection with the same key may share it.
        None when the deflater keeps its context."""
        if not self._no_takeover:
            return None
        return (self._wbits, self._level, self._mem_level)

    def deflate(self, data: bytes | memoryview) -> bytes:
        """The compressed payload of one whole message (its tail removed)."""
        compressor = self._zlib
        if compressor is None:
            compressor = zlib.compressobj(self._level, zlib.DEFLATED, self._wbits, self._mem_level)
            if not self._no_takeover:
                self._zlib = compressor
        out: bytes = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(TAIL) else out

    def reset(self) -> None:
        """Forget the context: the next message starts afresh. Always allowed (the peer's
        decompressor does not need to know), e.g. after a compressed message could not be
        sent, which the peer would otherwise be expected to have seen."""
        self._zlib = None


class Inflater:
    """Decompresses the messages one end receives, fragment by fragment.

    :param window_bits: the agreed window of the peer's compressor (8-15).
    :param no_context_takeover: the peer starts every message afresh (so no
        decompressor is kept between messages).
    """

    __slots__ = ("_no_takeover", "_wbits", "_zlib")

    def __init__(self, window_bits: int, no_context_takeover: bool) -> None:
        self._wbits = -window_bits
        self._no_takeover = no_context_takeover
        self._zlib: Any = None

    @property
    def allocated(self) -> bool:
        """Whether a zlib decompressor is held now."""
        return self._zlib is not None

    def inflate(self, data: bytes, fin: bool, limit: int) -> bytes:
        """Decompress one fragment of a compressed message.

        :param data: the fragment's payload.
        :param fin: whether it is the message's last fragment.
        :param limit: the most bytes this fragment may inflate to.
        :raises InflateError: corrupt data, or more than ``limit`` bytes (``too_big``);
            no more than ``limit + 1`` bytes are ever produced.
        """
        decompressor = self._zlib
        if decompressor is None:
            decompressor = self._zlib = zlib.decompressobj(self._wbits)
        try:
            out: bytes = decompressor.decompress(data, limit + 1)
            if fin and len(out) <= limit and not decompressor.eof:
                out += decompressor.decompress(TAIL, limit + 1 - len(out))
        except zlib.error as exc:
            self._zlib = None
            raise InflateError(f"invalid compressed data ({exc})") from None
        if len(out) > limit:
            self._zlib = None
            raise InflateError(f"message inflates past {limit} more bytes", too_big=True)
        if decompressor.eof or (fin and self._no_takeover):
            # A final block (BFINAL) ends the stream: the next message starts a new one.
            self._zlib = None
        return out
