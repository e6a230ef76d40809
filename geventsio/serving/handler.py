"""A pywsgi handler that fixes what pywsgi gets wrong for real-time traffic.

* ``TCP_NODELAY`` on every connection: a reply written in two pieces (HTTP headers then
  body, a frame header then payload) otherwise waits ~40 ms for Nagle's algorithm.
* ``Connection: close`` is said in the response whenever the handler is going to close
  the connection (pywsgi closes silently; Node 19+ clients then report "socket hang up").
* The client's socket is exposed as ``geventsio.socket`` (so a long-poll can notice a
  client that gave up), and a WebSocket upgrade request may take the connection over
  through ``geventsio.takeover``: after the application returns, pywsgi writes nothing
  more and closes the connection.
"""

from __future__ import annotations

from typing import Any, cast

from gevent import pywsgi

from geventsio.engine import gevent_private
from geventsio.engine.gevent_private import HANDLER_FAST_PATHS
from geventsio.engine.takeover import SOCKET_KEY, TAKEOVER_KEY, hand_over
from geventsio.engine.tcp import set_nodelay
from geventsio.serving import lean

#: As http.client's limits: the longest header line, the most header lines.
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100


class RequestHeaders:
    """A request's header fields, parsed straight from the stream.

    pywsgi reads headers with ``http.client.parse_headers``, which runs the ``email``
    package's parser: about 15 % of a long-polling request's CPU. This reads the lines
    itself (the same limits) and offers what pywsgi uses of the result: ``status``,
    ``get``/``getheader`` (first field of a name, any case), ``del``, ``typeheader`` and
    ``headers`` (the ``"Name: value\r\n"`` lines, continuation lines included), plus
    :meth:`add_cgi_variables` for the environ.
    """

    __slots__ = ("_fields", "first", "status")

    def __init__(
        self,
        fields: list[tuple[str, str]],
        status: str = "",
        first: dict[str, str] | None = None,
    ) -> None:
        self._fields = fields
        self.status = status
        if first is None:
            first = {}
            for name, value in reversed(fields):
                first[name.lower()] = value
        #: The first value of each name, by lower-case name (what get() answers; read it
        #: directly with a lower-case name to skip a call).
        self.first = first

    @classmethod
    def read(cls, rfile: Any) -> RequestHeaders:
        """Read the fields line by line, up to the empty line that ends them."""
        fields: list[tuple[str, str]] = []
        while True:
            line = rfile.readline(MAX_HEADER_LINE + 1)
            if len(line) > MAX_HEADER_LINE:
                return cls([], "Line too long")
            if line in (b"\r\n", b"\n", b""):
                return cls(fields)
            _add_field(fields, line.decode("latin-1").rstrip("\r\n"))

    @classmethod
    def parse(cls, lines: list[str]) -> RequestHeaders:
        """The fields of a request head already split into lines (without their ends)."""
        fields: list[tuple[str, str]] = []
        if len(lines) <= MAX_HEADERS:
            first: dict[str, str] = {}
            for text in lines:
                name, colon, value = text.partition(":")
                if not colon or text[:1] in (" ", "\t"):
                    break  # folded or malformed: the line-by-line rules below decide
                value = value.lstrip(" \t")
                fields.append((name, value))
                lower = name.lower()
                if lower not in first:
                    first[lower] = value
            else:
                return cls(fields, "", first)
            fields = []
        for text in lines:
            _add_field(fields, text)
        return cls(fields)

    def get(self, name: str, default: Any = None) -> Any:
        return self.first.get(name.lower(), default)

    getheader = get

    def items(self) -> list[tuple[str, str]]:
        """Every field, in order (as ``email.message.Message.items``)."""
        return list(self._fields)

    def __delitem__(self, name: str) -> None:
        # New containers, not changed ones: a connection's next requests with the same
        # head share them (see GeventsioHandler.read_request).
        name = name.lower()
        self._fields = [(k, v) for k, v in self._fields if k.lower() != name]
        self.first = {k: v for k, v in self.first.items() if k != name}

    @property
    def typeheader(self) -> str | None:
        return self.first.get("content-type")

    @property
    def headers(self) -> list[str]:
        return [f"{name}: {value}\r\n" for name, value in self._fields]

    def add_cgi_variables(self, variables: dict[str, Any]) -> None:
        """Add the ``HTTP_*`` environ variables, as pywsgi makes them: names with ``_``
        are dropped (header smuggling), Content-Type and Content-Length are left to their
        own variables, and repeated fields are joined (``"; "`` for cookies, else ``","``)."""
        for name, value in self._fields:
            key = _CGI_NAMES.get(name)
            if key is None:
                key = _cgi_name(name)
            if not key:
                continue
            value = value.strip()
            if key in variables:
                value = variables[key] + ("; " if "COOKIE" in key else ",") + value
            variables[key] = value


