"""A minimal HTTP/1.1 client on gevent sockets, with keep-alive and TLS.

It does what Engine.IO long-polling and the WebSocket opening handshake need and
nothing more: one request at a time per connection, ``Content-Length`` and chunked
bodies, and an idle kept-alive connection checked before reuse (one the server closed
meanwhile is replaced; a request is never sent twice). Sockets are gevent's own, so
the client cooperates with gevent whether or not the application monkey-patched the
standard library.

Errors are the standard ones: ``OSError`` subclasses (``ConnectionRefusedError``,
``ssl.SSLError``, ``TimeoutError``...) for I/O, :class:`PeerClosed` for a connection
closed mid-response, and :class:`~geventsio.RemoteProtocolError` for a malformed
response.
"""

from __future__ import annotations

import socket as _stdlib_socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import gevent
import gevent.select
import gevent.socket
import gevent.ssl

from geventsio.exceptions import RemoteProtocolError

_MAX_HEAD = 64 * 1024
_RECV_SIZE = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


class PeerClosed(ConnectionError):
    """The server closed the connection before the response was complete."""


@dataclass(frozen=True)
class ServerAddress:
    """Where a server is, from the URL the application gave.

    :param secure: whether to speak TLS.
    :param host: the host name or address (an IPv6 address without brackets).
    :param port: the TCP port.
    :param query: query parameters of the URL, sent with every Engine.IO request.
    """

    secure: bool
    host: str
    port: int
    query: tuple[tuple[str, str], ...] = ()

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host_header}"


def parse_url(url: str) -> ServerAddress:
    """Parse an ``http``, ``https``, ``ws`` or ``wss`` URL.

    :raises ValueError: another scheme, no host, a bad port, or a path other than ``/``
        (the Socket.IO path and the namespaces are given separately).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported URL scheme in {url!r}: use http, https, ws or wss")
    if not parts.hostname:
        raise ValueError(f"no host in URL {url!r}")
    if parts.path not in ("", "/"):
        raise ValueError(
            f"unexpected path {parts.path!r} in URL {url!r}: give namespaces with "
            "namespaces= and the Socket.IO path with socketio_path="
        )
    port = parts.port or _DEFAULT_PORTS[scheme]  # .port raises ValueError when invalid
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    return ServerAddress(scheme in ("https", "wss"), parts.hostname, port, query)


def open_socket(
    address: ServerAddress, ssl_context: ssl.SSLContext | None, timeout: float
) -> gevent.socket.socket:
    """A connected TCP socket (wrapped in TLS for a secure address), in blocking mode.

    :param ssl_context: the TLS context; ``None`` for the system's default verification.
    :param timeout: seconds the TCP connection and the TLS handshake may take.
    :raises OSError: the connection or the TLS handshake failed (``ssl.SSLError`` and
        ``ssl.SSLCertVerificationError`` are ``OSError`` subclasses).
    """
    sock = gevent.socket.create_connection((address.host, address.port), timeout=timeout)
    try:
        sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
        if address.secure:
            context = ssl_context or ssl.create_default_context()
            # gevent's SSLSocket accepts any SSLContext, monkey-patched or not.
            sock = gevent.ssl.SSLSocket(sock=sock, server_hostname=address.host, _context=context)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return sock


class ByteStream:
    """Buffered reads from a socket."""

    def __init__(self, sock: gevent.socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def fill(self) -> None:
        """Read what the socket has (waiting for at least one byte) into the buffer.

        :raises PeerClosed: at end of stream.
        """
        data = self.sock.recv(_RECV_SIZE)
        if not data:
            raise PeerClosed("connection closed by the server")
        self.buffer += data

    def read_until(self, delimiter: bytes, limit: int) -> bytes:
        """Everything up to and including ``delimiter``.

        :raises RemoteProtocolError: ``limit`` bytes arrived without the delimiter.
        """
        start = 0
        while (end := self.buffer.find(delimiter, start)) < 0:
            if len(self.buffer) > limit:
                raise RemoteProtocolError(f"no {delimiter!r} within {limit} bytes")
            start = max(0, len(self.buffer) - len(delimiter) + 1)
            self.fill()
        return self.take(end + len(delimiter))

    def read_exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes."""
        while len(self.buffer) < size:
            self.fill()
        return self.take(size)

    def read_to_eof(self, limit: int) -> bytes:
        """Everything until the server closes the connection."""
        try:
            while len(self.buffer) <= limit:
                self.fill()
        except PeerClosed:
            return self.take(len(self.buffer))
        raise RemoteProtocolError(f"response body over {limit} bytes")

    def take(self, size: int) -> bytes:
        """Remove and return the first ``size`` buffered bytes."""
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


