"""The take-over seam: one raw WebSocket, obtained the same way from every server.

A WebSocket is always served by geventsio's own RFC 6455 framing
(:class:`~geventsio.engine.websocket.RawWebSocket`) on the client's socket, with
``TCP_NODELAY`` on and the same limits, whatever server runs the application. This
module is the only place that knows how each server hands that socket over:

=============================================  =================================================
server                                         how the connection is taken
=============================================  =================================================
geventsio's handler (``geventsio.serve``,      ``geventsio.takeover`` in the environ: the socket,
``GeventsioHandler``, its gunicorn workers)    duplicated off the request, and the bytes read
                                               ahead; geventsio writes ``101``. Detached: the
                                               request's greenlet ends.
gunicorn ``-k gevent``                         ``gunicorn.socket``; the bytes gunicorn's parser
                                               read ahead; ``101`` through ``start_response``.
pywsgi's own handler, gunicorn                 the socket under ``wsgi.input`` (pywsgi passes its
``-k gevent_pywsgi``                           buffered reader for an upgrade request);
                                               ``101`` through ``start_response``.
gevent-websocket's ``WebSocketHandler`` and    the handler's socket and reader, reachable from
gunicorn worker                                ``wsgi.websocket``, which is silenced. ``101`` was
                                               already sent, before the application ran: a
                                               refused request can only be closed (1008).
=============================================  =================================================

The engine asks this module, never the environ, whether a request can be upgraded and
which socket a long-poll should watch.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import gevent
import gevent.socket

from geventsio.engine import gevent_private
from geventsio.engine.tcp import set_nodelay
from geventsio.engine.websocket import RawWebSocket
from geventsio.exceptions import RemoteProtocolError
from geventsio.options import DeflateOptions
from geventsio.protocol import websocket_handshake as handshake
from geventsio.protocol.deflate_offer import DeflateAgreement, negotiate

logger = logging.getLogger(__name__)

TAKEOVER_KEY = "geventsio.takeover"
"""Environ key of a callable returning ``(socket, reader)`` and detaching the connection
from the HTTP server (set by :class:`geventsio.serving.GeventsioHandler`)."""
SOCKET_KEY = "geventsio.socket"
"""Environ key of the client's socket (set by :class:`geventsio.serving.GeventsioHandler`)."""
GUNICORN_SOCKET_KEY = "gunicorn.socket"  # gunicorn's own HTTP parser (-k gevent)
GUNICORN_PYWSGI_SOCKET_KEY = "gunicorn.sock"  # gunicorn's pywsgi handler (-k gevent_pywsgi)
GEVENT_WEBSOCKET_KEY = "wsgi.websocket"

#: The fix to name when a server answers ``101`` itself or gives no socket.
_USE_INSTEAD = (
    "serve with geventsio's handler instead: `gunicorn -k gevent` or "
    "`-k geventsio.serving.gunicorn.GeventWorker`, or "
    "`pywsgi.WSGIServer(..., handler_class=geventsio.serving.GeventsioHandler)`, "
    "or `geventsio.serve(app)`"
)


class UpgradeRefused(RemoteProtocolError):
    """The server cannot run a WebSocket on this request (no way to take the socket)."""