#: The environ key of each header name seen (empty: not in the environ), so that each
#: request neither builds the keys again nor keeps copies of them (a WebSocket's
#: handshake environ lives as long as its session). Bounded: names beyond are built.
_CGI_NAMES: dict[str, str] = {}
_CGI_NAMES_MAX = 512


def _cgi_name(name: str) -> str:
    """The environ key of a header name, as pywsgi makes it ("" for the names it leaves
    out: with ``_`` (header smuggling), Content-Type and Content-Length)."""
    key = "HTTP_" + name.replace("-", "_").upper()
    if "_" in name or key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
        key = ""
    if len(_CGI_NAMES) < _CGI_NAMES_MAX:
        _CGI_NAMES[name] = key
    return key


def _add_field(fields: list[tuple[str, str]], text: str) -> None:
    """Add one header line (its end stripped) to ``fields``: a new field, or the
    continuation of the last one (obsolete line folding)."""
    if len(fields) >= MAX_HEADERS:
        raise ValueError(f"got more than {MAX_HEADERS} headers")
    if text[:1] in (" ", "\t") and fields:
        name, value = fields[-1]
        fields[-1] = (name, f"{value}\r\n{text}")
        return
    name, colon, value = text.partition(":")
    if not colon:
        raise ValueError(f"malformed header line {text[:40]!r}")
    fields.append((name, value.lstrip(" \t")))


class ParsedFields:
    """What :class:`GeventsioHandler` made of a request head's field lines (read whole),
    with its method and version: kept for the connection's next request, whose fields are
    usually the very same (a long-polling client's GETs, its POSTs of one size), and then
    not parsed again. The request target (socket.io-client's changes at every request:
    its ``t`` parameter) is not part of it: it is read for each request.

    Everything here is a function of ``text``, ``command`` and ``version`` alone (and of
    the connection, for ``REMOTE_ADDR``/``REMOTE_PORT``).
    """

    __slots__ = (
        "close_connection",
        "command",
        "content_length",
        "environ",
        "fields",
        "first",
        "headers_variables",
        "other_variables",
        "text",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        text: str,
        command: str,
        version: str,
        headers: RequestHeaders,
        content_length: int | None,
        close_connection: bool,
    ) -> None:
        self.text = text
        self.command = command
        self.version = version
        self.fields = headers._fields
        self.first = headers.first
        self.content_length = content_length
        self.close_connection = close_connection
        #: The environ variables the handler sets after the request target's
        #: (CONTENT_TYPE ... REMOTE_PORT) and the HTTP_* ones, once a get_environ() made
        #: them; whether the request asks to upgrade.
        self.other_variables: dict[str, str] | None = None
        self.headers_variables: dict[str, str] = {}
        self.upgrade = False
        #: The environ of the last such request and the server's base environ it was
        #: made from, when it asked for no upgrade, ``100-continue`` or chunked body
        #: (see GeventsioHandler._environ_from).
        self.environ: tuple[dict[str, Any], Any] | None = None


def upgrade_requested(first: dict[str, str]) -> bool:
    """Whether a request asks for a connection upgrade, as pywsgi decides
    (``Connection: upgrade`` or ``Upgrade: websocket``), from its fields by lower-case
    name (:attr:`RequestHeaders.first`)."""
    connection = first.get("connection")
    if connection is not None and connection.lower() == "upgrade":
        return True
    upgrade = first.get("upgrade")
    return upgrade is not None and upgrade.lower() == "websocket"


#: The protocol versions of the requests :meth:`GeventsioHandler.read_request` reads
#: itself (pywsgi's reads the others: HTTP/0.9, malformed or unsupported versions).
_PLAIN_VERSIONS = ("HTTP/1.1", "HTTP/1.0")

#: pywsgi's server environ, a copy of its base environ (see _environ_template).
_PYWSGI_SERVER_ENVIRON = pywsgi.WSGIServer.get_environ

