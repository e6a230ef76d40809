"""A connection's known requests, served without pywsgi's steps (compiled with mypyc).

:class:`~geventsio.serving.handler.GeventsioHandler` recognises a request whose head is
whole in the read buffer and whose field lines, method and version are those of an
earlier request of the connection (a long-polling client's next GET or POST). When the
environ of that earlier request is known too, the request is served here: the environ is
that one's with this request's target and body, the application gets a
:class:`LeanStart` as ``start_response``, and its one-piece answer with a checked head
leaves with its ``Date`` in one ``send()``. Anything else goes back to the handler, which
goes on pywsgi's way from where the request stands (``_serve_known_usual`` before the
application ran, ``_serve_usual`` after).

The handler is reached as ``Any`` (pywsgi's handler is a Python object): this module
reads few of its attributes and sets none but the ones pywsgi's steps would have set.
"""

from __future__ import annotations

from typing import Any, Final

from gevent import pywsgi

from geventsio.engine import gevent_private
from geventsio.engine.http import http_date


class _NotKnown:
    """The type of :data:`NOT_KNOWN`."""


#: :func:`serve_buffered` served nothing: the handler reads the request pywsgi's way
#: (with ``handler._pending_head`` set to what was found of its head).
NOT_KNOWN = _NotKnown()

#: The read buffer of each HTTP connection, in bytes (request heads are far smaller).
READ_BUFFER_SIZE: Final = 1024

#: How much :meth:`PlainInput._discard` reads at a time.
_DISCARD_CHUNK: Final = 16384

_MAX_REQUEST_LINE: Final[int] = pywsgi.MAX_REQUEST_LINE
_JOINED_BODY_MAX: Final = gevent_private.JOINED_BODY_MAX


def buffered_head(rfile: Any) -> tuple[str, int] | None:
    """The next request's head (its lines joined by CRLF, without the empty line that
    ends it), taken from ``rfile`` when it is already wholly in the read buffer with CRLF
    line ends, the common case, so that it is consumed in one go, and how many bytes the
    buffer still holds past it; None (nothing consumed) otherwise, and then the head is
    read line by line."""
    buffered: bytes = rfile.peek(READ_BUFFER_SIZE)
    end = buffered.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buffered[:end]
    if head.count(b"\n") != head.count(b"\r\n"):
        return None  # a bare LF ends a line somewhere: the line reader knows those
    rfile.read(end + 4)
    return head.decode("latin-1"), len(buffered) - end - 4


def serve_buffered(handler: Any) -> Any:
    """Serve the connection's next request if it is a known one whose head is in the
    read buffer: what pywsgi's ``handle_one_request`` returns (True: go on with the
    connection; None: close it), or :data:`NOT_KNOWN`."""
    rfile = handler.rfile
    if rfile.closed:
        return None
    try:
        head = buffered_head(rfile)
    except OSError:
        return None  # as read_requestline: a reset connection is not worth a log line
    if head is None:
        handler._pending_head = None
        return NOT_KNOWN
    known: dict[str, Any] | None = handler._parsed_fields
    if known is not None:
        line, _, fields_text = head[0].partition("\r\n")
        if len(line) < _MAX_REQUEST_LINE:
            words = line.split()
            if len(words) == 3:
                parsed = known_fields(known, fields_text, words[0], words[2])
                if parsed is not None:
                    return _serve_known(handler, head, line, words, parsed)
    handler._pending_head = head
    return NOT_KNOWN


def known_fields(known: dict[str, Any] | None, text: str, command: str, version: str) -> Any:
    """The parsed field lines ``text`` among a connection's ``known`` ones (the handler's
    ``ParsedFields``), if they were parsed for a request with this method and version;
    None otherwise."""
    parsed = known.get(text) if known is not None else None
    if parsed is None or parsed.command != command or parsed.version != version:
        return None
    return parsed


def _serve_known(
    handler: Any, head: tuple[str, int], line: str, words: list[str], parsed: Any
) -> Any:
    """pywsgi's handle_one_request for a known request: lean when its environ can be
    made here, else through the handler's usual steps."""
    template = parsed.environ
    if template is not None and handler.serves_lean:
        silent = handler._silent_log
        if silent is None:  # asked once per connection
            silent = handler._silent_log = gevent_private.is_noop_log(handler.server.log)
        if silent:
            environ = environ_for(handler, template, words[1], parsed.content_length)
            if environ is not None:
                return _serve_lean(handler, LeanStart(handler, line, words, parsed, environ))
    return handler._serve_known_usual(head, line, words, parsed)


def environ_for(
    handler: Any, template: tuple[dict[str, Any], Any], target: str, content_length: Any
) -> dict[str, Any] | None:
    """The environ of a known request: the template's (an earlier request's with the
    same fields), with this request's target and a body of ``content_length`` bytes;
    None when the server's base environ changed since the template was made."""
    environ, base = template
    if handler.server.environ != base:
        return None
    environ = environ.copy()
    path, _, query = target.partition("?")
    environ["PATH_INFO"] = gevent_private.unquote_path(path) if "%" in path else path
    environ["QUERY_STRING"] = query
    environ["wsgi.input"] = PlainInput(handler.rfile, content_length)
    return environ


