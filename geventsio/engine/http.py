"""Small HTTP helpers for the engine: responses, Node's error bodies, query parsing."""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from enum import IntEnum
from typing import Any
from urllib.parse import unquote_plus

import orjson
from gevent import pywsgi

from geventsio.exceptions import PayloadTooLarge, RemoteProtocolError

#: A query string longer than this is refused before it is parsed.
MAX_QUERY_LENGTH = 8192
#: At most this many query parameters are parsed.
MAX_QUERY_FIELDS = 64


class EngineErrorCode(IntEnum):
    """The error codes of the Node reference's Engine.IO server."""

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5


ERROR_MESSAGES = {
    EngineErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
    EngineErrorCode.UNKNOWN_SID: "Session ID unknown",
    EngineErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    EngineErrorCode.BAD_REQUEST: "Bad request",
    EngineErrorCode.FORBIDDEN: "Forbidden",
    EngineErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}


class HttpResponse:
    """An HTTP response the engine wants written (one is made per request: a plain class,
    native when compiled, is cheaper to make than a dataclass)."""

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "text/plain; charset=UTF-8",
    ) -> None:
        self.status = status
        self.body = body
        self.headers: list[tuple[str, str]] = [] if headers is None else headers
        self.content_type = content_type

    def __repr__(self) -> str:
        return f"HttpResponse({self.status}, {self.body[:40]!r}, {self.headers!r})"

    @property
    def status_line(self) -> str:
        """The WSGI status string."""
        line = _STATUS_LINES.get(self.status)
        return line if line is not None else f"{self.status} Error"


#: The WSGI status string of each status the engine answers with.
_STATUS_LINES = {
    status: f"{status} {reason}"
    for status, reason in (
        (200, "OK"),
        (204, "No Content"),
        (400, "Bad Request"),
        (403, "Forbidden"),
        (405, "Method Not Allowed"),
        (413, "Payload Too Large"),
        (503, "Service Unavailable"),
        (426, "Upgrade Required"),
    )
}


def error_response(code: EngineErrorCode, status: int | None = None) -> HttpResponse:
    """Node's answer to a refused request: ``{"code": N, "message": "..."}``.

    The message is always the Node reference's message for the code; the detail of what
    was wrong goes to the log, never to the client.
    """
    if status is None:
        status = 403 if code is EngineErrorCode.FORBIDDEN else 400
    body = orjson.dumps({"code": int(code), "message": ERROR_MESSAGES[code]})
    return HttpResponse(status, body, content_type="application/json")


def error_from(exc: RemoteProtocolError) -> HttpResponse:
    """The response for a protocol error raised while serving a request."""
    code = EngineErrorCode(exc.code) if exc.code is not None else EngineErrorCode.BAD_REQUEST
    return error_response(code, exc.status)


#: The codings a long-polling answer may be compressed with, preferred first (Node's).
CONTENT_CODINGS = ("gzip", "deflate")
#: zlib's window bits for each coding: a gzip member, or a zlib stream for "deflate".
_WBITS = {"gzip": 31, "deflate": 15}


def preferred_coding(accept_encoding: str) -> str | None:
    """The coding of :data:`CONTENT_CODINGS` the client's ``Accept-Encoding`` prefers:
    the highest ``q`` (``*`` stands for either, ``q=0`` refuses), ties going to gzip;
    None when neither is acceptable (or the header is absent)."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if name:
            weights.setdefault(name, weight)
    best, best_weight = None, 0.0
    for coding in CONTENT_CODINGS:
        weight = weights.get(coding, weights.get("*", 0.0))
        if weight > best_weight:
            best, best_weight = coding, weight
    return best


def compress_response(response: HttpResponse, accept_encoding: str, threshold: int) -> None:
    """Compress ``response``'s body in place, as Node's ``httpCompression`` does for a
    long-polling answer: a body of ``threshold`` bytes or more is sent with the coding
    the client prefers (``Content-Encoding``), and says that it depends on
    ``Accept-Encoding`` (``Vary``); a shorter one, or one the client takes no coding
    for, is left as it is.

    :param accept_encoding: the request's ``Accept-Encoding`` header ("" when absent).
    :param threshold: the smallest body worth compressing, in bytes.
    """
    if len(response.body) < threshold:
        return
    response.headers.append(("Vary", "Accept-Encoding"))
    coding = preferred_coding(accept_encoding)
    if coding is None:
        return
    compressor = zlib.compressobj(wbits=_WBITS[coding])
    response.body = compressor.compress(response.body) + compressor.flush()
    response.headers.append(("Content-Encoding", coding))


def parse_query(environ: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters (first value of each), with hostile input refused.

    The same answer as ``urllib.parse.parse_qsl(..., keep_blank_values=True)``, which
    costs several times more on the short queries of every polling request.

    :raises RemoteProtocolError: the query string is too long or has too many fields.
    """
    query = str(environ.get("QUERY_STRING", ""))
    if len(query) > MAX_QUERY_LENGTH:
        raise RemoteProtocolError("query string too long", code=EngineErrorCode.BAD_REQUEST)
    # A query shorter than the limit cannot hold that many separators: not counted.
    if len(query) >= MAX_QUERY_FIELDS and query.count("&") >= MAX_QUERY_FIELDS:
        raise RemoteProtocolError("too many query parameters", code=EngineErrorCode.BAD_REQUEST)
    params: dict[str, str] = {}
    escaped = "%" in query or "+" in query
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if escaped and ("%" in pair or "+" in pair):
            key, value = unquote_plus(key), unquote_plus(value)
        if key not in params:
            params[key] = value
    return params


def read_body(environ: Mapping[str, Any], limit: int) -> bytes:
    """Read the request body, refusing one over ``limit`` bytes before reading it all.

    :raises PayloadTooLarge: the declared or actual body is over the limit.
    """
    declared = str(environ.get("CONTENT_LENGTH") or "")
    stream = environ["wsgi.input"]
    if declared:
        if not declared.isdigit():
            raise RemoteProtocolError("bad Content-Length", code=EngineErrorCode.BAD_REQUEST)
        length = int(declared)
        if length > limit:
            raise PayloadTooLarge(f"body of {declared} bytes is over max_payload ({limit})")
        body: bytes = stream.read(length)
    else:
        body = stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"body over max_payload ({limit})")
    return body


class _DateCache:
    """The ``Date`` header's value, formatted once per second."""

    def __init__(self) -> None:
        self.second = -1
        self.value = b""


_DATE = _DateCache()


def http_date() -> bytes:
    """The ``Date`` header's value for a response sent now, as pywsgi formats it
    (formatted once per second)."""
    now = time.time()
    second = int(now)
    cache = _DATE
    if second != cache.second:
        cache.value = pywsgi.format_date_time(now)
        cache.second = second
    return cache.value