#: handle_one_request has not looked at the next request's head (see read_requestline).
_UNREAD = object()

#: How many sets of field lines a connection keeps parsed (see ParsedFields).
_PARSED_FIELDS_KEPT = 4

#: The handler's methods that the lean path (:mod:`~geventsio.serving.lean`) does in
#: their place for the common answer: a subclass that overrides one of them has its
#: known requests served through them.
LEAN_STEPS = (
    "get_environ",
    "handle_one_response",
    "run_application",
    "process_result",
    "start_response",
    "checked_start",
    "write_whole",
    "finalize_headers",
    "log_request",
    "_sendall",
)


#: The response state handle_one_response sets before it runs the application (in the
#: order of GeventsioHandler._RESPONSE_STATE).
_FRESH_RESPONSE = (None, False, None, False, False, 0)


class GeventsioHandler(HANDLER_FAST_PATHS, pywsgi.WSGIHandler):  # type: ignore[misc]
    """gevent's WSGI handler with TCP_NODELAY, honest ``Connection: close`` and take-over.

    Where the gevent running allows (:mod:`geventsio.engine.gevent_private`), it also
    skips pywsgi's per-request costs: the access-log line formatted for a server without
    a log, a version check, and ``sendall``'s extra calls (one ``send()`` on the kernel
    socket: a response fits the socket buffer nearly always).
    """

    socket: Any  # pywsgi's; None once the connection was taken over
    #: The lines of a request head read whole, until MessageClass parses them.
    _header_lines: list[str] | None = None
    #: The text of the request head read whole (None: read line by line), and of its
    #: field lines.
    _head: str | None = None
    _fields_text = ""
    #: The field lines read_request parsed last on this connection, by their text (a
    #: few: a client may alternate its GETs and POSTs on one connection), and the
    #: current request's (None: not parsed that way).
    _parsed_fields: dict[str, ParsedFields] | None = None
    _parsed: ParsedFields | None = None
    #: The connection's REMOTE_ADDR and REMOTE_PORT (empty: not an IP address).
    _remote: tuple[str, str] | tuple[()] | None = None
    #: How many bytes the read buffer held past that head (None: not known).
    _read_past_head: int | None = None
    #: Whether handle_one_request serves a request it recognises without pywsgi's steps
    #: (a subclass that hooks read_requestline, where a request is waited for, says no).
    serves_known_requests = True
    #: Whether a known request whose environ is known too is served without setting the
    #: handler's state (see :mod:`~geventsio.serving.lean`): where gevent's internals
    #: allow, for a class that overrides none of the steps it does in their place
    #: (LEAN_STEPS).
    serves_lean = gevent_private.PYWSGI_FAST_PATH
    #: Whether the server's access log writes nothing (None: not asked yet).
    _silent_log: bool | None = None
    #: What the lean path got from the application, for run_application to go on with.
    _lean_outcome: tuple[Any, ...] | None = None
    #: What handle_one_request found of the next request's head for read_requestline
    #: (None: not whole in the buffer; _UNREAD: not looked at).
    _pending_head: tuple[str, int] | object | None = _UNREAD

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        set_nodelay(sock)
        if rfile is None:
            # pywsgi's default is an 8 KiB buffer, held for the connection's whole life
            # (a WebSocket's too): request heads are far smaller, bodies are read past it.
            rfile = gevent_private.socket_reader(sock, lean.READ_BUFFER_SIZE)
        super().__init__(sock, address, server, rfile)
        self.taken_over = False
        # The kernel socket of a plain gevent socket, written to directly (TLS: None).
        self._raw = gevent_private.kernel_socket(sock)

    def handle_one_request(self) -> Any:
        # A request whose head is whole in the read buffer and whose field lines, method
        # and version are those of one of the connection's earlier requests (a
        # long-polling client's next GET or POST) is served here at once: pywsgi's steps
        # (read_requestline, read_request, get_environ, handle_one_response) with what
        # they would find already known. Any other request goes pywsgi's way, given the
        # head read here.
        if not self.serves_known_requests:
            return super().handle_one_request()
        served = lean.serve_buffered(self)
        if served is lean.NOT_KNOWN:  # its head is in _pending_head, for read_requestline
            return super().handle_one_request()
        return served

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.serves_lean = GeventsioHandler.serves_lean and all(
            getattr(cls, step) is getattr(GeventsioHandler, step) for step in LEAN_STEPS
        )

    def _serve_known_usual(
        self, head: tuple[str, int], line: str, words: list[str], parsed: ParsedFields
    ) -> bool | None:
        """pywsgi's handle_one_request for a known request (see
        :mod:`~geventsio.serving.lean`) that is not served lean: its steps, with what they
        would read and parse already known."""
        self._head, self._read_past_head = head
        self._header_lines = None
        self.response_length = 0
        self._take_request(line, words, parsed)
        self.environ = self.get_environ()
        self.application = self.server.application
        self.handle_one_response()
        if self.close_connection or self.rfile.closed:
            return None
        return True

    def _serve_usual(
        self, start: lean.LeanStart, result: Any, error: BaseException | None
    ) -> bool | None:
        """Go on with a request the lean path began, pywsgi's way: the handler gets
        the request's state, then handle_one_response runs, taking the application's
        answer (or error) from here instead of calling it again (see run_application)."""
        if not start.materialized:
            self._materialize(start)
            response_state = None
        else:  # the application wrote: handle_one_response must not forget what was sent
            response_state = self._response_state()
        self._lean_outcome = (start, result, error, response_state)
        self.handle_one_response()
        if self.close_connection or self.rfile.closed:
            return None
        return True

    def _materialize(self, request: lean.LeanStart) -> None:
        """The request's state on the handler, as pywsgi's steps set it before they call
        the application."""
        self.response_length = 0
        self._take_request(request.line, request.words, request.parsed)
        self.environ = request.environ
        self.wsgi_input = request.body

    def _start_writing(self, request: lean.LeanStart) -> None:
        """A request served lean whose application called ``write``: the handler takes
        the request's state and handle_one_response's state before the application, then
        the response's start, so that pywsgi's write goes on from there."""
        self._materialize(request)
        self._set_response_state(_FRESH_RESPONSE)
        self.start_response(request.status, request.headers)

    #: What handle_one_response resets before it runs the application.
    _RESPONSE_STATE = (
        "status",
        "headers_sent",
        "result",
        "response_use_chunked",
        "connection_upgraded",
        "response_length",
    )

    def _response_state(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._RESPONSE_STATE)

    def _set_response_state(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self._RESPONSE_STATE, state, strict=True):
            setattr(self, name, value)

    def _resume(self) -> Any:
        """The application's answer that the lean path got (its error raised again),
        with the state that start_response and write gave the handler."""
        outcome, self._lean_outcome = self._lean_outcome, None
        assert outcome is not None  # run_application asked for it
        start, result, error, response_state = outcome
        if response_state is not None:
            self._set_response_state(response_state)
        elif start.checked is not None:
            self.start_response(start.status, start.headers)
        if error is not None:
            raise error
        return result

    def read_requestline(self) -> str:
        # The whole head in one go when it is in the read buffer (one peek instead of a
        # readline per line); its field lines wait for read_request.
        pending, self._pending_head = self._pending_head, _UNREAD
        if pending is _UNREAD:
            head = lean.buffered_head(self.rfile) if self.rfile is not None else None
        else:
            head = cast("tuple[str, int] | None", pending)
        self._header_lines = None
        if head is None:
            self._head = self._read_past_head = None
            return super().read_requestline()  # type: ignore[no-any-return]
        text, self._read_past_head = head
        self._head = text
        line, _, self._fields_text = text.partition("\r\n")
        return line

    def read_request(self, raw_requestline: str) -> bool:
        # pywsgi's read_request, without its several header look-ups by name, for the
        # common request: a head read whole, "METHOD target HTTP/1.x", well-formed
        # fields and a plain Content-Length; and the fields not parsed again when they,
        # the method and the version are the connection's last ones. Anything else is
        # left to pywsgi's (which reads the same head lines: they are only consumed here
        # on success).
        text = self._head
        self._parsed = None
        words = raw_requestline.split()
        if text is None or len(words) != 3 or words[2] not in _PLAIN_VERSIONS:
            return self._pywsgi_read_request(raw_requestline)
        command, _, version = words
        fields_text = self._fields_text
        parsed = lean.known_fields(self._parsed_fields, fields_text, command, version)
        if parsed is None:
            parsed = self._parse_fields(fields_text, command, version)
            if parsed is None:
                return self._pywsgi_read_request(raw_requestline)
            known = self._parsed_fields
            if known is None:
                known = self._parsed_fields = {}
            elif len(known) >= _PARSED_FIELDS_KEPT:
                known.clear()
            known[fields_text] = parsed
        self._take_request(raw_requestline, words, parsed)
        return True

    def _take_request(self, line: str, words: list[str], parsed: ParsedFields) -> None:
        """Set the request's state as pywsgi's read_request would: its line, the words
        of the line (method, target, version) and its parsed fields."""
        self._parsed = parsed
        self.command, self.path, self.request_version = words
        self.requestline = line.rstrip()
        self.headers = RequestHeaders(parsed.fields, "", parsed.first)
        self.content_length = parsed.content_length
        self.close_connection = parsed.close_connection

    def _pywsgi_read_request(self, raw_requestline: str) -> bool:
        """pywsgi's read_request, reading the head's lines when it was read whole."""
        if self._head is not None:
            self._header_lines = self._head.split("\r\n")
        return super().read_request(raw_requestline)  # type: ignore[no-any-return]

    @staticmethod
    def _parse_fields(text: str, command: str, version: str) -> ParsedFields | None:
        """A head's field lines, parsed as pywsgi would; None when the request is one
        pywsgi's read_request must read (its rarer forms, its refusals)."""
        headers = RequestHeaders.parse(text.split("\r\n") if text else [])
        first = headers.first
        length = first.get("content-length")
        if (length is not None and not length.isdecimal()) or "transfer-encoding" in first:
            return None
        if length is not None and length != "0" and command == "HEAD":
            return None
        connection = first.get("connection")
        if version == "HTTP/1.1":
            close = connection is not None and connection.lower() == "close"
        else:
            close = connection is None or connection.lower() != "keep-alive"
        content_length = int(length) if length is not None else None
        return ParsedFields(text, command, version, headers, content_length, close)

    def MessageClass(self, rfile: Any, *args: Any) -> RequestHeaders:
        lines, self._header_lines = self._header_lines, None
        if lines is not None:
            return RequestHeaders.parse(lines[1:])
        return RequestHeaders.read(rfile)

    def get_environ(self) -> dict[str, Any]:
        # pywsgi's get_environ, the same variables at a fraction of the cost (it was ~12 %
        # of a long-polling request): the header variables come from the parsed fields,
        # not from re-splitting header lines, the upgrade check runs once, and fields
        # the connection sent before get the variables made for them then.
        parsed = self._parsed
        if parsed is not None and parsed.environ is not None:
            environ = self._environ_from(parsed.environ)
            if environ is not None:
                return environ
        if parsed is not None and parsed.other_variables is not None:
            others, headers_variables = parsed.other_variables, parsed.headers_variables
            upgrade = parsed.upgrade
        else:
            others, headers_variables = self._field_variables()
            upgrade = upgrade_requested(self.headers.first)
            if parsed is not None:
                parsed.other_variables, parsed.headers_variables = others, headers_variables
                parsed.upgrade = upgrade
        environ = self._target_environ()
        environ.update(others)
        size = len(environ)
        environ.update(headers_variables)
        if len(environ) != size + len(headers_variables):
            # The server's environ has some of these HTTP_ names: pywsgi joins the values.
            environ = self._target_environ()
            environ.update(others)
            self.headers.add_cgi_variables(environ)
        expect_continue = environ.get("HTTP_EXPECT") == "100-continue"
        chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        self.wsgi_input = gevent_private.request_input(self, chunked, expect_continue)
        # An upgrade request's body is the connection itself: pywsgi hands over rfile.
        environ["wsgi.input"] = self.rfile if upgrade else self.wsgi_input
        environ["wsgi.input_terminated"] = not upgrade
        environ[SOCKET_KEY] = self.socket
        if upgrade:
            environ[TAKEOVER_KEY] = self._take_over
        elif parsed is not None and not expect_continue and not chunked:
            parsed.environ = self._environ_template(environ)
        return environ

    def _environ_template(self, environ: dict[str, Any]) -> tuple[dict[str, Any], Any] | None:
        """What :meth:`_environ_from` needs to make the environ of the connection's next
        request with the same fields: this environ, and the server's base environ it was
        made from (None: the server makes its environ some other way)."""
        get_base = getattr(type(self.server), "get_environ", None)
        if get_base is not _PYWSGI_SERVER_ENVIRON or type(environ) is not dict:
            return None
        return environ.copy(), self.server.environ.copy()

    def _environ_from(self, template: tuple[dict[str, Any], Any]) -> dict[str, Any] | None:
        """The environ of a request whose fields, method and version are those of an
        earlier one (see :meth:`_environ_template`), as get_environ would make it: that
        one's, with this request's target and input. None when the server's base environ
        has changed since."""
        environ = lean.environ_for(self, template, self.path, self.content_length)
        if environ is not None:
            self.wsgi_input = environ["wsgi.input"]
        return environ

    def _target_environ(self) -> dict[str, Any]:
        """The server's environ, with the request's method and target (as pywsgi sets
        them, whatever the server's environ holds)."""
        environ: dict[str, Any] = self.server.get_environ()
        environ["REQUEST_METHOD"] = self.command
        environ["SCRIPT_NAME"] = ""
        path, _, query = self.path.partition("?")
        environ["PATH_INFO"] = gevent_private.unquote_path(path) if "%" in path else path
        environ["QUERY_STRING"] = query
        return environ

    def _field_variables(self) -> tuple[dict[str, str], dict[str, str]]:
        """The environ variables of the current request's fields, version and connection,
        as pywsgi sets them: those it sets whatever the server's environ holds, and the
        HTTP_* ones."""
        first = self.headers.first
        variables: dict[str, str] = {}
        content_type = first.get("content-type")
        if content_type is not None:
            variables["CONTENT_TYPE"] = content_type
        length = first.get("content-length")
        if length:
            variables["CONTENT_LENGTH"] = length
        variables["SERVER_PROTOCOL"] = self.request_version
        remote = self._remote
        if remote is None:  # once per connection
            address = self.client_address
            remote = self._remote = (
                (str(address[0]), str(address[1])) if isinstance(address, tuple) else ()
            )
        if remote:
            variables["REMOTE_ADDR"], variables["REMOTE_PORT"] = remote
        headers_variables: dict[str, str] = {}
        self.headers.add_cgi_variables(headers_variables)
        return variables, headers_variables

    def _take_over(self) -> tuple[Any, Any]:
        """Hand the connection to the application (a WebSocket upgrade), detached from
        this request: the socket, held open past the server's close of it, and a reader
        that first gives back what was read past the request (see
        :func:`~geventsio.engine.takeover.hand_over`). The request's reader is closed,
        and when the application returns this greenlet ends, so a long-lived WebSocket
        keeps none of the request's stack, objects or buffer."""
        self.taken_over = True
        self.close_connection = True
        detached = hand_over(self.socket, self.rfile, self._read_past_head)
        if detached is None:  # TLS: its state cannot be duplicated
            return self.socket, self.rfile
        self.socket = None  # pywsgi's clean-up must not read the connection
        return detached

    def run_application(self) -> None:
        # pywsgi's, and a connection taken over (WebSocket) gets no response written.
        self.taken_over = False
        if self._lean_outcome is not None:  # the application ran already (lean path)
            result = self._resume()
        else:
            result = self.application(self.environ, self.start_response)
        try:
            if not self.taken_over:
                if (
                    type(result) is not list
                    or len(result) != 1
                    or type(result[0]) is not bytes
                    or self.command == "HEAD"
                    or not self.write_whole(result[0])
                ):
                    self.result = result
                    self.process_result()
            else:
                gevent_private.mark_switched_protocols(self)
        finally:
            close = getattr(result, "close", None)
            try:
                if close is not None:
                    close()
            finally:
                self.result = None

    def process_result(self) -> None:
        # pywsgi's, but for HEAD: pywsgi writes the body of a HEAD response too, which a
        # keep-alive client then reads as the start of the next response.
        if self.command == "HEAD":
            if self.status and not self.headers_sent:
                self.write(b"")
            return
        for data in self.result:
            if data:
                self.write(data)
        if self.status and not self.headers_sent:
            self.write(b"")  # an empty result: the head alone
        if self.response_use_chunked:
            self._sendall(b"0\r\n\r\n")

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        write = super().start_response(status, headers, exc_info)
        if (
            self.close_connection
            and self.request_version == "HTTP/1.1"
            and not any(name.lower() == b"connection" for name, _ in self.response_headers)
        ):
            self.response_headers.append((b"Connection", b"close"))
        return write
