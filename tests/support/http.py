"""A raw HTTP/1.1 client on a real TCP socket: exact bytes out, status/headers/body in.

It sends whatever it is given (byte by byte if asked, or half a request and then a
close), and parses responses itself: Content-Length, chunked, or read-until-close bodies,
keep-alive aware. It is deliberately not a general HTTP library: it is a probe.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import gevent
import orjson

#: Seconds any single network wait of a test client may take.
DEFAULT_TIMEOUT = 10.0

Headers = Iterable[tuple[str, str]]


@dataclass
class HttpResponse:
    """A response as read off the wire."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive)."""
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)

    @property
    def closes_connection(self) -> bool:
        """Whether the response says ``Connection: close``."""
        return any("close" in v.lower() for v in self.header_values("connection"))


def build_request(
    method: str,
    target: str,
    host: str,
    *,
    body: bytes = b"",
    headers: Headers = (),
    chunked: bool = False,
    content_length: int | None = None,
) -> bytes:
    """The exact bytes of an HTTP/1.1 request.

    :param body: the body; sent as one chunk plus the last chunk when ``chunked``.
    :param content_length: the declared length (defaults to ``len(body)`` when there is a
        body and the request is not chunked); lets a test declare a size it never sends.
    """
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        if content_length is None and (body or method in ("POST", "PUT")):
            content_length = len(body)
        if content_length is not None:
            lines.append(f"Content-Length: {content_length}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (``b""`` gives the last chunk)."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class PeerClosed(ConnectionError):
    """The server closed the connection before a complete response arrived."""


class HttpClient:
    """One TCP connection to the server, speaking raw HTTP/1.1.

    :param host: the server's address.
    :param port: the server's port.
    :param timeout: seconds any single read or write may block.
    :param rcvbuf: a small ``SO_RCVBUF`` to set before connecting (slow-reader tests).
    """

    def __init__(
        self, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT, rcvbuf: int | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.eof = False
        self.closed = False

    @property
    def host_header(self) -> str:
        """The ``Host`` header value for this server."""
        return f"{self.host}:{self.port}"

    # -- sending ------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Send ``data`` as it is."""
        self.sock.sendall(data)

    def send_slowly(self, data: bytes, interval: float) -> None:
        """Send ``data`` one byte at a time, ``interval`` seconds apart (slowloris)."""
        for i in range(len(data)):
            self.sock.sendall(data[i : i + 1])
            if i + 1 < len(data):
                gevent.sleep(interval)

    def send_request(
        self,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        headers: Headers = (),
        chunked: bool = False,
        content_length: int | None = None,
    ) -> None:
        """Send one request (see :func:`build_request`)."""
        self.send(
            build_request(
                method,
                target,
                self.host_header,
                body=body,
                headers=headers,
                chunked=chunked,
                content_length=content_length,
            )
        )

    def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        headers: Headers = (),
        chunked: bool = False,
        content_length: int | None = None,
    ) -> HttpResponse:
        """Send one request and read its response."""
        self.send_request(
            method,
            target,
            body=body,
            headers=headers,
            chunked=chunked,
            content_length=content_length,
        )
        return self.read_response(method=method)

    def get(self, target: str, headers: Headers = ()) -> HttpResponse:
        """``GET target``."""
        return self.request("GET", target, headers=headers)

    def post(self, target: str, body: bytes | str, headers: Headers = ()) -> HttpResponse:
        """``POST target`` with ``body`` (text is sent as UTF-8)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        return self.request(
            "POST",
            target,
            body=data,
            headers=[("Content-Type", "text/plain;charset=UTF-8"), *headers],
        )

    # -- receiving ----------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read more bytes into the buffer; False at end of stream."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def _read_line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            if not self._fill():
                raise PeerClosed(f"connection closed mid-line: {bytes(self.buffer)!r}")

    def read_exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes (:class:`PeerClosed` if the stream ends first)."""
        while len(self.buffer) < size:
            if not self._fill():
                raise PeerClosed(f"connection closed after {len(self.buffer)} of {size} bytes")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _read_to_eof(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self._read_line().split(b";")[0], 16)
            if size == 0:
                while self._read_line():  # trailers, then the blank line
                    pass
                return bytes(body)
            body += self.read_exact(size)
            self._read_line()

    def read_head(self) -> HttpResponse:
        """Read a status line and headers (no body)."""
        with gevent.Timeout(self.timeout, TimeoutError("no response head in time")):
            status_line = self._read_line()
            version, _, rest = status_line.decode("latin-1").partition(" ")
            if not version.startswith("HTTP/"):
                raise AssertionError(f"not an HTTP status line: {status_line!r}")
            code, _, reason = rest.partition(" ")
            response = HttpResponse(int(code), reason)
            while line := self._read_line():
                name, _, value = line.decode("latin-1").partition(":")
                response.headers.append((name.strip(), value.strip()))
        return response

    def read_response(self, *, method: str = "GET") -> HttpResponse:
        """Read one complete response (head and body)."""
        response = self.read_head()
        with gevent.Timeout(self.timeout, TimeoutError("no complete response body in time")):
            if method == "HEAD" or response.status in (204, 304) or response.status < 200:
                pass
            elif "chunked" in (response.header("transfer-encoding") or "").lower():
                response.body = self._read_chunked()
            elif response.header("content-length") is not None:
                response.body = self.read_exact(int(response.header("content-length") or 0))
            else:
                response.body = self._read_to_eof()
        return response

    def wait_eof(self, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Wait until the server closes the connection; return whatever came before."""
        with gevent.Timeout(timeout, TimeoutError("the server did not close the connection")):
            return self._read_to_eof()

    def peer_closed(self) -> bool:
        """Whether the server has closed the connection (checked without blocking)."""
        if self.eof:
            return True
        raw = getattr(self.sock, "_sock", self.sock)  # gevent's socket would wait on EAGAIN
        try:
            data = raw.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return True
        self.buffer += data
        return False

    def close(self) -> None:
        """Close the connection (idempotent); mid-request, this is a client vanishing."""
        if not self.closed:
            self.closed = True
            self.sock.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