class PendingReader:
    """``read1`` that first hands back the bytes read ahead of a taken-over request, then
    reads the socket itself.

    :param held: the socket is held open past its server's ``close()``
        (:func:`hand_over`): :meth:`close` lets it go.
    """

    __slots__ = ("_held", "_pending", "_sock")

    def __init__(self, sock: gevent.socket.socket, pending: bytes, held: bool = False) -> None:
        self._sock = sock
        self._pending = pending
        self._held = held

    def close(self) -> None:
        """Done with the connection: let go of the socket (once closed, it really is)."""
        if self._held:
            self._held = False
            gevent_private.release_hold(self._sock)

    @property
    def empty(self) -> bool:
        """Whether nothing read ahead is left (the socket is read from now on)."""
        return not self._pending

    def read1(self, size: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._sock.recv(size)  # type: ignore[no-any-return]


def read_ahead(rfile: Any, sock: Any) -> bytes:
    """What ``rfile`` holds (or the socket has ready) past the request, without waiting."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        data: bytes = rfile.read1(65536) or b""
        return data
    except OSError:
        return b""
    finally:
        sock.settimeout(timeout)


def detach(sock: Any, rfile: Any) -> tuple[Any, PendingReader] | None:
    """A duplicate of a plain socket and a reader that first gives back what ``rfile``
    read ahead: the connection outlives the request that carried it. The request's own
    copy (``sock`` and ``rfile``) is closed here, so its descriptor is not left for the
    garbage collector; the duplicate keeps the connection open. None for a TLS socket
    (its state lives in its SSL object and cannot be duplicated)."""
    if type(sock) is not gevent.socket.socket:
        return None
    pending = read_ahead(rfile, sock)
    duplicate = sock.dup()
    with contextlib.suppress(OSError):
        rfile.close()  # gives back its reference: the socket can really close
    sock.close()
    return duplicate, PendingReader(duplicate, pending)


def hand_over(
    sock: Any, rfile: Any, read_past_head: int | None
) -> tuple[Any, PendingReader] | None:
    """The request's own plain socket, detached from the request, and a reader that first
    gives back what ``rfile`` read ahead. The socket is held open (as an open
    ``makefile()`` file holds it) past the server's ``close()`` of it, when the request
    ends, until the reader is closed; ``rfile`` is closed here. Where the hold cannot be
    taken, a duplicate (:func:`detach`). None for a TLS socket (its state lives in its SSL
    object and cannot be duplicated).

    :param read_past_head: how many bytes ``rfile`` holds past the request (None: not
        known; they are taken without waiting).
    """
    if type(sock) is not gevent.socket.socket:
        return None
    if not gevent_private.hold_open(sock):
        return detach(sock, rfile)
    pending = b"" if read_past_head == 0 else read_ahead(rfile, sock)
    with contextlib.suppress(OSError):
        rfile.close()
    return sock, PendingReader(sock, pending, held=True)


@dataclass(frozen=True)
class TakenOver:
    """A client connection handed over by the server, its ``101`` answer sent (or in
    ``preface``)."""

    sock: Any
    reader: Any
    #: The connection no longer needs its HTTP request (serve it from another greenlet).
    detached: bool = False
    #: Close the socket when done (else only shut it down: the server closes it).
    owns_socket: bool = True
    #: permessage-deflate, when the ``101`` agreed to it.
    deflate: DeflateAgreement | None = None
    #: The ``101`` answer when it is not sent yet: the WebSocket sends it first.
    preface: bytes = b""


def client_socket(environ: Mapping[str, Any]) -> Any:
    """The client's socket, from whichever server runs the application, or None."""
    for key in (SOCKET_KEY, GUNICORN_SOCKET_KEY, GUNICORN_PYWSGI_SOCKET_KEY):
        sock = environ.get(key)
        if sock is not None:
            return sock
    gevent_ws = environ.get(GEVENT_WEBSOCKET_KEY)
    if gevent_ws is not None:
        return getattr(getattr(gevent_ws, "handler", None), "socket", None)
    stream = environ.get("wsgi.input")
    # pywsgi: the reader itself for an upgrade request, else an Input around it.
    return gevent_private.socket_of_reader(getattr(stream, "rfile", stream))


def set_nodelay_for(environ: Mapping[str, Any]) -> None:
    """Switch Nagle's algorithm off on this request's connection where the server does
    not (only geventsio's handler does, once per connection)."""
    if SOCKET_KEY not in environ:
        sock = client_socket(environ)
        if sock is not None:
            set_nodelay(sock)


def upgrade_requested(environ: Mapping[str, Any]) -> bool:
    """Whether the request asks for a WebSocket (or the server already upgraded it)."""
    return (
        str(environ.get("HTTP_UPGRADE", "")).lower() == "websocket"
        or GEVENT_WEBSOCKET_KEY in environ
    )


def answered_by_server(environ: Mapping[str, Any]) -> bool:
    """Whether the server sent ``101`` before the application saw the request."""
    return environ.get(GEVENT_WEBSOCKET_KEY) is not None


class EnvironHeaders(Mapping[str, str]):
    """The request headers of a WSGI environ, by lower-case dashed name, read from the
    environ itself: a handshake looks up four or five of them, and a copy of all of
    them (a pass over the whole environ) cost as much as the rest of its checks."""

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    def get(self, key: str, default: Any = None) -> Any:
        value = self._environ.get(_environ_key(key))
        return default if value is None else str(value)

    def __getitem__(self, key: str) -> str:
        value = self._environ.get(_environ_key(key))
        if value is None:
            raise KeyError(key)
        return str(value)

    def __iter__(self) -> Iterator[str]:
        return (
            key[5:].replace("_", "-").lower() for key in self._environ if key.startswith("HTTP_")
        )

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _environ_key(name: str) -> str:
    """The environ key of a header name (``"sec-websocket-key"`` ->
    ``"HTTP_SEC_WEBSOCKET_KEY"``)."""
    key = _ENVIRON_KEYS.get(name)
    if key is None:
        key = "HTTP_" + name.upper().replace("-", "_")
    return key


#: The environ keys of the headers a WebSocket handshake reads.
_ENVIRON_KEYS = {
    name: "HTTP_" + name.upper().replace("-", "_")
    for name in (
        "upgrade",
        "connection",
        "sec-websocket-version",
        "sec-websocket-key",
        "sec-websocket-extensions",
    )
}


def _split_response(response: bytes) -> tuple[str, list[tuple[str, str]]]:
    """The status and headers of an HTTP response head (for a WSGI start_response)."""
    lines = response.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 1)[1]
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return status, headers


