"""Forward one Engine.IO polling request to the process that owns its session.

The request goes as plain HTTP/1.1 to the owner's cluster listener, on a connection kept
alive for the next one (:class:`ConnectionPool`); its answer's status, body and content
type come back.
Everything the client sent is passed on (a body over ``max_payload`` is refused here,
before it is read in full) except ``Origin`` (this process already checked
it, and adds its own CORS headers to the answer) and the hop-by-hop headers: nothing
here lets a client pick a session other than the one its sid names.

Any failure -- no owner listening (a dead process), a broken or late answer -- is Node's
code 1, "Session ID unknown", so that the client reconnects; never a hang: connecting
and every read are bounded.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import Any

import gevent.socket

from geventsio.engine.http import EngineErrorCode, HttpResponse, error_response, read_body

logger = logging.getLogger(__name__)

#: Seconds to reach the owner's listener (local: refused at once when it is gone).
CONNECT_TIMEOUT = 2.0
#: The longest status line or header line of an owner's answer.
_MAX_LINE = 8192
#: The most header lines of an owner's answer.
_MAX_HEADERS = 64
_DROPPED = frozenset(
    {
        "HTTP_ORIGIN",
        "HTTP_HOST",
        "HTTP_CONNECTION",
        "HTTP_KEEP_ALIVE",
        "HTTP_UPGRADE",
        "HTTP_TRANSFER_ENCODING",
        "HTTP_CONTENT_LENGTH",
        "HTTP_CONTENT_TYPE",
        "HTTP_TE",
    }
)


#: Where a member listens: an abstract unix socket's name, or a TCP (host, port).
Address = str | tuple[str, int]


def connect(address: Address) -> Any:
    """A gevent socket connected to ``address`` within :data:`CONNECT_TIMEOUT`.

    :raises OSError: nothing listens there (at once, for a unix socket), or too late.
    """
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    sock = gevent.socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    if family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class ForwardError(Exception):
    """The owner's answer was missing or malformed."""


def request_bytes(environ: Mapping[str, Any], body: bytes, *, upgrade: bool = False) -> bytes:
    """The request in ``environ``, with ``body``, as HTTP/1.1 bytes for the owner
    (``upgrade``: a WebSocket handshake, its ``Sec-WebSocket-*`` headers kept)."""
    query = environ.get("QUERY_STRING", "")
    target = environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
    lines = [
        f"{environ.get('REQUEST_METHOD', 'GET')} {target} HTTP/1.1",
        "Host: geventsio-cluster",
        *(
            ("Connection: Upgrade", "Upgrade: websocket")
            if upgrade
            else (f"Content-Length: {len(body)}",)
        ),
    ]
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    for key, value in environ.items():
        if key.startswith("HTTP_") and key not in _DROPPED and isinstance(value, str):
            lines.append(f"{key[5:].replace('_', '-').title()}: {value}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1", "replace") + body


def read_response(reader: Any, max_body: int) -> tuple[HttpResponse, bool]:
    """An HTTP/1.1 answer read from ``reader`` (a binary file), its body bounded, and
    whether the connection may carry another request.

    :raises ForwardError: no answer, or not one we can relay.
    """
    status_line = reader.readline(_MAX_LINE + 1)
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ForwardError(f"no HTTP answer: {status_line[:64]!r}")
    status = int(parts[1])
    keep = parts[0] == b"HTTP/1.1"
    length: int | None = None
    content_type = "text/plain; charset=UTF-8"
    relayed: list[tuple[str, str]] = []
    for _ in range(_MAX_HEADERS):
        line = reader.readline(_MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            break
        if not line.endswith(b"\n"):
            raise ForwardError("the answer's headers are cut or too long")
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "content-type":
            content_type = value.strip()
        elif name == "content-encoding" or (name == "vary" and "accept-encoding" in value.lower()):
            relayed.append((name.title(), value.strip()))  # a compressed polling answer
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
    else:
        raise ForwardError("too many header lines in the answer")
    if length is not None and not 0 <= length <= max_body:
        raise ForwardError(f"an answer of {length} bytes")
    body = reader.read(length if length is not None else max_body + 1)
    if (length is not None and len(body) != length) or len(body) > max_body:
        raise ForwardError("the answer's body is cut or too long")
    response = HttpResponse(status, body, relayed, content_type=content_type)
    return response, keep and length is not None


class _Connection:
    """A kept-alive connection to a member and its buffered reader."""

    __slots__ = ("reader", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class ConnectionPool:
    """Idle connections to other members, reused for the next forwarded request (a new
    unix or TCP connection and its greenlet on the owner's side cost more than the
    request itself).

    :param max_idle: idle connections kept per member at most.
    """

    def __init__(self, max_idle: int = 16) -> None:
        self.max_idle = max_idle
        self._idle: dict[Address, list[_Connection]] = {}

    def take(self, address: Address) -> tuple[_Connection, bool]:
        """An idle connection to ``address`` (and True), else a new one (and False).

        :raises OSError: nothing listens there.
        """
        idle = self._idle.get(address)
        if idle:
            return idle.pop(), True
        return _Connection(connect(address)), False

    def give_back(self, address: Address, connection: _Connection) -> None:
        """Keep ``connection`` for the next request to ``address`` (or close it)."""
        idle = self._idle.setdefault(address, [])
        if len(idle) < self.max_idle:
            idle.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def forward(
    address: Address,
    environ: Mapping[str, Any],
    *,
    max_body: int,
    timeout: float,
    pool: ConnectionPool,
) -> HttpResponse:
    """Forward the request in ``environ`` to the listener at ``address`` (a unix socket
    name, or a TCP address) and return its answer; code 1 when that fails.

    :param max_body: the largest request body passed on (the engine's ``max_payload``);
        answers may be 16 times as large.
    :raises PayloadTooLarge: the body is over ``max_body`` (refused here, as the owner
        would).
    :param timeout: the longest wait for each read of the answer (a long-poll is held by
        the owner up to its ping interval).
    """
    body = read_body(environ, max_body) if environ.get("REQUEST_METHOD") == "POST" else b""
    data = request_bytes(environ, body)
    for _attempt in range(2):
        connection: _Connection | None = None
        reused = False
        try:
            connection, reused = pool.take(address)
            connection.sock.settimeout(timeout)
            connection.sock.sendall(data)
            response, keep = read_response(connection.reader, 16 * max_body + 65536)
        except (OSError, ValueError, ForwardError) as exc:
            if connection is not None:
                connection.close()
            if reused and not isinstance(exc, (ValueError, TimeoutError)):
                # The owner closed that idle connection: once more, on a new one. Not
                # after a timeout: a hung owner would make the client wait twice.
                continue
            logger.info("could not forward a request to %r: %s", address, exc)
            return error_response(EngineErrorCode.UNKNOWN_SID)
        if keep:
            pool.give_back(address, connection)
        else:
            connection.close()
        return response
    return error_response(EngineErrorCode.UNKNOWN_SID)
