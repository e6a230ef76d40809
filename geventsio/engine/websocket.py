"""WebSocket connections on the server side: the transport seam.

The engine speaks to a :class:`WebSocketConnection` and does not care how the connection
was obtained. Two kinds exist:

* :class:`RawWebSocket` runs geventsio's own RFC 6455 framing on a socket taken over from
  the HTTP server. geventsio's pywsgi handler offers ``geventsio.takeover`` in the
  environ; gunicorn's workers expose ``gunicorn.socket``, and there the ``101`` answer is
  written through gunicorn's own ``start_response`` so that gunicorn knows the response
  was sent, and the socket is only shut down (gunicorn closes it). It enforces every
  limit before buffering a payload, and lets the engine refuse an upgrade with a plain
  HTTP answer.
* :class:`GeventWebSocket` wraps the ``wsgi.websocket`` object that gevent-websocket's
  handler puts in the environ, after it has already answered ``101``.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gevent
import gevent.socket

from geventsio.engine.tcp import set_nodelay
from geventsio.engine.writer import SocketWriter
from geventsio.exceptions import PayloadTooLarge, RemoteProtocolError
from geventsio.protocol import websocket as ws_frames
from geventsio.protocol import websocket_handshake as handshake
from geventsio.protocol.outgoing import OutgoingPacket

logger = logging.getLogger(__name__)

#: How long a closing handshake may take before the socket is closed anyway.
CLOSE_HANDSHAKE_TIMEOUT = 2.0
#: The most bytes one read takes from a WebSocket's connection.
READ_SIZE = 65536

GUNICORN_SOCKET_KEY = "gunicorn.socket"
TAKEOVER_KEY = "geventsio.takeover"
"""Environ key of a callable returning ``(socket, buffered_reader)`` and detaching the
connection from the HTTP server (set by :mod:`geventsio.serving`)."""


class WebSocketConnection(ABC):
    """A server-side WebSocket whose opening handshake is complete."""

    @abstractmethod
    def receive(self) -> str | bytes | None:
        """Block until the next message; None once the connection is closed.

        :raises RemoteProtocolError: the client broke the WebSocket protocol.
        """

    @abstractmethod
    def send_packets(self, packets: Sequence[OutgoingPacket]) -> bool:
        """Queue packets without blocking; False when the outgoing buffer is full."""

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
    ) -> None:
        self._detached = detached
        self._sock = sock
        self._owns_socket = owns_socket
        self._reader = reader
        # After one read1() the reader's buffer is empty (read1 hands over all it holds):
        # from then on a plain gevent socket is read directly, skipping BufferedReader
        # and SocketIO (and the 64 KiB buffer read1 allocates for each call).
        self._raw = sock._sock if type(sock) is gevent.socket.socket else None
        self._direct = False
        self._drained = False
        self._parser = ws_frames.FrameParser(
            max_message_size=max_message_size, max_fragments=max_fragments
        )
        # A list and an index: a deque would cost 600 bytes per idle connection, and
        # list.pop(0) is quadratic in the frames one read can hold.
        self._events: list[object] = []
        self._next_event = 0
        self._writer = SocketWriter(sock, max_buffer_size, on_error=self._abort)
        self._close_sent = False
        self._closed = False
        self._close_timer: Any = None

    def receive(self) -> str | bytes | None:
        while True:
            while self._next_event < len(self._events):
                event = self._events[self._next_event]
                self._next_event += 1
                message = self._handle_event(event)
                if message is not None:
                    return message
            self._events.clear()
            self._next_event = 0
            if self._closed:
                return None
            data = self._read()
            if not data:
                self._abort()
                return None
            try:
                self._events.extend(self._parser.feed(data))
            except ws_frames.WebSocketProtocolError as exc:
                self.close(exc.close_code, exc.reason[:100])
                self._abort()
                raise

    def _read(self) -> bytes:
        try:
            raw = self._raw
            if raw is not None and self._direct:
                if self._drained:
                    # The last read emptied the kernel's buffer (it returned less than
                    # asked): wait for more before reading, rather than first pay for a
                    # recv() that fails with EAGAIN, as it nearly always would here.
                    self._sock._wait(self._sock._read_event)
                while True:
                    try:
                        received: bytes = raw.recv(READ_SIZE)
                        self._drained = len(received) < READ_SIZE
                        return received
                    except BlockingIOError:
                        # Wait as gevent's own recv does (a close from another greenlet
                        # cancels the wait), without its second try before waiting.
                        self._sock._wait(self._sock._read_event)
            data: bytes = self._reader.read1(READ_SIZE)
        except (OSError, ValueError):
            return b""
        self._direct = self._raw is not None
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

    def send_packets(self, packets: Sequence[OutgoingPacket]) -> bool:
        if self._close_sent:
            return True
        if len(packets) == 1:
            return self._writer.write(packets[0].ws_frame())
        return self._writer.write(b"".join(p.ws_frame() for p in packets))

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._close_sent or self._closed:
            return
        self._close_sent = True
        self._writer.write(ws_frames.encode_close(code, reason))
        self._close_timer = gevent.spawn_later(CLOSE_HANDSHAKE_TIMEOUT, self._abort)

    def drain(self, timeout: float) -> None:
        self._writer.drain(timeout)

    def close_and_wait(
        self, code: int = 1000, reason: str = "", timeout: float = CLOSE_HANDSHAKE_TIMEOUT
    ) -> None:
        self.close(code, reason)
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
        if self._close_timer is not None and self._close_timer is not gevent.getcurrent():
            self._close_timer.kill(block=False)
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


class GeventWebSocket(WebSocketConnection):
    """Adapter for gevent-websocket's ``wsgi.websocket`` object.

    gevent-websocket writes synchronously, so writes go through a bounded queue drained
    by a flusher greenlet that exists only while there is something to write.
    """

    def __init__(self, websocket: Any, *, max_message_size: int, max_buffer_size: int) -> None:
        self._ws = websocket
        self._max_message_size = max_message_size
        self._max_buffer_size = max_buffer_size
        self._pending: deque[OutgoingPacket] = deque()
        self._pending_size = 0
        self._flusher: gevent.Greenlet[[], None] | None = None
        self._closed = False

    def receive(self) -> str | bytes | None:
        from geventwebsocket.exceptions import WebSocketError

        try:
            message: str | bytes | bytearray | None = self._ws.receive()
        except WebSocketError as exc:
            if self._closed:
                return None
            raise RemoteProtocolError(f"WebSocket error: {exc}") from None
        except OSError:
            return None
        if message is None:
            return None
        if len(message) > self._max_message_size:
            self.close(1009, "message too big")
            raise PayloadTooLarge(f"WebSocket message of {len(message)} bytes")
        return bytes(message) if isinstance(message, bytearray) else message

    def send_packets(self, packets: Sequence[OutgoingPacket]) -> bool:
        if self._closed:
            return True
        size = sum(p.size for p in packets)
        if self._pending_size + size > self._max_buffer_size:
            return False
        self._pending.extend(packets)
        self._pending_size += size
        if self._flusher is None:
            self._flusher = gevent.spawn(self._flush)
        return True

    def _flush(self) -> None:
        try:
            while self._pending:
                packet = self._pending.popleft()
                self._pending_size -= packet.size
                message = packet.ws_message()
                self._ws.send(message, binary=isinstance(message, bytes))
        except Exception:  # gevent-websocket raises several kinds on a dead socket
            self._pending.clear()
            self._pending_size = 0
            self.close()
        finally:
            self._flusher = None

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self.drain(CLOSE_HANDSHAKE_TIMEOUT)
        close_gevent_websocket(self._ws, code, reason)

    @property
    def writable(self) -> bool:
        return not self._closed and not self._pending

    def drain(self, timeout: float) -> None:
        flusher = self._flusher
        if flusher is not None and flusher is not gevent.getcurrent():
            flusher.join(timeout)


def close_gevent_websocket(websocket: Any, code: int, reason: str) -> None:
    """Close a gevent-websocket connection with a proper close frame.

    gevent-websocket's own ``close(code, message)`` ignores ``code`` and sends ``str()`` of
    ``message`` as the whole close payload, so the frame is built and sent here.
    """
    if websocket.closed:
        return
    payload = struct.pack("!H", code) + reason.encode("utf-8")[:123].decode(
        "utf-8", "ignore"
    ).encode("utf-8")
    try:
        websocket.send_frame(payload, opcode=websocket.OPCODE_CLOSE)
    except Exception:
        logger.debug("closing a gevent-websocket connection failed", exc_info=True)
    finally:
        websocket.closed = True


def lowercase_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """The request headers from a WSGI environ, with lower-case dashed names."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if "CONTENT_TYPE" in environ:
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


