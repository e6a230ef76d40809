"""Sans-IO RFC 6455 opening handshake: the checks and the bytes of both sides.

The server checks a client's upgrade request (:func:`check_client_handshake`) and
answers with :func:`server_handshake_response`; the Python client builds its request
with :func:`client_handshake_request` and checks the answer with
:func:`check_server_response`. No sockets: header mappings in, bytes out.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence

from geventsio.exceptions import LocalProtocolError, RemoteProtocolError

__all__ = [
    "SUPPORTED_VERSION",
    "accept_key",
    "check_client_handshake",
    "check_server_response",
    "client_handshake_request",
    "new_client_key",
    "server_handshake_response",
]

#: The only ``Sec-WebSocket-Version`` supported; send it with a 426 answer.
SUPPORTED_VERSION = "13"
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_FORBIDDEN_IN_HEADERS = frozenset("\r\n\0")


def accept_key(sec_websocket_key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value answering ``sec_websocket_key``."""
    digest = hashlib.sha1((sec_websocket_key + _GUID).encode("latin-1"), usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode("ascii")


def new_client_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64 encoded."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def _has_token(value: str, token: str) -> bool:
    """Whether the comma-separated ``value`` has ``token`` (lower-case), in any case."""
    value = value.lower()
    return value == token or token in {item.strip() for item in value.split(",")}


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:60] + "...")


def _check_upgrade_headers(headers: Mapping[str, str]) -> None:
    upgrade = headers.get("upgrade", "")
    if not _has_token(upgrade, "websocket"):
        raise RemoteProtocolError(f"expected 'Upgrade: websocket', got {_shown(upgrade)}")
    connection = headers.get("connection", "")
    if not _has_token(connection, "upgrade"):
        raise RemoteProtocolError(f"'Connection' lacks the 'upgrade' token: {_shown(connection)}")


def check_client_handshake(headers: Mapping[str, str]) -> str:
    """Check the headers of a client's opening handshake (RFC 6455, 4.2.1).

    The method (GET) and HTTP version are the caller's to check.

    :param headers: the request headers, looked up by lower-case name: pass a mapping
        whose keys are lower-cased, or a case-insensitive one (e.g. Werkzeug's
        ``Headers``).
    :returns: the ``Sec-WebSocket-Key``, for :func:`server_handshake_response`.
    :raises RemoteProtocolError: with ``status`` 400 for a malformed handshake, 426 for
        an unsupported ``Sec-WebSocket-Version`` (answer with the header
        ``Sec-WebSocket-Version: 13``).
    """
    _check_upgrade_headers(headers)
    version = headers.get("sec-websocket-version", "").strip()
    if not version:
        raise RemoteProtocolError("missing Sec-WebSocket-Version header")
    if version != SUPPORTED_VERSION:
        message = f"Sec-WebSocket-Version {_shown(version)} unsupported, only 13 is"
        raise RemoteProtocolError(message, status=426)
    key = headers.get("sec-websocket-key", "").strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII str
        raw = b""
    if len(raw) != 16:
        raise RemoteProtocolError(f"Sec-WebSocket-Key is not 16 bytes in base64: {_shown(key)}")
    return key


def _header_lines(headers: Sequence[tuple[str, str]]) -> list[str]:
    lines = []
    for name, value in headers:
        if not name or ":" in name or any(ch.isspace() for ch in name):
            raise LocalProtocolError(f"invalid header name {name!r}")
        if _FORBIDDEN_IN_HEADERS.intersection(value):
            raise LocalProtocolError(f"invalid character in the value of header {name!r}")
        lines.append(f"{name}: {value}")
    return lines


def _http_head(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def server_handshake_response(key: str, extra_headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """The complete ``101 Switching Protocols`` response, headers and blank line.

    :param key: the key returned by :func:`check_client_handshake`.
    :param extra_headers: more ``(name, value)`` headers (e.g. ``Set-Cookie``).
    :raises LocalProtocolError: if an extra header would break the response.
    """
    return _http_head(
        [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_key(key)}",
            *_header_lines(extra_headers),
        ]
    )


def client_handshake_request(
    host: str, resource: str, key: str, extra_headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The complete opening-handshake ``GET`` request of a client.

    :param host: the ``Host`` header, e.g. ``"example.com:8080"``.
    :param resource: the path and query, ASCII (percent-encoded), starting with ``/``.
    :param key: a key from :func:`new_client_key`; keep it for
        :func:`check_server_response`.
    :param extra_headers: more ``(name, value)`` headers (``Origin``, ``Cookie``...).
        Offer no subprotocol (:func:`check_server_response` refuses one), and an
        extension only if you check the answer to it.
    :raises LocalProtocolError: for a malformed resource or header.
    """
    if not resource.startswith("/") or not resource.isascii() or " " in resource:
        raise LocalProtocolError(f"resource must be an ASCII path starting with '/': {resource!r}")
    headers = [("Host", host), ("Sec-WebSocket-Key", key), *extra_headers]
    return _http_head(
        [
            f"GET {resource} HTTP/1.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Version: {SUPPORTED_VERSION}",
            *_header_lines(headers),
        ]
    )


def check_server_response(
    status: int, headers: Mapping[str, str], key: str, *, extension_offered: bool = False
) -> None:
    """Check a server's answer to :func:`client_handshake_request` (RFC 6455, 4.1).

    :param status: the response's status code.
    :param headers: the response headers, looked up by lower-case name (as in
        :func:`check_client_handshake`).
    :param key: the key sent in the request.
    :param extension_offered: the request offered an extension, so the answer may name
        one (the caller checks it); else an answer naming one is refused.
    :raises RemoteProtocolError: if the server refused or answered wrongly.
    """
    if status != 101:
        raise RemoteProtocolError(f"expected status 101 Switching Protocols, got {status}")
    _check_upgrade_headers(headers)
    accept = headers.get("sec-websocket-accept", "").strip()
    if accept != accept_key(key):
        raise RemoteProtocolError(f"wrong Sec-WebSocket-Accept {_shown(accept)}")
    names = ("sec-websocket-protocol",) if extension_offered else ()
    for name in names or ("sec-websocket-extensions", "sec-websocket-protocol"):
        if headers.get(name, "").strip():
            raise RemoteProtocolError(f"server chose {name} {_shown(headers[name])}, none offered")