def _gunicorn_read_ahead(environ: Mapping[str, Any]) -> bytes:
    """The bytes gunicorn's parser read past an upgrade request (pipelined frames, or
    garbage): they belong to the WebSocket."""
    unreader = getattr(getattr(environ.get("wsgi.input"), "reader", None), "unreader", None)
    take = getattr(unreader, "take_buffered", None)
    if take is not None:
        return bytes(take())
    buffer = getattr(unreader, "buf", None)  # gunicorn before take_buffered()
    if buffer is None:
        return b""
    data = bytes(buffer.getvalue())
    buffer.seek(0)
    buffer.truncate()
    return data


def _leave_gunicorn(sock: Any, start_response: Any, pending: bytes) -> TakenOver | None:
    """Take a ``-k gevent`` connection away from gunicorn's request, its ``101`` sent:
    gunicorn is told to close the connection after this request (its
    ``Response.force_close()``), so it reads nothing more and closes only its own copy;
    the WebSocket runs on a duplicate, in a greenlet of its own, and the request's
    greenlet, parser and slot of the worker's pool are freed (as under geventsio's
    handler). None when the socket cannot be duplicated (TLS) or gunicorn's response is
    not as expected: the WebSocket is then served inside the request."""
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if type(sock) is not gevent.socket.socket or not callable(force_close):
        return None
    try:
        duplicate = sock.dup()
    except OSError:
        return None
    force_close()
    set_nodelay(duplicate)
    return TakenOver(duplicate, PendingReader(duplicate, pending), detached=True)


