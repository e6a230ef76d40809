"""Run a WSGI application on gevent with geventsio's handler, and stop it cleanly."""

from __future__ import annotations

import logging
import signal
import ssl
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
from gevent import pywsgi

from geventsio.serving.handler import GeventsioHandler
from geventsio.serving.monitor import BlockingMonitor
from geventsio.serving.patching import check_patching
from geventsio.serving.stopping import find_geventsio_app

logger = logging.getLogger(__name__)

WSGIApplication = Callable[..., Any]


def make_server(
    app: WSGIApplication,
    host: str = "127.0.0.1",
    port: int = 5000,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
    log_requests: bool = False,
) -> pywsgi.WSGIServer:
    """A gevent WSGI server for ``app`` using :class:`GeventsioHandler` (not started).

    :param log_requests: write one access-log line per request to the
        ``geventsio.serving.access`` logger.
    :raises OSError: the address cannot be bound (e.g. the port is in use).
    """
    ssl_args: dict[str, Any] = {}
    if certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile, keyfile)
        ssl_args["ssl_context"] = context
    access_log: Any = logging.getLogger("geventsio.serving.access") if log_requests else None
    server = pywsgi.WSGIServer(
        (host, port),
        app,
        handler_class=GeventsioHandler,
        log=access_log,
        error_log=logger,
        **ssl_args,
    )
    server.init_socket()
    return server


def shutdown(server: pywsgi.WSGIServer, app: WSGIApplication, timeout: float = 5.0) -> None:
    """Stop accepting, close every session (clients hear why), then stop the server."""
    server.close()
    close_sessions = getattr(app, "shutdown", None)
    if close_sessions is not None:
        close_sessions()
    server.stop(timeout=timeout)


def serve(
    app: WSGIApplication,
    host: str = "127.0.0.1",
    port: int = 5000,
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
    log_requests: bool = False,
    expect_patched: bool | None = None,
    block_threshold: float | None = None,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut down cleanly.

    Sessions are closed with the reason "server shutting down" so that clients know to
    reconnect, queued data gets a moment to leave, and the call returns.

    :param expect_patched: warn if gevent's monkey-patching is missing (None: as the
        ``GEVENTSIO_EXPECT_PATCHED`` environment variable says); patching that came too
        late is reported in any case (see :mod:`geventsio.serving.patching`).
    :param block_threshold: log every greenlet that holds the hub longer than this many
        seconds, with its stack (see :class:`~geventsio.serving.monitor.BlockingMonitor`).
    """
    check_patching(expect_patched)
    server = make_server(
        app, host, port, certfile=certfile, keyfile=keyfile, log_requests=log_requests
    )
    run_server(server, app, block_threshold=block_threshold)


def run_server(
    server: pywsgi.WSGIServer, app: WSGIApplication, *, block_threshold: float | None = None
) -> None:
    """Start a server made by :func:`make_server`, serve until SIGINT or SIGTERM, then
    :func:`shutdown`.

    :param block_threshold: as for :func:`serve`.
    """
    served = find_geventsio_app(app)
    if served is not None:  # with a Redis adapter it shares sessions (WSGIApp.share_sessions)
        served.serve_as_runner()
    stopping = gevent.event.Event()
    handlers = [gevent.signal_handler(sig, stopping.set) for sig in (signal.SIGINT, signal.SIGTERM)]
    monitor = BlockingMonitor(block_threshold).start() if block_threshold else None
    server.start()
    scheme = "https" if server.ssl_enabled else "http"
    logger.info("serving on %s://%s:%d", scheme, server.server_host, server.server_port)
    try:
        stopping.wait()
        logger.info("shutting down")
        shutdown(server, app)
    finally:
        if monitor is not None:
            monitor.stop()
        for handler in handlers:
            handler.cancel()