class UpgradeRefused(RemoteProtocolError):
    """The server cannot run a WebSocket on this request (no way to take the socket)."""


def can_take_over(environ: Mapping[str, Any]) -> bool:
    """Whether this request can become a WebSocket connection."""
    return any(key in environ for key in ("wsgi.websocket", TAKEOVER_KEY, GUNICORN_SOCKET_KEY))


class PendingReader:
    """``read1`` that first hands back the bytes read ahead of a taken-over request, then
    reads the socket itself."""

    __slots__ = ("_pending", "_sock")

    def __init__(self, sock: gevent.socket.socket, pending: bytes) -> None:
        self._sock = sock
        self._pending = pending

    def read1(self, size: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._sock.recv(size)  # type: ignore[no-any-return]


class _SocketReader:
    """``read1`` straight from a socket (gunicorn keeps no bytes of an upgrade request's
    connection buffered: the client waits for ``101`` before it sends a frame)."""

    def __init__(self, sock: gevent.socket.socket) -> None:
        self._sock = sock

    def read1(self, size: int) -> bytes:
        data: bytes = self._sock.recv(size)
        return data


def _split_response(response: bytes) -> tuple[str, list[tuple[str, str]]]:
    """The status and headers of an HTTP response head (for a WSGI start_response)."""
    lines = response.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 1)[1]
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return status, headers


