"""The details of the request that opened a connection, as a socket sees them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl


class Handshake:
    """What the client sent when it connected (Node's ``socket.handshake``).

    Built for every socket, read by few: each part is worked out from the environ when
    first read, so an idle socket holds no copy of its request's headers.

    :ivar headers: request headers, lower-case names.
    :ivar query: query parameters of the Engine.IO handshake (first value of each).
    :ivar auth: the auth payload of this namespace's CONNECT packet.
    :ivar address: the client's IP address.
    :ivar time: when the namespace connection was made, ISO 8601 (UTC).
    :ivar issued: the same moment in milliseconds since the epoch.
    :ivar url: the path and query of the handshake request.
    :ivar secure: whether the request came over TLS.
    :ivar xdomain: whether the request was cross-origin (it had an Origin header).
    :ivar environ: the handshake request's WSGI environ (its plain values at least).
    """

    __slots__ = ("_headers", "_query", "auth", "environ", "issued")

    def __init__(self, environ: Mapping[str, Any], auth: Any, issued: float) -> None:
        self.environ = environ
        self.auth = auth
        self.issued = issued
        self._headers: dict[str, str] | None = None
        self._query: dict[str, str] | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any], auth: Any) -> Handshake:
        """Build the handshake record of a socket from its connection's environ."""
        return cls(environ, auth if auth is not None else {}, time.time() * 1000)

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            self._headers = {
                key[5:].replace("_", "-").lower(): str(value)
                for key, value in self.environ.items()
                if key.startswith("HTTP_")
            }
        return self._headers

    @property
    def query(self) -> Mapping[str, str]:
        if self._query is None:
            query: dict[str, str] = {}
            for key, value in parse_qsl(
                self._query_string, keep_blank_values=True, max_num_fields=64
            ):
                query.setdefault(key, value)
            self._query = query
        return self._query

    @property
    def _query_string(self) -> str:
        return str(self.environ.get("QUERY_STRING", ""))

    @property
    def address(self) -> str:
        return str(self.environ.get("REMOTE_ADDR", ""))

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.issued / 1000, UTC).isoformat()

    @property
    def url(self) -> str:
        path = str(self.environ.get("PATH_INFO", ""))
        query_string = self._query_string
        return f"{path}?{query_string}" if query_string else path

    @property
    def secure(self) -> bool:
        return self.environ.get("wsgi.url_scheme") == "https"

    @property
    def xdomain(self) -> bool:
        return "origin" in self.headers
