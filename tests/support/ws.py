"""A raw WebSocket client: a hand-made opening handshake and masked RFC 6455 frames.

Frames are built with :func:`geventsio.protocol.websocket.encode_frame` (masked, as a
client must) and read with ``FrameParser(expect_masked=False)``; a test may also send
any bytes it likes (a lone oversize header, a flood of fragments) with :meth:`send_raw`.
"""

from __future__ import annotations

import contextlib
import os

import gevent

from geventsio.exceptions import LocalProtocolError
from geventsio.protocol import websocket as wsproto
from geventsio.protocol import websocket_handshake as handshake
from geventsio.protocol.websocket import (
    BinaryMessage,
    CloseReceived,
    Event,
    FrameParser,
    Opcode,
    TextMessage,
)
from tests.support.http import DEFAULT_TIMEOUT, Headers, HttpClient, HttpResponse


class HandshakeRefused(AssertionError):
    """The server answered the opening handshake with something other than 101."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(f"WebSocket handshake refused: {response.status} {response.body!r}")
        self.response = response


class ConnectionEnded(AssertionError):
    """A message was expected but the WebSocket closed."""

    def __init__(self, close: CloseReceived | None) -> None:
        what = f"close frame {close.code} {close.reason!r}" if close else "TCP close"
        super().__init__(f"the WebSocket ended ({what}) while a message was expected")
        self.close = close


class WsClient:
    """A client WebSocket over an :class:`HttpClient` whose handshake succeeded.

    :param http: the connection, positioned after the ``101`` response.
    :param max_message_size: largest message accepted from the server.
    """

    def __init__(self, http: HttpClient, *, max_message_size: int = 1 << 27) -> None:
        self.http = http
        self.timeout = http.timeout
        self._parser = FrameParser(max_message_size=max_message_size, expect_masked=False)
        self._events: list[Event] = []
        self.close_received: CloseReceived | None = None
        #: Answer a close frame from the server with one (a well-behaved client does).
        self.reply_to_close = True
        self.eof = False

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        resource: str,
        *,
        headers: Headers = (),
        timeout: float = DEFAULT_TIMEOUT,
        rcvbuf: int | None = None,
        pipelined: bytes = b"",
    ) -> WsClient:
        """Open a TCP connection and perform the opening handshake (``pipelined``: bytes
        sent in the same write as the request, before any answer).

        :raises HandshakeRefused: the server answered with another status (the response,
            with its body, is on the exception).
        """
        http = HttpClient(host, port, timeout=timeout, rcvbuf=rcvbuf)
        key = handshake.new_client_key()
        request = handshake.client_handshake_request(http.host_header, resource, key, list(headers))
        http.send(request + pipelined)
        head = http.read_head()
        if head.status != 101:
            if head.header("content-length") is not None:
                head.body = http.read_exact(int(head.header("content-length") or 0))
            http.close()
            raise HandshakeRefused(head)
        handshake.check_server_response(head.status, {k.lower(): v for k, v in head.headers}, key)
        client = cls(http)
        if http.buffer:
            client._feed(bytes(http.buffer))
            http.buffer.clear()
        return client

    # -- sending ------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are."""
        self.http.send(data)

    def send_frame(self, opcode: Opcode, payload: bytes, *, fin: bool = True) -> None:
        """Send one masked frame."""
        self.http.send(wsproto.encode_frame(opcode, payload, fin=fin, mask=os.urandom(4)))

    def flood_with_fragments(self, count: int) -> gevent.Greenlet[[], None]:
        """Start sending, from another greenlet, one text message in ``count`` + 1
        one-byte unmasked-length fragments that never ends (the server may close first)."""
        mask = b"\0\0\0\0"
        first = bytes([0x01, 0x80 | 1]) + mask + b"4"
        flood = first + (bytes([0x00, 0x80 | 1]) + mask + b"x") * count

        def send() -> None:
            with contextlib.suppress(OSError):
                self.send_raw(flood)

        return gevent.spawn(send)

    def send_text(self, text: str) -> None:
        """Send a text message in one frame."""
        self.send_frame(Opcode.TEXT, text.encode("utf-8"))

    def send_binary(self, data: bytes) -> None:
        """Send a binary message in one frame."""
        self.send_frame(Opcode.BINARY, data)

    def send(self, message: str | bytes) -> None:
        """Send text or binary according to the type of ``message``."""
        if isinstance(message, str):
            self.send_text(message)
        else:
            self.send_binary(message)

    # -- receiving ----------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        self._events.extend(self._parser.feed(data))

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next frame-level event from the server; None when the TCP stream ended."""
        limit = self.timeout if timeout is None else timeout
        with gevent.Timeout(limit, TimeoutError("no WebSocket event in time")):
            while not self._events:
                if self.eof:
                    return None
                try:
                    data = self.http.sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    self.eof = True
                    return None
                self._feed(data)
        event = self._events.pop(0)
        if isinstance(event, CloseReceived):
            self.close_received = event
            if self.reply_to_close:
                self._reply_to_close(event)
        return event

    def _reply_to_close(self, event: CloseReceived) -> None:
        """Answer the server's close frame, as RFC 6455 (5.5.1) requires of a client."""
        code = event.code if event.code not in (1005, 1006) else 1000
        with contextlib.suppress(OSError, LocalProtocolError):
            self.http.send(wsproto.encode_close(code, mask=os.urandom(4)))

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next text or binary message.

        :raises ConnectionEnded: a close frame or the end of the stream came first.
        """
        while True:
            event = self.next_event(timeout)
            if isinstance(event, TextMessage | BinaryMessage):
                return event.data
            if event is None or isinstance(event, CloseReceived):
                raise ConnectionEnded(event)

    def wait_closed(self, timeout: float | None = None) -> CloseReceived | None:
        """Read (and drop) messages until the server's close frame or the end of the
        stream; return the close frame, or None if the TCP connection just ended."""
        while True:
            event = self.next_event(timeout)
            if event is None:
                return self.close_received
            if isinstance(event, CloseReceived):
                return event

    def wait_eof(self, timeout: float | None = None) -> None:
        """Wait until the server closes the TCP connection (dropping what arrives)."""
        while self.next_event(timeout) is not None:
            pass

    def close(self, code: int = 1000) -> None:
        """Send a close frame (if the socket still takes it) and close the connection."""
        if not self.http.closed:
            with contextlib.suppress(OSError):
                self.http.send(wsproto.encode_close(code, mask=os.urandom(4)))
        self.http.close()

    def abort(self) -> None:
        """Close the TCP connection without a closing handshake (a client vanishing)."""
        self.http.close()
