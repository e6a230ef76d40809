"""Keep-alive connections of other HTTP stacks (gunicorn's ``-k gevent`` worker,
pywsgi's and gevent-websocket's handlers), served by geventsio's handler from their
second request on.

Under ``gunicorn -k gevent`` every request goes through gunicorn's own HTTP parser and
WSGI environ, in pure Python: measured with py-spy, three quarters of the worker's CPU
under long-polling load, which halves its rate against geventsio's runner
(bench/serving_paths.py). A long-polling client sends its requests on two kept-alive
connections for the session's whole life, so most of that cost is paid again and again
on the same connections.

So, once gunicorn has answered an Engine.IO long-polling request on a connection that
stays open, geventsio *adopts* the connection: it serves the following requests on it
with its own pywsgi handler (:class:`~geventsio.serving.handler.GeventsioHandler`),
through the same WSGI application, in the same greenlet of gunicorn's pool. What
gunicorn would do between requests is kept: the connection is closed once the worker
stops (``worker.alive``) or after ``keepalive`` seconds without a request, and every
request counts toward ``max_requests``. Requests on an adopted connection get
pywsgi's WSGI environ (``gunicorn.socket`` absent) and do not appear in gunicorn's
access log. ``WSGIApp(adopt_connections=False)`` turns it off.

pywsgi's own handler and gevent-websocket's (``WebSocketHandler``, as served by pywsgi or
by gevent-websocket's gunicorn worker) parse each request with the standard library's
email parser: twice the CPU of geventsio's handler per long-polling request. These are
pywsgi handlers already, so adopting their connection only changes the handler's class
to :class:`~geventsio.serving.handler.GeventsioHandler` once the response was sent: the
same object then reads the next requests with geventsio's parser and fast paths (and
answers a WebSocket upgrade with geventsio's checks before ``101``). A handler class of
the application's own is left alone.

A gunicorn connection is adopted only when nothing of it is left in gunicorn's hands: the
request's body was read to its end and gunicorn holds no bytes read ahead; the request
asked to keep the connection (HTTP/1.1, no ``Connection: close``), the socket is a plain
one (not TLS), and the worker keeps connections alive. Anything else, or a gunicorn
whose internals are not as expected, leaves the connection to gunicorn.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import gevent
import gevent.socket
from gevent import pywsgi

from geventsio.engine.gevent_private import kernel_socket
from geventsio.engine.takeover import GUNICORN_SOCKET_KEY
from geventsio.engine.tcp import set_nodelay
from geventsio.serving.handler import GeventsioHandler
from geventsio.serving.stopping import pywsgi_handler_serving, running_gunicorn_worker

logger = logging.getLogger(__name__)

#: The environ variables of the server, not of a request: copied from the request that
#: was adopted into the environ of those that follow it.
_SERVER_VARIABLES = (
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_SOFTWARE",
    "SCRIPT_NAME",
    "wsgi.version",
    "wsgi.url_scheme",
    "wsgi.multithread",
    "wsgi.multiprocess",
    "wsgi.run_once",
    "wsgi.errors",
)


def gunicorn_left_nothing(environ: Mapping[str, Any]) -> bool:
    """Whether gunicorn's parser holds nothing of the connection past this request: its
    body read to the end, no bytes read ahead. False when gunicorn's internals are not
    as expected (``Body`` -> ``LengthReader`` -> ``Unreader`` with ``BytesIO`` buffers,
    gunicorn 25 to 27)."""
    body = environ.get("wsgi.input")
    reader = getattr(body, "reader", None)
    unreader = getattr(reader, "unreader", None)
    try:
        return bool(
            getattr(reader, "length", None) == 0
            and body.buf.getvalue() == b""  # type: ignore[union-attr]
            and unreader.buf.getvalue() == b""  # type: ignore[union-attr]
        )
    except AttributeError:
        return False


def keeps_alive(environ: Mapping[str, Any]) -> bool:
    """Whether the client asked to keep the connection open after this request (and
    not to turn it into a WebSocket)."""
    if environ.get("SERVER_PROTOCOL") != "HTTP/1.1" or "HTTP_UPGRADE" in environ:
        return False
    return "close" not in str(environ.get("HTTP_CONNECTION", "")).lower()


def _adoptable_pywsgi_handlers() -> tuple[type, ...]:
    """pywsgi's handler and gevent-websocket's, exactly (not a subclass of the user's)."""
    classes: list[type] = [pywsgi.WSGIHandler]
    with contextlib.suppress(ImportError):
        from geventwebsocket.handler import WebSocketHandler

        classes.append(WebSocketHandler)
    return tuple(classes)


def become_geventsio_handler(handler: Any) -> None:
    """Turn a pywsgi handler, between two requests, into geventsio's handler for the rest
    of its connection (what :class:`GeventsioHandler`'s ``__init__`` sets, set here)."""
    handler.__class__ = GeventsioHandler
    handler.taken_over = False
    handler._raw = kernel_socket(handler.socket)
    set_nodelay(handler.socket)


class AdoptedHandler(GeventsioHandler):
    """geventsio's handler on a connection gunicorn served first: it stops between two
    requests once the worker stops or the client stays silent for ``keepalive`` seconds,
    and counts each request toward ``max_requests``."""

    worker: Any = None
    #: Every request goes through read_requestline (below): it waits there.
    serves_known_requests = False
    #: The worker's ``keepalive`` (read once: gunicorn's settings are slow to read).
    keepalive: float = 2.0
    #: The adopted handlers waiting for a request (closed at once when the worker stops).
    idle: set[AdoptedHandler] = set()

    def read_requestline(self) -> Any:
        worker = self.worker
        if not worker.alive:
            return None  # between two requests: close, as gunicorn would
        # The client has ``keepalive`` seconds to start its next request (a socket
        # timeout: cheaper than a gevent.Timeout per request; reset for the request).
        self.socket.settimeout(self.keepalive)
        self.idle.add(self)
        try:
            line = super().read_requestline()
        except OSError:  # socket.timeout included: the connection ends here
            return None
        finally:
            self.idle.discard(self)
            if self.socket is not None:
                self.socket.settimeout(None)
        if line:
            worker.nr += 1
            if worker.nr >= worker.max_requests:
                worker.log.info("Autorestarting worker after current request.")
                worker.alive = False
        return line


class Adopter:
    """Adopts the kept-alive connections of gunicorn's ``-k gevent`` worker for one WSGI
    application (see the module's documentation)."""

    def __init__(self) -> None:
        self._servers: dict[int, pywsgi.WSGIServer] = {}
        self._idle: set[AdoptedHandler] = set()
        self._pywsgi_handlers = _adoptable_pywsgi_handlers()

    def close_idle(self) -> None:
        """End the adopted connections that wait for a request (the worker stops: they
        would otherwise wait up to ``keepalive``, as gunicorn's own would)."""
        for handler in list(self._idle):
            with contextlib.suppress(OSError, AttributeError):
                handler.socket.shutdown(socket.SHUT_RD)  # its read returns: it ends

    def after(self, result: Iterable[bytes], environ: Mapping[str, Any]) -> Iterable[bytes]:
        """``result``, answered by the server; then, if the connection may be adopted,
        its next requests served by geventsio's handler."""
        if not keeps_alive(environ):
            return result
        sock = environ.get(GUNICORN_SOCKET_KEY)
        if sock is not None:
            if type(sock) is not gevent.socket.socket:
                return result
            return _ThenServe(result, lambda: self._adopt(sock, environ))
        handler = pywsgi_handler_serving()
        if type(handler) not in self._pywsgi_handlers:
            return result
        return _ThenServe(result, lambda: self._take_handler(handler))

    def _take_handler(self, handler: Any) -> None:
        if handler.close_connection or type(handler.socket) is not gevent.socket.socket:
            return  # closing, taken over, or TLS
        become_geventsio_handler(handler)

    def _adopt(self, sock: Any, environ: Mapping[str, Any]) -> None:
        worker = running_gunicorn_worker()
        if (
            worker is None
            or not worker.alive
            or not worker.cfg.keepalive
            or not gunicorn_left_nothing(environ)
        ):
            return
        try:
            address = (str(environ.get("REMOTE_ADDR", "")), int(environ.get("REMOTE_PORT", 0)))
            ours = sock.dup()  # closed by our handler; gunicorn's copy is shut down below
        except (OSError, ValueError):
            return
        try:
            handler = AdoptedHandler(ours, address, self._server(worker, environ))
            handler.worker, handler.keepalive = worker, worker.cfg.keepalive
            handler.idle = self._idle
            handler.handle()
        except Exception:  # never into gunicorn's request: its response was sent
            logger.exception("an adopted keep-alive connection failed")
        finally:
            # gunicorn reads the connection next: it must find its end, not a request.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _server(self, worker: Any, environ: Mapping[str, Any]) -> pywsgi.WSGIServer:
        """A pywsgi server that never listens: what the handler asks its server for
        (the application, the server's environ, the logs)."""
        server = self._servers.get(id(worker))
        if server is None:
            server = pywsgi.WSGIServer(
                ("127.0.0.1", 0),
                worker.wsgi,
                handler_class=AdoptedHandler,
                log=None,
                error_log=logger,
            )
            server.environ.update({k: environ[k] for k in _SERVER_VARIABLES if k in environ})
            self._servers = {id(worker): server}
        return server


class _ThenServe:
    """A WSGI result that, once gunicorn wrote it and closes it, runs ``then``."""

    __slots__ = ("_result", "_then")

    def __init__(self, result: Iterable[bytes], then: Callable[[], None]) -> None:
        self._result = result
        self._then = then

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self._then()
