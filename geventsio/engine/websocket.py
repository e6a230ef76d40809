"""WebSocket connections on the server side.

The engine speaks to a :class:`WebSocketConnection` and does not care how the connection
was obtained. :class:`RawWebSocket` runs geventsio's own RFC 6455 framing on a socket
taken over from the HTTP server, whichever server it is (see
:mod:`geventsio.engine.takeover`): it enforces every limit before buffering a payload.
When the server owns the socket (``owns_socket=False``), it is only shut down at the end
and the server closes it.

With permessage-deflate agreed, a packet is compressed when its ``compress`` flag allows
it and its message is at least the threshold; the rest go as they are, RSV1 clear. A
compressor that keeps its context must see exactly the messages the client receives, in
order: its frames are never dropped from the outgoing buffer (a slow consumer is then
closed rather than desynchronised), and a frame that could not be queued resets it.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import gevent
import gevent.socket
from mypy_extensions import mypyc_attr

from geventsio.engine.dropping import Tier
from geventsio.engine.gevent_private import kernel_socket, wait_readable
from geventsio.engine.writer import SocketWriter
from geventsio.options import DeflateOptions
from geventsio.protocol import websocket as ws_frames
from geventsio.protocol.deflate import Deflater
from geventsio.protocol.deflate_offer import DeflateAgreement
from geventsio.protocol.outgoing import OutgoingPacket

logger = logging.getLogger(__name__)

#: How long a closing handshake may take before the socket is closed anyway.
CLOSE_HANDSHAKE_TIMEOUT = 2.0
#: The most bytes one read takes from a WebSocket's connection.
READ_SIZE = 65536


# Applications and other adapters subclass it (a compiled build allows that only so).
@mypyc_attr(allow_interpreted_subclasses=True)
class WebSocketConnection(ABC):
    """A server-side WebSocket whose opening handshake is complete."""

    @abstractmethod
    def receive(self) -> str | bytes | None:
        """Block until the next message; None once the connection is closed.

        :raises RemoteProtocolError: the client broke the WebSocket protocol.
        """

    @abstractmethod
    def send_packets(self, packets: Sequence[OutgoingPacket], tier: Tier = Tier.KEEP) -> bool:
        """Queue packets without blocking; False when the outgoing buffer is full."""

    @abstractmethod
    def make_room(self, packets: Sequence[OutgoingPacket], tier: Tier) -> bool:
        """Drop queued packets that may go (see :mod:`~geventsio.engine.dropping`) until
        ``packets`` fit; False when they cannot."""

    @abstractmethod
    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (idempotent); never blocks for long."""

    @abstractmethod
    def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for queued data to reach the kernel."""

    def close_and_wait(
        self, code: int = 1000, reason: str = "", timeout: float = CLOSE_HANDSHAKE_TIMEOUT
    ) -> None:
        """Close and wait (bounded) for the client's answer; only from the reader's
        greenlet, once it has stopped reading messages."""
        self.close(code, reason)

    @property
    def detached(self) -> bool:
        """Whether the connection outlives its HTTP request (it may be served from another
        greenlet once the request has returned)."""
        return False

    @property
    def reads_interruptible(self) -> bool:
        """Whether a greenlet waiting in :meth:`receive` may be killed without losing or
        tearing what was read (then its reader may be lent out: see
        :mod:`~geventsio.engine.lending`)."""
        return False

    @property
    @abstractmethod
    def writable(self) -> bool:
        """Whether nothing is waiting to be written (a new message would leave at once)."""


class RawWebSocket(WebSocketConnection):
    """geventsio's own framing over a socket it owns.

    :param sock: the connected socket, after the ``101`` response was written.
    :param reader: a buffered reader on that socket (it may hold bytes already read).
    :param max_message_size: largest message accepted, checked from each frame header.
    :param max_fragments: fragments one message may have.
    :param max_buffer_size: bytes that may wait for a slow client.
    :param deflate: the permessage-deflate parameters agreed in the handshake, if any.
    :param deflate_options: the server's options for it (threshold, zlib settings).
    :param reader_empty: ``reader`` holds nothing read ahead: read the socket from the
        start (waiting for it first: the client speaks only once answered).
    :param preface: the opening handshake's answer, when it is still to be sent: it
        leaves with the first frame (in one segment), or before the first read.
    """

    def __init__(
        self,
        sock: gevent.socket.socket,
        reader: Any,
        *,
        max_message_size: int,
        max_fragments: int,
        max_buffer_size: int,
        owns_socket: bool = True,
        detached: bool = False,
        deflate: DeflateAgreement | None = None,
        deflate_options: DeflateOptions | None = None,
        reader_empty: bool = False,
        preface: bytes = b"",
    ) -> None:
        self._detached = detached
        self._sock = sock
        self._owns_socket = owns_socket
        self._reader = reader
        # After one read1() the reader's buffer is empty (read1 hands over all it holds):
        # from then on a plain gevent socket is read directly, skipping BufferedReader
        # and SocketIO (and the 64 KiB buffer read1 allocates for each call).
        self._raw = kernel_socket(sock)
        self._direct = self._drained = reader_empty and self._raw is not None
        self._deflater: Deflater | None = None
        self._threshold = 0
        if deflate is not None:
            options = deflate_options or DeflateOptions()
            self._deflater = deflate.deflater(options)
            self._threshold = options.threshold
        self._parser = ws_frames.FrameParser(
            max_message_size=max_message_size,
            max_fragments=max_fragments,
            inflater=None if deflate is None else deflate.inflater(),
        )
        # A list and an index: a deque would cost 600 bytes per idle connection, and
        # list.pop(0) is quadratic in the frames one read can hold.
        self._events: list[object] = []
        self._next_event = 0
        self._writer = SocketWriter(sock, max_buffer_size, on_error=self._abort, preface=preface)
        self._close_sent = False
        self._closed = False
        self._close_timer: Any = None

    def receive(self) -> str | bytes | None:
        while True:
            events = self._events
            if events:  # what an earlier read gave beyond its first message
                while self._next_event < len(events):
                    event = events[self._next_event]
                    self._next_event += 1
                    if type(event) is str or type(event) is bytes:  # from whole_messages()
                        return event
                    message = self._handle_event(event)
                    if message is not None:
                        return message
                events.clear()
                self._next_event = 0
            if self._closed:
                return None
            data = self._read()
            if not data:
                self._abort()
                return None
            messages = self._parser.whole_messages(data)  # whole frames: no events
            if messages is not None:
                if len(messages) == 1:
                    return messages[0]
                self._events.extend(messages)
                continue
            try:
                self._events.extend(self._parser.feed(data))
            except ws_frames.WebSocketProtocolError as exc:
                self.close(exc.close_code, exc.reason[:100])
                self._abort()
                raise

    def _read(self) -> bytes:
        if self._writer.preface:  # the client waits for the handshake's answer
            self._writer.write(b"")
        try:
            raw = self._raw
            if raw is not None and self._direct:
                if self._drained:
                    # The last read emptied the kernel's buffer (it returned less than
                    # asked): wait for more before reading, rather than first pay for a
                    # recv() that fails with EAGAIN, as it nearly always would here.
                    wait_readable(self._sock)
                while True:
                    try:
                        received: bytes = raw.recv(READ_SIZE)
                        self._drained = len(received) < READ_SIZE
                        return received
                    except BlockingIOError:
                        # Wait as gevent's own recv does (a close from another greenlet
                        # cancels the wait), without its second try before waiting.
                        wait_readable(self._sock)
            data: bytes = self._reader.read1(READ_SIZE)
        except (OSError, ValueError):
            return b""
        self._direct = self._raw is not None
        self._drained = len(data) < READ_SIZE
        return data

    def _handle_event(self, event: object) -> str | bytes | None:
        if isinstance(event, ws_frames.TextMessage | ws_frames.BinaryMessage):
            return event.data
        if isinstance(event, ws_frames.Ping):
            self._writer.write(ws_frames.encode_pong(event.payload))
        elif isinstance(event, ws_frames.CloseReceived):
            self.close(1000 if event.code in (1005, 1006) else event.code)
            self._abort()
        return None

    def send_packets(self, packets: Sequence[OutgoingPacket], tier: Tier = Tier.KEEP) -> bool:
        if self._close_sent:
            return True
        if self._deflater is not None:
            return self._send_deflating(self._deflater, packets, tier)
        if len(packets) == 1:
            return self._writer.write(packets[0].ws_frame(), tier)
        return self._writer.write(b"".join([p.ws_frame() for p in packets]), tier)

    def _send_deflating(
        self, deflater: Deflater, packets: Sequence[OutgoingPacket], tier: Tier
    ) -> bool:
        frames = []
        compressed = False
        for packet in packets:
            if packet.compress and len(packet.ws_payload()) >= self._threshold:
                frames.append(packet.ws_deflated_frame(deflater))
                compressed = True
            else:
                frames.append(packet.ws_frame())
        if not compressed or deflater.shared_key is not None:
            return self._writer.write(b"".join(frames), tier)
        if self._writer.write(b"".join(frames), Tier.KEEP):
            return True
        deflater.reset()  # the client never sees what the compressor just saw
        return False

    def make_room(self, packets: Sequence[OutgoingPacket], tier: Tier) -> bool:
        return self._writer.make_room(sum(len(p.ws_frame()) for p in packets), tier)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._close_sent or self._closed:
            return
        self._close_sent = True
        self._writer.write(ws_frames.encode_close(code, reason))
        # A timer of the hub's, not a greenlet: nearly always stopped unfired (the client
        # answers the close), and a greenlet would cost its spawn and its kill.
        timer = self._close_timer = gevent.get_hub().loop.timer(CLOSE_HANDSHAKE_TIMEOUT)
        timer.start(self._abort)

    def drain(self, timeout: float) -> None:
        self._writer.drain(timeout)

    def close_and_wait(
        self, code: int = 1000, reason: str = "", timeout: float = CLOSE_HANDSHAKE_TIMEOUT
    ) -> None:
        self.close(code, reason)
        if self._closed:  # the client has gone already (the common end)
            return
        with gevent.Timeout(timeout, False):
            while not self._closed and not self._saw_close():
                data = self._read()
                if not data:
                    break
                try:
                    self._events.extend(self._parser.feed(data))
                except ws_frames.WebSocketProtocolError:
                    break
        self._abort()

    @property
    def detached(self) -> bool:
        return self._detached

    @property
    def reads_interruptible(self) -> bool:
        # A read is one recv() fed whole to the parser: a greenlet killed while it
        # waits for data has read nothing.
        return True

    def _saw_close(self) -> bool:
        pending = self._events[self._next_event :]
        return any(isinstance(event, ws_frames.CloseReceived) for event in pending)

    @property
    def writable(self) -> bool:
        return not self._close_sent and self._writer.buffered == 0

    def _abort(self) -> None:
        """Close the socket now (after what is buffered had a short chance to leave)."""
        if self._closed:
            return
        self._closed = True
        if self._close_timer is not None:
            self._close_timer.close()
        if not self._writer.failed and self._writer.buffered:
            gevent.spawn(self._close_after_drain)
        else:
            self._close_socket()

    def _close_after_drain(self) -> None:
        self._writer.drain(CLOSE_HANDSHAKE_TIMEOUT)
        self._close_socket()

    def _close_socket(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(gevent.socket.SHUT_RDWR)
        if self._owns_socket:
            self._sock.close()
            self._reader.close()  # a reader may hold the socket open (takeover.hand_over)
