"""The exception hierarchy of geventsio.

``LocalProtocolError`` is misuse by application code; ``RemoteProtocolError`` is a
misbehaving peer. Neither shadows a builtin.
"""

from __future__ import annotations

from typing import Any


class GeventsioError(Exception):
    """Base class of every exception raised by geventsio."""


class LocalProtocolError(GeventsioError):
    """Application code used the API in a way the protocol does not allow."""


class NotSerialisable(LocalProtocolError, TypeError):
    """Data given to ``emit``/``send``/an acknowledgement cannot be serialised (it is
    also a :class:`TypeError`, as ``json.dumps`` raises, so code written for
    python-socketio or Flask-SocketIO catches it)."""


class RemoteProtocolError(GeventsioError):
    """The peer sent something the protocol does not allow.

    :param message: what was wrong, for the log.
    :param code: the Engine.IO error code (0-5) when the error happens before a session
        exists, else ``None``.
    :param status: the HTTP status to answer with, when there is an HTTP request to answer.
    :param context: details of a refused request, with the Node reference's keys (the
        engine's ``connection_error`` event carries them).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int = 400,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.context = context or {}


class PayloadTooLarge(RemoteProtocolError):
    """A body, message or frame is larger than the configured limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=3, status=413)


class ConnectionRefused(GeventsioError):
    """Raise from a connect handler or middleware to refuse a namespace connection.

    :param message: sent to the client as ``message`` in the CONNECT_ERROR packet.
    :param data: optional JSON-serialisable detail, sent as ``data``.
    """

    def __init__(
        self, message: str | dict[str, Any] = "Connection refused", data: Any = None
    ) -> None:
        if isinstance(message, dict) and data is None:
            data, message = message, "Connection refused"
        super().__init__(message)
        self.message = str(message)
        self.data = data

    def error_payload(self) -> dict[str, Any]:
        """The CONNECT_ERROR payload the client receives."""
        payload: dict[str, Any] = {"message": self.message}
        if self.data is not None:
            payload["data"] = self.data
        return payload


class AckTimeout(GeventsioError):
    """No acknowledgement arrived within the timeout."""


class NotConnected(GeventsioError):
    """The socket or session is not connected (any more)."""


class BadNamespace(GeventsioError):
    """No namespace matches the requested name."""
