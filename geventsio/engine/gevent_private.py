"""Every use of gevent's private API, in one place, each with a public fallback.

geventsio reaches under gevent's public API in a few hot spots: the kernel socket inside
a gevent socket (one ``send()``/``recv()`` instead of gevent's retry loop), the socket's
own read watcher (waiting without creating a watcher per wait), and pywsgi's handler
internals (the methods :class:`~geventsio.serving.handler.GeventsioHandler` overrides or
calls). Nothing else in geventsio names a private gevent attribute.

Each is used only when the gevent running is one these were checked against
(:data:`CHECKED_GEVENT`, from the oldest gevent ``setup.cfg`` allows to the newest
tested; CI runs the engine tests on both ends) *and* the attribute is there. Otherwise
the public fallback runs: slower, never wrong, and :func:`fast_paths_warning` says why.
"""

from __future__ import annotations

import logging
import socket as stdlib_socket
import time
from typing import Any
from urllib.parse import unquote_to_bytes

import gevent
import gevent.socket
from gevent import pywsgi

#: The gevent releases (major, minor) whose private attributes below were checked.
CHECKED_GEVENT = ((23, 9), (26, 99))


def _release(version: str) -> tuple[int, int]:
    """(major, minor) of a version string; (0, 0) when it does not parse.
    (``gevent.version_info`` is not kept up to date by every release: the string is.)"""
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


_VERSION = _release(gevent.__version__)
_CHECKED = CHECKED_GEVENT[0] <= _VERSION <= CHECKED_GEVENT[1]
_GeventSocket: Any = gevent.socket.socket


def _has(obj: Any, *names: str) -> bool:
    return _CHECKED and all(hasattr(obj, name) for name in names)


#: Whether a gevent socket's kernel socket and read watcher may be used directly.
SOCKET_FAST_PATH = _has(_GeventSocket, "_sock", "_wait", "_read_event")
#: Whether pywsgi's handler internals may be overridden and called.
PYWSGI_FAST_PATH = _has(
    pywsgi.WSGIHandler,
    "_check_http_version",
    "_sendall",
    "_write_with_headers",
    "_connection_upgrade_requested",
    "provided_date",
    "response_use_chunked",
) and _has(pywsgi, "_NoopLog", "LoggingLogAdapter", "Input", "unquote_latin1", "format_date_time")


def fast_paths_warning() -> str | None:
    """Why a fast path is off (for a start-up log line), or None when all are on."""
    if SOCKET_FAST_PATH and PYWSGI_FAST_PATH:
        return None
    low, high = CHECKED_GEVENT
    return (
        f"gevent {gevent.__version__}: geventsio's fast paths into gevent's internals are "
        f"off (checked with gevent {low[0]}.{low[1]} to {high[0]}.x), the public API is "
        "used instead (slower). Install a gevent in that range, or report the version."
    )


# -- sockets -------------------------------------------------------------------------------


def kernel_socket(sock: Any) -> stdlib_socket.socket | None:
    """The kernel socket inside a plain (not TLS) gevent socket, to ``send()``/``recv()``
    on without gevent's wrappers; None when it must not be used."""
    if SOCKET_FAST_PATH and type(sock) is _GeventSocket:
        return sock._sock  # type: ignore[no-any-return]
    return None


def wait_readable(sock: Any) -> None:
    """Block the greenlet until ``sock`` is readable (a close from another greenlet ends
    the wait with an error, as gevent's own ``recv`` does)."""
    if SOCKET_FAST_PATH and type(sock) is _GeventSocket:
        sock._wait(sock._read_event)
    else:
        gevent.socket.wait_read(sock.fileno())


def socket_of_reader(rfile: Any) -> Any:
    """The socket under a buffered reader made by ``socket.makefile()`` (what pywsgi
    passes as ``wsgi.input`` for an upgrade request), or None."""
    raw = getattr(rfile, "raw", None)
    sock = getattr(raw, "_sock", None)  # socket.SocketIO keeps it there (CPython, gevent)
    # A gevent socket is no subclass of the standard library's unless patched in.
    return sock if isinstance(sock, stdlib_socket.socket | _GeventSocket) else None


def peer_hung_up(sock: Any) -> bool:
    """Whether the peer closed its side (nothing waits: a peek that never blocks)."""
    raw = kernel_socket(sock) or sock
    try:
        return bool(raw.recv(1, stdlib_socket.MSG_PEEK | stdlib_socket.MSG_DONTWAIT) == b"")
    except BlockingIOError:
        return False
    except OSError:
        return True


# -- pywsgi --------------------------------------------------------------------------------


def is_noop_log(log: Any) -> bool:
    """Whether a pywsgi server's log discards everything (then skip formatting lines).

    pywsgi's no-op log, or its ``LoggingLogAdapter`` over a logger that is not enabled
    for the adapter's level: gevent-websocket's gunicorn worker hands pywsgi gunicorn's
    logger, whose error log drops INFO lines under ``--log-level warning``; pywsgi would
    still format every request line first.
    """
    if not PYWSGI_FAST_PATH:
        return False
    if isinstance(log, pywsgi._NoopLog):
        return True
    if isinstance(log, pywsgi.LoggingLogAdapter):
        return not _logger_enabled(log._logger, log._level)
    return False


