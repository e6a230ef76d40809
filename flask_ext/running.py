"""``socketio.run()``: the Flask application on gevent, until ``stop()`` or a signal."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask
import gevent
import gevent.event
from werkzeug.debug import DebuggedApplication

import geventsio
from flask_ext import logs

logger = logging.getLogger(__name__)

#: Seconds requests still running get to finish when the server stops.
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class RunOptions:
    """What ``run()`` was asked for, once its defaults are resolved."""

    host: str
    port: int
    debug: bool
    use_reloader: bool
    log_output: bool
    reloader_options: dict[str, Any] = field(default_factory=dict)
    certfile: str | None = None
    keyfile: str | None = None


def resolve_options(
    app: flask.Flask,
    host: str | None,
    port: int | None,
    debug: bool | None,
    use_reloader: bool | None,
    log_output: bool | None,
    reloader_options: dict[str, Any] | None,
    extra_files: list[str] | None,
    certfile: str | None,
    keyfile: str | None,
) -> RunOptions:
    """Fill in Flask-SocketIO's defaults: port from ``SERVER_NAME`` or 5000; the reloader
    and the access log follow ``debug``, which follows ``app.debug``."""
    if port is None:
        server_name = app.config.get("SERVER_NAME")
        port = int(server_name.rsplit(":", 1)[1]) if server_name and ":" in server_name else 5000
    debug = app.debug if debug is None else debug
    options = dict(reloader_options or {})
    if extra_files:
        options["extra_files"] = extra_files
    return RunOptions(
        host=host or "127.0.0.1",
        port=port,
        debug=debug,
        use_reloader=debug if use_reloader is None else use_reloader,
        log_output=debug if log_output is None else log_output,
        reloader_options=options,
        certfile=certfile,
        keyfile=keyfile,
    )


class Runner:
    """One ``run()``: the gevent WSGI server, and the event that stops it.

    :param wsgi_app: the :class:`geventsio.WSGIApp` inside the Flask application (its
        ``shutdown()`` closes the Socket.IO sessions).
    :param app: the Flask application to serve.
    :param options: the run options.
    """

    def __init__(self, wsgi_app: geventsio.WSGIApp, app: flask.Flask, options: RunOptions) -> None:
        self.wsgi_app = wsgi_app
        self.app = app
        self.options = options
        self.server: Any = None
        self._stopping = gevent.event.Event()

    def run(self, on_started: Callable[[Any], None]) -> None:
        """Serve until :meth:`stop` (or SIGINT/SIGTERM), with the reloader when asked."""
        self.app.debug = self.options.debug
        if self.options.debug and not isinstance(self.wsgi_app.wsgi_app, DebuggedApplication):
            # The debugger goes between geventsio and Flask, as Flask-SocketIO puts it.
            self.wsgi_app.wsgi_app = DebuggedApplication(self.wsgi_app.wsgi_app, evalex=True)
        if self.options.log_output:
            logs.configure(("geventsio.serving.access",), True)
        if self.options.use_reloader:
            # Werkzeug's reloader has no public entry point but run_simple (which brings
            # Werkzeug's own server): its private one, imported only when asked for.
            from werkzeug._reloader import run_with_reloader

            run_with_reloader(lambda: self._serve(on_started), **self.options.reloader_options)
        else:
            self._serve(on_started)

    def _serve(self, on_started: Callable[[Any], None]) -> None:
        options = self.options
        self.wsgi_app.serve_as_runner()  # with a Redis adapter: shares its sessions
        self.server = geventsio.make_server(
            self.app,
            options.host,
            options.port,
            certfile=options.certfile,
            keyfile=options.keyfile,
            log_requests=options.log_output,
        )
        signals = []
        if gevent.get_hub().loop.default:  # signals can only be watched in the main thread
            signals = [
                gevent.signal_handler(number, self._stopping.set)
                for number in (signal.SIGINT, signal.SIGTERM)
            ]
        self.server.start()
        logger.info(
            "serving on %s://%s:%d",
            "https" if options.certfile else "http",
            options.host,
            self.server.server_port,
        )
        on_started(self.server)
        try:
            self._stopping.wait()
            logger.info("stopping")
            self.server.close()
            self.wsgi_app.shutdown()
            self.server.stop(timeout=STOP_TIMEOUT)
        finally:
            for handler in signals:
                handler.cancel()

    def stop(self) -> None:
        """Ask :meth:`run` to stop; returns at once (callable from a handler or a view)."""
        self._stopping.set()