def accept_websocket(
    environ: Mapping[str, Any],
    start_response: Callable[..., Any],
    *,
    max_message_size: int,
    max_fragments: int,
    max_buffer_size: int,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> WebSocketConnection:
    """Complete the opening handshake of this request and return the connection.

    :raises RemoteProtocolError: the request is not a valid WebSocket handshake.
    :raises UpgradeRefused: the server under us gives no way to take the connection over.
    """
    gevent_ws = environ.get("wsgi.websocket")
    if gevent_ws is not None:
        return GeventWebSocket(
            gevent_ws, max_message_size=max_message_size, max_buffer_size=max_buffer_size
        )
    limits: dict[str, Any] = {
        "max_message_size": max_message_size,
        "max_fragments": max_fragments,
        "max_buffer_size": max_buffer_size,
    }
    takeover: Callable[[], tuple[gevent.socket.socket, Any]] | None = environ.get(TAKEOVER_KEY)
    gunicorn_socket = environ.get(GUNICORN_SOCKET_KEY)
    if takeover is None and gunicorn_socket is None:
        raise UpgradeRefused("this server cannot upgrade to WebSocket", code=3)
    key = handshake.check_client_handshake(lowercase_headers(environ))
    response = handshake.server_handshake_response(key, extra_headers)
    if takeover is None:
        status, headers = _split_response(response)
        start_response(status, headers)(b"")
        set_nodelay(gunicorn_socket)
        return RawWebSocket(
            gunicorn_socket, _SocketReader(gunicorn_socket), owns_socket=False, **limits
        )
    sock, reader = takeover()
    sock.sendall(response)
    # A plain connection was duplicated off its request and may outlive it; a TLS one
    # cannot be duplicated (its state is in the SSL object) and stays in the request.
    detached = isinstance(reader, PendingReader)
    return RawWebSocket(sock, reader, detached=detached, **limits)