class Hosts:
    """Takes connections over from the server under the application, and says once in
    the log where that server weakens what geventsio can promise."""

    def __init__(self) -> None:
        self._warned: set[str] = set()

    def warn_once(self, topic: str, message: str, *args: object) -> None:
        """Log ``message`` at WARNING, the first time ``topic`` comes up."""
        if topic not in self._warned:
            self._warned.add(topic)
            logger.warning(message, *args)

    def can_take_over(self, environ: Mapping[str, Any]) -> bool:
        """Whether this request's connection can become a WebSocket."""
        if TAKEOVER_KEY in environ or answered_by_server(environ):
            return True
        if client_socket(environ) is not None:
            return True
        self.warn_once(
            "no-socket",
            "WebSocket refused: the server under the application (%s) gives it only a "
            "file-like object, not the client's socket; %s",
            environ.get("SERVER_SOFTWARE", "unknown"),
            _USE_INSTEAD,
        )
        return False

    def take_over(
        self,
        environ: Mapping[str, Any],
        start_response: Callable[..., Any],
        extra_headers: Sequence[tuple[str, str]] = (),
        deflate: DeflateOptions | None = None,
        *,
        defer_answer: bool = False,
    ) -> TakenOver:
        """Complete the opening handshake (unless the server did) and take the
        connection.

        :param deflate: accept the client's permessage-deflate offer within these
            options (None: never; nor when the server answered the handshake itself).
        :param defer_answer: where geventsio's handler serves the request, leave the
            ``101`` answer in the result's ``preface`` for the caller to send, with what
            follows it.
        :raises RemoteProtocolError: the request is not a valid WebSocket handshake.
        :raises UpgradeRefused: the server gives no way to take the connection over.
        """
        if answered_by_server(environ):
            return self._from_gevent_websocket(environ[GEVENT_WEBSOCKET_KEY])
        headers = EnvironHeaders(environ)
        key = handshake.check_client_handshake(headers)
        agreement = None
        if deflate is not None:
            agreement = negotiate(headers.get("sec-websocket-extensions"), deflate)
        if agreement is not None:
            extra_headers = [*extra_headers, ("Sec-WebSocket-Extensions", agreement.response)]
        response = handshake.server_handshake_response(key, extra_headers)
        taken = self._take(environ, start_response, response, defer_answer)
        return taken if agreement is None else replace(taken, deflate=agreement)

    def _take(
        self,
        environ: Mapping[str, Any],
        start_response: Callable[..., Any],
        response: bytes,
        defer_answer: bool,
    ) -> TakenOver:
        """Send the ``101`` ``response`` (or leave it in ``preface``, if deferred and
        allowed) and take the connection, the way the server under the application
        allows."""
        takeover = environ.get(TAKEOVER_KEY)
        if takeover is not None:
            sock, ours = takeover()
            off_request = isinstance(ours, PendingReader)
            if defer_answer:
                return TakenOver(sock, ours, detached=off_request, preface=response)
            sock.sendall(response)
            return TakenOver(sock, ours, detached=off_request)
        sock = client_socket(environ)
        if sock is None:
            raise UpgradeRefused("this server cannot upgrade to WebSocket", code=3)
        stream = environ.get("wsgi.input")
        if GUNICORN_SOCKET_KEY in environ:
            pending = _gunicorn_read_ahead(environ)
            reader: Any = PendingReader(sock, pending)
        elif hasattr(stream, "read1"):  # pywsgi: its buffered reader on the connection
            reader = stream
        else:
            reader = PendingReader(sock, b"")
        status, headers = _split_response(response)
        start_response(status, headers)(b"")  # the server knows its response was sent
        if GUNICORN_SOCKET_KEY in environ:
            detached = _leave_gunicorn(sock, start_response, pending)
            if detached is not None:
                return detached
        set_nodelay(sock)
        return TakenOver(sock, reader, owns_socket=False)

    def server_answers_upgrades(self) -> None:
        """Say, once, that the server is gevent-websocket's handler, which answers the
        WebSocket handshake before the application sees the request."""
        self.warn_once(
            "gevent-websocket",
            "gevent-websocket's WebSocketHandler answers '101 Switching Protocols' before "
            "the application sees the request: a WebSocket refused by the Origin, CORS or "
            "allow_request checks is opened and then closed with 1008, instead of refused "
            "with 403, and a bad handshake gets gevent-websocket's answer; %s",
            _USE_INSTEAD,
        )

    def _from_gevent_websocket(self, websocket: Any) -> TakenOver:
        self.server_answers_upgrades()
        handler = websocket.handler
        sock, rfile = handler.socket, handler.rfile
        # gevent-websocket must never write to this connection again (its close() in
        # the handler's clean-up, or in the object's __del__).
        websocket.closed = True
        websocket.stream = websocket.raw_write = websocket.raw_read = None
        detached = detach(sock, rfile)
        if detached is None:
            return TakenOver(sock, rfile, owns_socket=False)
        duplicate, reader = detached
        handler.socket = None  # pywsgi's clean-up must not read the connection
        set_nodelay(duplicate)
        return TakenOver(duplicate, reader, detached=True)

    def accept(
        self,
        environ: Mapping[str, Any],
        start_response: Callable[..., Any],
        *,
        max_message_size: int,
        max_fragments: int,
        max_buffer_size: int,
        extra_headers: Sequence[tuple[str, str]] = (),
        deflate: DeflateOptions | None = None,
    ) -> RawWebSocket:
        """Complete the handshake and return the connection, framed by geventsio.

        :param deflate: permessage-deflate's options, when the server offers it.
        :raises RemoteProtocolError: the request is not a valid WebSocket handshake.
        :raises UpgradeRefused: the server gives no way to take the connection over.
        """
        taken = self.take_over(environ, start_response, extra_headers, deflate, defer_answer=True)
        return RawWebSocket(
            taken.sock,
            taken.reader,
            max_message_size=max_message_size,
            max_fragments=max_fragments,
            max_buffer_size=max_buffer_size,
            owns_socket=taken.owns_socket,
            detached=taken.detached,
            deflate=taken.deflate,
            deflate_options=deflate,
            reader_empty=isinstance(taken.reader, PendingReader) and taken.reader.empty,
            preface=taken.preface,
        )

    def refuse_after_101(self, environ: Mapping[str, Any], reason: str) -> None:
        """Close, with 1008 (policy violation), a WebSocket the server opened before the
        application could refuse it; nothing of it reaches a handler."""
        websocket = self.accept(
            environ, lambda *_: None, max_message_size=125, max_fragments=1, max_buffer_size=4096
        )
        if websocket.detached:
            gevent.spawn(websocket.close_and_wait, 1008, reason[:100])
        else:
            websocket.close_and_wait(1008, reason[:100])