@dataclass(frozen=True)
class Response:
    """An HTTP response: status, headers by lower-case name, and body."""

    status: int
    headers: dict[str, str]
    body: bytes = b""


def read_response_head(stream: ByteStream) -> Response:
    """Read a status line and headers (the body is left in the stream).

    :raises RemoteProtocolError: the head is not HTTP/1.x.
    """
    head = stream.read_until(b"\r\n\r\n", _MAX_HEAD).decode("latin-1")
    status_line, *lines = head[:-4].split("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise RemoteProtocolError(f"not an HTTP/1.x response: {status_line[:60]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise RemoteProtocolError(f"malformed header line {line[:60]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if version == "HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
        headers["connection"] = "close"
    return Response(int(code), headers)


def format_request(method: str, target: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """The head of a request.

    :raises ValueError: a header name or value would break the request.
    """
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        if not name or any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n\0"):
            raise ValueError(f"invalid HTTP header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _closed_by_peer(sock: gevent.socket.socket) -> bool:
    """Whether an idle connection is readable, which means the server closed it (as
    urllib3 checks before reusing a connection)."""
    try:
        readable, _, _ = gevent.select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class HTTPConnection:
    """One keep-alive connection to a server, opened on first use, one request at a time.

    :param address: the server.
    :param ssl_context: the TLS context for ``https``, or ``None`` for the default.
    :param max_body: the largest response body accepted, in bytes.
    """

    def __init__(
        self, address: ServerAddress, ssl_context: ssl.SSLContext | None, max_body: int
    ) -> None:
        self.address = address
        self._ssl_context = ssl_context
        self._max_body = max_body
        self._stream: ByteStream | None = None

    def request(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        timeout: float,
    ) -> Response:
        """Send a request and read the whole response.

        :param target: the path and query, percent-encoded.
        :param headers: extra headers (``Host`` and ``Content-Length`` are added).
        :param body: the request body, or ``None`` for none.
        :param timeout: seconds the whole exchange may take, connecting included.
        :raises TimeoutError: no complete response within ``timeout``.
        :raises OSError: the connection failed.
        :raises RemoteProtocolError: the response is malformed or too large.
        """
        all_headers = [("Host", self.address.host_header), *headers]
        if body is not None:
            all_headers.append(("Content-Length", str(len(body))))
        request = format_request(method, target, all_headers) + (body or b"")
        message = f"no complete response from {self.address} within {timeout:g}s"
        with gevent.Timeout(timeout, TimeoutError(message)):
            return self._exchange(request, timeout)

    def _exchange(self, request: bytes, timeout: float) -> Response:
        """Send the formatted ``request`` on the kept-alive connection (or a new one)
        and read the response."""
        stream = self._stream
        if stream is not None and _closed_by_peer(stream.sock):
            self.close()  # the server ended the idle kept-alive connection: open a new one
            stream = None
        if stream is None:
            sock = open_socket(self.address, self._ssl_context, timeout)
            stream = self._stream = ByteStream(sock)
        try:
            stream.sock.sendall(request)
            head = read_response_head(stream)
            response = Response(head.status, head.headers, self._read_body(stream, head))
        except BaseException:
            self.close()
            raise
        if "close" in response.headers.get("connection", "").lower():
            self.close()
        return response

    def _read_body(self, stream: ByteStream, head: Response) -> bytes:
        if "chunked" in head.headers.get("transfer-encoding", "").lower():
            return self._read_chunked(stream)
        length = head.headers.get("content-length")
        if length is None:
            head.headers["connection"] = "close"
            return stream.read_to_eof(self._max_body)
        if not length.isdigit():
            raise RemoteProtocolError(f"bad Content-Length {length[:20]!r}")
        if int(length) > self._max_body:
            raise RemoteProtocolError(f"response body of {length} bytes, over {self._max_body}")
        return stream.read_exact(int(length))

    def _read_chunked(self, stream: ByteStream) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = stream.read_until(b"\r\n", 1024).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise RemoteProtocolError(f"bad chunk size {size_line[:20]!r}") from None
            if size == 0:
                while stream.read_until(b"\r\n", _MAX_HEAD) != b"\r\n":
                    pass  # a trailer field
                return b"".join(parts)
            total += size
            if total > self._max_body:
                raise RemoteProtocolError(f"response body over {self._max_body} bytes")
            parts.append(stream.read_exact(size + 2)[:-2])

    def close(self) -> None:
        """Close the connection (a later request opens a new one)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.sock.close()