def _logger_enabled(logger: Any, level: int) -> bool:
    """Whether ``logger.log(level, ...)`` may write anything (True when unknown)."""
    enabled = getattr(logger, "isEnabledFor", None)
    if enabled is None:
        # gunicorn's Logger has no isEnabledFor: its log() writes to its error_log.
        error_log = getattr(logger, "error_log", None)
        if isinstance(error_log, logging.Logger):
            enabled = error_log.isEnabledFor
    return True if enabled is None else bool(enabled(level))


def unquote_path(path: str) -> str:
    """A request path with %-escapes decoded, as pywsgi makes ``PATH_INFO``."""
    if PYWSGI_FAST_PATH:
        return pywsgi.unquote_latin1(path)  # type: ignore[no-any-return]
    return unquote_to_bytes(path).decode("latin-1")


def request_input(handler: Any, chunked: bool, expect_continue: bool) -> Any:
    """pywsgi's ``wsgi.input`` object for the request ``handler`` is serving."""
    return pywsgi.Input(
        handler.rfile,
        handler.content_length,
        socket=handler.socket if expect_continue else None,
        chunked_input=chunked,
    )


def upgrade_requested(handler: Any) -> bool:
    """Whether the request ``handler`` is serving asks for a connection upgrade."""
    if PYWSGI_FAST_PATH:
        return bool(handler._connection_upgrade_requested())
    headers = handler.headers
    return bool(
        headers.get("Connection", "").lower() == "upgrade"
        or headers.get("Upgrade", "").lower() == "websocket"
    )


def mark_switched_protocols(handler: Any) -> None:
    """Record, for pywsgi's access log, that the connection left with ``101``."""
    handler.status = b"101"
    if PYWSGI_FAST_PATH:
        handler._orig_status = "101 Switching Protocols"


#: The largest response body sent in the same ``send()`` as its head (a copy below this
#: costs less than a second system call and a second TCP segment).
JOINED_BODY_MAX = 64 * 1024


class _HttpDate:
    """The ``Date`` header's value, formatted once per second."""

    second = -1
    value = b""

    @classmethod
    def now(cls) -> bytes:
        now = time.time()
        second = int(now)
        if second != cls.second:
            cls.value = pywsgi.format_date_time(now)
            cls.second = second
        return cls.value


class PywsgiFastPaths:
    """Overrides of pywsgi handler internals, mixed into geventsio's handler only when
    :data:`PYWSGI_FAST_PATH` holds (see :mod:`geventsio.serving.handler` for what each
    one saves)."""

    request_version: str
    server: Any
    response_length: int
    response_headers: list[tuple[bytes, bytes]]
    provided_date: Any
    response_use_chunked: bool
    headers_sent: bool
    status: bytes
    _raw: stdlib_socket.socket | None

    def finalize_headers(self) -> None:
        if self.provided_date is None:  # the Date header, formatted once per second
            date = _HttpDate.now()
            self.response_headers.append((b"Date", date))
            self.provided_date = date
        super().finalize_headers()  # type: ignore[misc]

    def _write_with_headers(self, data: bytes) -> None:
        # pywsgi sends the head, then the body, in two system calls (and two TCP
        # segments, with TCP_NODELAY): one for both when the body is small.
        if len(data) > JOINED_BODY_MAX:
            super()._write_with_headers(data)  # type: ignore[misc]
            return
        self.headers_sent = True
        self.finalize_headers()
        head = [b"HTTP/1.1 ", self.status, b"\r\n"]
        for header, value in self.response_headers:
            head += (header, b": ", value, b"\r\n")
        head.append(b"\r\n")
        if self.response_use_chunked:  # pywsgi's _write frames the chunk
            self._sendall(b"".join(head))
            self._write(data)  # type: ignore[attr-defined]
            return
        head.append(data)
        self._sendall(b"".join(head))

    def _check_http_version(self) -> bool:
        version = self.request_version
        if version == "HTTP/1.1" or version == "HTTP/1.0":
            return True
        return bool(super()._check_http_version())  # type: ignore[misc]

    def log_request(self) -> None:
        if not is_noop_log(self.server.log):
            super().log_request()  # type: ignore[misc]

    def _sendall(self, data: bytes) -> None:
        raw = self._raw
        if raw is not None:
            try:
                sent = raw.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # pywsgi's own _sendall meets the error again and reports it
            if sent == len(data):
                self.response_length += sent
                return
            if sent:
                self.response_length += sent
                data = memoryview(data)[sent:]  # type: ignore[assignment]
        super()._sendall(data)  # type: ignore[misc]


class _NoFastPaths:
    """pywsgi's own behaviour, unchanged."""


#: What geventsio's handler mixes in: the overrides, or nothing.
HANDLER_FAST_PATHS: type = PywsgiFastPaths if PYWSGI_FAST_PATH else _NoFastPaths