def _serve_lean(handler: Any, start: LeanStart) -> Any:
    """Call the application for a known request whose environ is made, the handler's
    state left as it is: its one-piece answer with a checked head (a long-polling
    answer) leaves with the Date header in one ``send()``. Anything else (an error, a
    streamed or written answer, a head to complete, a body left unread) goes on pywsgi's
    way from where it stands (the handler's ``_serve_usual``)."""
    application = handler.application = handler.server.application
    try:
        result = application(start.environ, start)
    except BaseException as error:  # as handle_one_response: pywsgi's handling reports it
        return handler._serve_usual(start, None, error)
    checked = start.checked
    words = start.words
    parsed = start.parsed
    if (
        start.materialized
        or checked is None
        or not checked.sends_whole
        or checked.connection is not None
        or type(result) is not list
        or len(result) != 1
        or type(result[0]) is not bytes
        or len(result[0]) > _JOINED_BODY_MAX
        or words[0] == "HEAD"
        or words[2] != "HTTP/1.1"
        or parsed.close_connection
        or start.body.position < (start.body.content_length or 0)
    ):
        return handler._serve_usual(start, result, None)
    encoded = checked.encoded_start
    if encoded is None:
        encoded = checked.start_bytes()
    body: bytes = result[0]
    try:
        _send(handler, b"".join((encoded, b"Date: ", http_date(), b"\r\n\r\n", body)))
    except OSError as error:
        return handler._serve_usual(start, [], error)
    return None if handler.rfile.closed else True


def _send(handler: Any, data: bytes) -> None:
    """Send ``data`` with one ``send()`` on the kernel socket when it takes it all (a
    response nearly always fits the socket buffer); the rest, or all of it on a socket
    with no kernel socket to use (TLS), through the handler's ``_sendall``."""
    raw = handler._raw
    if raw is not None:
        try:
            sent = raw.send(data)
        except OSError:
            sent = 0  # the handler's _sendall meets the error again and reports it
        if sent == len(data):
            return
        if sent:
            handler._sendall(memoryview(data)[sent:])
            return
    handler._sendall(data)


class LeanStart:
    """A known request being served lean (its line, the line's words, its parsed fields
    and its environ) and its ``start_response``: the status and headers are checked at
    the call (pywsgi's errors, raised to the application) and kept for after the
    application returns; ``write`` first gives the handler the state pywsgi's steps would
    have given it, then writes the usual way."""

    def __init__(
        self, handler: Any, line: str, words: list[str], parsed: Any, environ: dict[str, Any]
    ) -> None:
        self.handler = handler
        self.line = line
        self.words = words
        self.parsed = parsed
        self.environ = environ
        #: The request's body as the environ had it (an application may replace the
        #: environ's ``wsgi.input``: what is left of the body is read from this one).
        self.body: PlainInput = environ["wsgi.input"]
        self.checked: Any = None
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.materialized = False

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        handler = self.handler
        if self.materialized:
            return handler.start_response(status, headers, exc_info)
        # Nothing was sent yet, so a call with exc_info replaces the start (PEP 3333).
        # The connection's last few checked starts first (see checked_start).
        checked: Any = None
        started: dict[Any, Any] | None = handler._started
        if started is not None:
            try:
                checked = started.get((status, *headers))
            except TypeError:  # not hashable (a list for a header): checked_start says
                checked = None
        if checked is None:
            checked = handler.checked_start(status, headers)
        if checked.length_error is not None:
            handler.start_response(status, headers)  # pywsgi's error, its state
        self.checked = checked
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333's ``write``: the handler takes the request's state, then writes."""
        handler = self.handler
        if not self.materialized:
            handler._start_writing(self)
            self.materialized = True
        handler.write(data)


class PlainInput:
    """The ``wsgi.input`` of a request whose body is ``content_length`` bytes (None: it
    has none), neither chunked nor waiting for ``100 Continue``: what pywsgi's ``Input``
    does for such a body (the same reads, short-body error and discard), as a native
    class when compiled (pywsgi's costs a long-polling request ~80 bytecodes)."""

    def __init__(self, rfile: Any, content_length: int | None) -> None:
        self.rfile = rfile
        self.content_length = content_length
        #: How many bytes of the body were read.
        self.position = 0

    def read(self, length: int | None = None) -> bytes:
        """At most ``length`` bytes of the body (all that is left: None or negative)."""
        return self._read(length, False)

    def readline(self, size: int | None = None) -> bytes:
        """The body's next line, at most ``size`` bytes of it."""
        return self._read(size, True)

    def readlines(self, hint: Any = None) -> list[bytes]:
        """The body's remaining lines (``hint`` is ignored, as pywsgi does)."""
        return list(self)

    def __iter__(self) -> PlainInput:
        return self

    def __next__(self) -> bytes:
        line = self._read(None, True)
        if not line:
            raise StopIteration
        return line

    def _discard(self) -> None:
        """Read what the application left of the body (pywsgi calls this after the
        response, so that the connection's next request starts where it should)."""
        while self.position < (self.content_length or 0):
            if not self._read(_DISCARD_CHUNK, False):
                return

    def _read(self, length: int | None, line: bool) -> bytes:
        content_length = self.content_length
        if content_length is None:
            return b""
        left = content_length - self.position
        if length is None or length < 0 or length > left:
            length = left
        if not length:
            return b""
        rfile = self.rfile
        try:
            data: bytes = rfile.readline(length) if line else rfile.read(length)
        except OverflowError:  # a length past the C int (a huge Content-Length)
            if not line:
                raise
            data = b""
            while len(data) < length and not data.endswith(b"\n"):
                data += rfile.readline(_MAX_REQUEST_LINE)
        self.position += len(data)
        if len(data) < length and (not line or not data.endswith(b"\n")):
            raise OSError(
                f"unexpected end of file while reading request at position {self.position}"
            )
        return data
