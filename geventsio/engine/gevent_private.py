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

import io
import logging
import socket as stdlib_socket
from typing import Any
from urllib.parse import unquote_to_bytes

import gevent
import gevent.socket
from gevent import pywsgi

from geventsio.engine import http as engine_http

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
#: Whether a gevent socket's count of open ``makefile()`` files may be raised directly.
SOCKET_HOLD = _has(_GeventSocket, "_io_refs", "_decref_socketios")
#: Whether pywsgi's handler internals may be overridden and called.
PYWSGI_FAST_PATH = _has(
    pywsgi.WSGIHandler,
    "_check_http_version",
    "_sendall",
    "_write_with_headers",
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


class _WaitFirstSocketIO(stdlib_socket.SocketIO):
    """A socket's raw reader that, once it has drained the kernel's buffer, waits for
    the socket to be readable before its next ``recv``: on a kept-alive connection the
    next request is nearly never there yet, and a ``recv`` that fails first costs an
    ``OSError`` raised and caught (~9,000 instructions) before gevent waits anyway.
    Readiness is the kernel's, so waiting first never waits for nothing (plain sockets
    only: a TLS socket may hold decrypted bytes the kernel does not see)."""

    #: Whether the last recv left the kernel's buffer empty. Not at first: a new
    #: connection's first request has usually arrived by the time it is read (waiting
    #: first then costs a round through the hub: ~9,000 instructions per WebSocket connect).
    _drained = False
    _timeout_occurred: bool  # SocketIO's

    def readinto(self, buffer: Any) -> int | None:
        sock: Any = self._sock  # type: ignore[attr-defined]
        count: int | None
        if self._drained and sock.timeout != 0.0 and not self.closed and not self._timeout_occurred:
            try:
                sock._wait(sock._read_event)
            except TimeoutError:
                self._timeout_occurred = True  # as SocketIO does for a recv's timeout
                raise
            try:  # readable: the kernel socket's recv, without two Python layers
                count = sock._sock.recv_into(buffer)
            except BlockingIOError:  # woken for nothing: the usual way, which waits
                count = super().readinto(buffer)
        else:
            count = super().readinto(buffer)
        self._drained = count is not None and count < len(buffer)
        return count


def socket_reader(sock: Any, buffer_size: int) -> Any:
    """A buffered reader of ``sock``, as ``sock.makefile("rb", buffer_size)`` makes it
    (for a plain gevent socket, over a raw reader that waits before it reads once the
    kernel's buffer was drained: see :class:`_WaitFirstSocketIO`)."""
    if SOCKET_FAST_PATH and type(sock) is _GeventSocket and hasattr(sock, "_io_refs"):
        raw = _WaitFirstSocketIO(sock, "rb")
        sock._io_refs += 1  # as makefile(): the socket closes once its reader did too
        return io.BufferedReader(raw, buffer_size)
    return sock.makefile("rb", buffer_size)


def hold_open(sock: Any) -> bool:
    """Make ``sock.close()`` leave the connection open until :func:`release_hold`, as an
    open ``makefile()`` file does (the socket counts them, without a file here); False
    when that cannot be done (then duplicate the socket instead)."""
    if SOCKET_HOLD and type(sock) is _GeventSocket:
        sock._io_refs += 1
        return True
    return False


def release_hold(sock: Any) -> None:
    """Undo :func:`hold_open`: the connection closes now if ``close()`` was called."""
    sock._decref_socketios()


def socket_of_reader(rfile: Any) -> Any:
    """The socket under a buffered reader made by ``socket.makefile()`` (what pywsgi
    passes as ``wsgi.input`` for an upgrade request), or None."""
    raw = getattr(rfile, "raw", None)
    sock = getattr(raw, "_sock", None)  # socket.SocketIO keeps it there (CPython, gevent)
    # A gevent socket is no subclass of the standard library's unless patched in.
    return sock if isinstance(sock, stdlib_socket.socket | _GeventSocket) else None


class _ReadableWake:
    """What a socket's own read watcher calls when the socket is readable: ``set`` the
    event. gevent, closing a socket whose watcher is started, throws into the callback's
    ``__self__`` (a waiting greenlet, for its own waits): here that sets the event too,
    so the wait ends and its caller finds the socket closed."""

    __slots__ = ("_event",)

    def __init__(self, event: Any) -> None:
        self._event = event

    def set(self) -> None:
        self._event.set()

    def throw(self, *error: Any) -> None:
        self._event.set()


def watch_readable(sock: Any, event: Any) -> Any:
    """Set ``event`` when the gevent socket ``sock`` is readable (or closed), with the
    socket's own read watcher when nothing waits on it: a new watcher costs two system
    calls each time (libev registers the descriptor again). The watcher, to ``stop()``
    before anything reads the socket; None when it cannot be used (then make one)."""
    if SOCKET_FAST_PATH and type(sock) is _GeventSocket:
        watcher = sock._read_event
        if watcher is not None and watcher.callback is None:
            watcher.start(_ReadableWake(event).set)
            return watcher
    return None


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
    # (rfile, content_length, socket, chunked_input): positional, cheaper than keywords
    socket = handler.socket if expect_continue else None
    return pywsgi.Input(handler.rfile, handler.content_length, socket, chunked)


def mark_switched_protocols(handler: Any) -> None:
    """Record, for pywsgi's access log, that the connection left with ``101``."""
    handler.status = b"101"
    if PYWSGI_FAST_PATH:
        handler._orig_status = "101 Switching Protocols"


#: The largest response body sent in the same ``send()`` as its head (a copy below this
#: costs less than a second system call and a second TCP segment).
JOINED_BODY_MAX = 64 * 1024


#: How many checked responses a connection keeps (see PywsgiFastPaths.start_response).
_STARTED_KEPT = 8


class _CheckedStart:
    """A response's status and headers, checked and encoded as pywsgi's start_response
    does (its errors raised from the constructor), with what start_response records of
    them. ``reusable`` when the same status and headers may skip the checks next time:
    plain ``str`` in plain tuples (an equal one then holds the very same text)."""

    __slots__ = (
        "code",
        "connection",
        "date",
        "encoded_start",
        "length",
        "length_error",
        "response_headers",
        "reusable",
        "sends_whole",
        "status",
        "status_bytes",
    )

    def __init__(self, status: str, headers: list[tuple[str, str]]) -> None:
        response_headers: list[tuple[bytes, bytes]] = []
        connection = date = length = None
        header: Any = None
        value: Any = None
        reusable = type(status) is str and type(headers) is list
        try:
            for item in headers:
                header, value = item
                if not isinstance(header, str):
                    raise UnicodeError("The header must be a native string", header, value)
                if not isinstance(value, str):
                    raise UnicodeError("The value must be a native string", header, value)
                if "\r" in header or "\n" in header:
                    raise ValueError("carriage return or newline in header name", header)
                if "\r" in value or "\n" in value:
                    raise ValueError("carriage return or newline in header value", value)
                response_headers.append((header.encode("latin-1"), value.encode("latin-1")))
                if type(item) is not tuple or type(header) is not str or type(value) is not str:
                    reusable = False
                name = header.lower()
                if name == "connection":
                    connection = value
                elif name == "date":
                    date = value
                elif name == "content-length":
                    length = value
        except UnicodeEncodeError:
            raise UnicodeError("Non-latin1 header", repr(header), repr(value)) from None
        if not isinstance(status, str):
            raise UnicodeError("The status string must be a native string")
        if "\r" in status or "\n" in status:
            raise ValueError("carriage return or newline in status", status)
        self.code = int(status.split(" ", 1)[0])
        self.status_bytes = status.encode("latin-1")
        self.status = status
        self.response_headers = tuple(response_headers)
        self.connection: str | None = connection
        self.date: str | None = date
        self.length: str | None = length
        self.reusable = reusable
        #: The status line and these header lines, encoded (made on first use).
        self.encoded_start: bytes | None = None
        #: A body may follow this head, which gives its length and no date: write_whole
        #: may send it.
        self.sends_whole = self.code not in (101, 204, 304) and length is not None and date is None
        #: pywsgi's refusal of this head, raised by start_response after it recorded it
        #: (a 204 or 304 with a non-zero length), or None.
        self.length_error: str | None = None
        if self.code in (204, 304) and length is not None and length != "0":
            self.length_error = (
                f"Invalid Content-Length for {self.code} response: {length!r} "
                "(must be absent or zero)"
            )

    def whole(self, date: bytes, body: bytes) -> bytes:
        """The response as it goes on the wire: this head, the ``Date`` header, ``body``
        (for a head that :attr:`sends_whole`)."""
        return b"".join((self.start_bytes(), b"Date: ", date, b"\r\n\r\n", body))

    def start_bytes(self) -> bytes:
        """The response's status line and header lines as they go on the wire."""
        encoded = self.encoded_start
        if encoded is None:
            head = [b"HTTP/1.1 ", self.status_bytes, b"\r\n"]
            for header, value in self.response_headers:
                head += (header, b": ", value, b"\r\n")
            encoded = self.encoded_start = b"".join(head)
        return encoded


class PywsgiFastPaths:
    """Overrides of pywsgi handler internals, mixed into geventsio's handler only when
    :data:`PYWSGI_FAST_PATH` holds (see :mod:`geventsio.serving.handler` for what each
    one saves)."""

    request_version: str
    close_connection: bool
    code: int
    _orig_status: str
    provided_content_length: str | None
    ApplicationError: type[Exception]
    write: Any
    server: Any
    response_length: int
    response_headers: list[tuple[bytes, bytes]]
    provided_date: Any
    response_use_chunked: bool
    connection_upgraded: bool
    headers_sent: bool
    status: bytes
    _raw: stdlib_socket.socket | None

    #: The last few responses started on this connection whose heads passed the checks,
    #: by status and headers (see :class:`_CheckedStart`): a long-polling client's POSTs
    #: and GETs may share one connection.
    _started: dict[tuple[Any, ...], _CheckedStart] | None = None
    #: The checked form of the current response's start (None: not started here).
    _checked: _CheckedStart | None = None

    def checked_start(self, status: str, headers: list[tuple[str, str]]) -> _CheckedStart:
        """``status`` and ``headers`` checked as pywsgi's start_response checks them (its
        errors raised), and encoded: taken from the connection's last few responses when
        one had the same."""
        checked = None
        started = self._started
        try:
            key = (status, *headers)
            if started is not None:
                checked = started.get(key)
        except TypeError:  # not hashable (a list for a header): not a plain response
            key = ()
        if checked is None:
            checked = _CheckedStart(status, headers)
            if checked.reusable and key:
                if started is None:
                    started = self._started = {}
                elif len(started) >= _STARTED_KEPT:
                    started.clear()
                started[key] = checked
        return checked

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        # pywsgi's start_response (the same checks, errors and state), in one pass over
        # the headers instead of two; and none at all for a status and headers equal to
        # those of one of the connection's last few responses (a long-polling client's
        # "ok", its answers of one size), which passed them then.
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        checked = self._checked = self.checked_start(status, headers)
        self.status = checked.status_bytes
        self._orig_status = status
        response_headers = self.response_headers = list(checked.response_headers)
        self.code = checked.code
        self.provided_date = checked.date
        self.provided_content_length = checked.length
        connection = checked.connection
        if self.request_version == "HTTP/1.0" and connection is None:
            conntype = b"close" if self.close_connection else b"keep-alive"
            response_headers.append((b"Connection", conntype))
        elif connection == "close":
            self.close_connection = True
        if checked.length_error is not None:
            raise self.ApplicationError(checked.length_error.encode("latin-1"))
        return self.write

    def finalize_headers(self) -> None:
        if self.provided_date is None:  # the Date header, formatted once per second
            date = engine_http.http_date()
            self.response_headers.append((b"Date", date))
            self.provided_date = date
        code = self.code
        if self.provided_content_length is None and code != 304 and code != 204:
            super().finalize_headers()  # type: ignore[misc]  # a length or chunks
        else:  # the rest of pywsgi's finalize_headers, with nothing to add
            self.connection_upgraded = code == 101

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

    def write_whole(self, body: bytes) -> bool:
        """Send the response's head and ``body``, an application's whole answer, in one
        ``send()``: what ``process_result`` does for a one-piece result (a ``write``, the
        head with the ``Date`` header that ``finalize_headers`` adds, one system call),
        without its calls, when nothing but ``Date`` is added to the head that
        start_response checked. False, with nothing done, otherwise."""
        checked = self._checked
        if (
            checked is None
            or not checked.sends_whole
            or self.headers_sent
            or self.status is not checked.status_bytes  # this response's start
            or len(self.response_headers) != len(checked.response_headers)
            or len(body) > JOINED_BODY_MAX
        ):
            return False
        self.headers_sent = True
        self.finalize_headers()  # adds the Date header alone, as sends_whole says
        date = self.provided_date
        self._sendall(checked.whole(date, body))
        return True

    def _check_http_version(self) -> bool:
        version = self.request_version
        if version == "HTTP/1.1" or version == "HTTP/1.0":
            return True
        return bool(super()._check_http_version())  # type: ignore[misc]

    def log_request(self) -> None:
        log = self.server.log
        if type(log) is not pywsgi._NoopLog and not is_noop_log(log):  # no call for no log
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

    def write_whole(self, body: bytes) -> bool:
        """Never: pywsgi's ``process_result`` writes every response."""
        return False


#: What geventsio's handler mixes in: the overrides, or nothing.
HANDLER_FAST_PATHS: type = PywsgiFastPaths if PYWSGI_FAST_PATH else _NoFastPaths
