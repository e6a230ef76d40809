"""The exceptions and disconnect reasons of the client.

Connection failures derive from both :class:`~geventsio.GeventsioError` and the builtin
:class:`ConnectionError`, so ``except ConnectionError`` catches them as it catches a
refused socket.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from geventsio.exceptions import GeventsioError, NotConnected


class ClientDisconnectReason(StrEnum):
    """Why a namespace disconnected, with the JavaScript client's strings."""

    #: The server disconnected the namespace (``socket.disconnect()`` on the server).
    IO_SERVER_DISCONNECT = "io server disconnect"
    #: The application called :meth:`Client.disconnect`.
    IO_CLIENT_DISCONNECT = "io client disconnect"
    #: The server sent no ping within ``pingInterval + pingTimeout``.
    PING_TIMEOUT = "ping timeout"
    #: The connection was closed (by the server, or it dropped).
    TRANSPORT_CLOSE = "transport close"
    #: The connection failed (an HTTP error, a broken WebSocket stream).
    TRANSPORT_ERROR = "transport error"
    #: The server sent a packet the Socket.IO protocol does not allow.
    PARSE_ERROR = "parse error"


#: Reasons after which the client does not reconnect: someone meant it.
DELIBERATE_REASONS = frozenset(
    {ClientDisconnectReason.IO_SERVER_DISCONNECT, ClientDisconnectReason.IO_CLIENT_DISCONNECT}
)


class ConnectFailed(GeventsioError, ConnectionError):
    """A connection (or a reconnection attempt) could not be made.

    The underlying error, if any (``ConnectionRefusedError``, ``ssl.SSLError``, an HTTP
    error status...), is the ``__cause__``.

    :param message: what failed, naming the server.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NamespaceRefused(ConnectFailed):
    """The server refused a namespace (a CONNECT_ERROR packet, e.g. from a middleware).

    :param namespace: the namespace refused.
    :param message: the server's ``message``.
    :param data: the server's ``data`` (``None`` when it sent none).
    """

    def __init__(self, namespace: str, message: str, data: Any = None) -> None:
        super().__init__(f"namespace {namespace!r} refused: {message}")
        self.namespace = namespace
        self.server_message = message
        self.data = data


class EmitBufferFull(NotConnected):
    """An emit made while disconnected found the buffer of pending emits full.

    Raised by ``emit()`` instead of dropping silently; see ``max_buffered_emits``.
    """
