"""The details of the request that opened a connection, as a socket sees them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Handshake:
    """What the client sent when it connected (Node's ``socket.handshake``).

    :param headers: request headers, lower-case names.
    :param query: query parameters of the Engine.IO handshake (first value of each).
    :param auth: the auth payload of this namespace's CONNECT packet.
    :param address: the client's IP address.
    :param time: when the namespace connection was made, ISO 8601 (UTC).
    :param issued: the same moment in milliseconds since the epoch.
    :param url: the path and query of the handshake request.
    :param secure: whether the request came over TLS.
    :param xdomain: whether the request was cross-origin (it had an Origin header).
    :param environ: the plain values of the handshake request's WSGI environ.
    """

    headers: Mapping[str, str]
    query: Mapping[str, str]
    auth: Any
    address: str
    time: str
    issued: float
    url: str
    secure: bool
    xdomain: bool
    environ: Mapping[str, Any]

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any], auth: Any) -> Handshake:
        """Build the handshake record of a socket from its connection's environ."""
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        query_string = str(environ.get("QUERY_STRING", ""))
        query: dict[str, str] = {}
        for key, value in parse_qsl(query_string, keep_blank_values=True, max_num_fields=64):
            query.setdefault(key, value)
        now = time.time()
        path = str(environ.get("PATH_INFO", ""))
        return cls(
            headers=headers,
            query=query,
            auth=auth if auth is not None else {},
            address=str(environ.get("REMOTE_ADDR", "")),
            time=datetime.fromtimestamp(now, UTC).isoformat(),
            issued=now * 1000,
            url=f"{path}?{query_string}" if query_string else path,
            secure=environ.get("wsgi.url_scheme") == "https",
            xdomain="origin" in headers,
            environ=environ,
        )
