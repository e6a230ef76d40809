"""gunicorn worker classes that stop Socket.IO sessions gracefully.

    gunicorn -k geventsio.serving.gunicorn.GeventWorker -w 1 module:app
    gunicorn -k geventsio.serving.gunicorn.GeventWebSocketWorker -w 1 module:app

gunicorn's gevent workers stop accepting when told to stop (SIGTERM, ``max_requests``
reached, a reload), then wait up to ``graceful_timeout`` for the connections still open
to end. A WebSocket or a long-polling session never ends by itself, so every such worker
waits the whole timeout and then cuts its clients off mid-stream. These workers call the
application's ``shutdown()`` as soon as they are told to stop: every session is closed
with the reason "server shutting down" after its queued packets are written, and clients
reconnect -- to another worker, or to this worker's replacement, their connection waiting
in the listen queue meanwhile. Once gunicorn has closed the worker's listening sockets
(within a second), ``shutdown()`` is called again for the clients that reconnected too
early and reached this worker again; the worker then exits.

The application is found in what gunicorn loaded: the object itself, or following
``wsgi_app`` attributes (a Flask app whose ``wsgi_app`` is a :class:`geventsio.WSGIApp`),
the first one with an ``engine`` and a ``shutdown()``.

At start they also check that monkey-patching came early enough (with ``preload_app``
the application was imported, unpatched, by the arbiter), and start a
:class:`~geventsio.serving.monitor.BlockingMonitor` when ``GEVENTSIO_BLOCK_THRESHOLD``
(seconds) is set in the environment (``--env GEVENTSIO_BLOCK_THRESHOLD=0.1``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import gevent
from geventwebsocket.gunicorn.workers import GeventWebSocketWorker as _GeventWebSocketWorker
from gunicorn.workers.ggevent import GeventPyWSGIWorker as _GeventPyWSGIWorker
from gunicorn.workers.ggevent import PyWSGIHandler as _PyWSGIHandler

from geventsio.serving.handler import GeventsioHandler
from geventsio.serving.monitor import BlockingMonitor
from geventsio.serving.patching import check_patching
from geventsio.serving.stopping import (
    CLOSING_TIMEOUT,
    close_sessions_of_stopping_worker,
    find_geventsio_app,
)

#: Environment variable: enable the blocking monitor with this threshold in seconds.
BLOCK_THRESHOLD_ENV = "GEVENTSIO_BLOCK_THRESHOLD"

#: Packages that gunicorn's arbiter imports before a worker can patch: not the user's.
_ARBITER_PACKAGES = frozenset({"gunicorn", "geventwebsocket", "packaging", "geventsio"})


def _imported_by_arbiter(loaded: frozenset[str]) -> Callable[[str], bool]:
    """Modules loaded before the worker patched that are not the user's to fix."""

    def ignore(name: str) -> bool:
        top = name.partition(".")[0]
        return name in loaded and (top in sys.stdlib_module_names or top in _ARBITER_PACKAGES)

    return ignore


class GracefulShutdownMixin:
    """Close the geventsio sessions as soon as the worker stops accepting."""

    #: Tells :func:`geventsio.serving.stopping.watch_gunicorn_worker` to stand aside.
    closes_sessions_itself = True

    _alive: bool = False
    _stopping: Any = None
    sockets: list[Any]
    log: Any
    cfg: Any
    wsgi: Any

    @property
    def alive(self) -> bool:
        """gunicorn's flag; setting it false (SIGTERM, max_requests) starts the shutdown."""
        return self._alive

    @alive.setter
    def alive(self, value: bool) -> None:
        was_alive, self._alive = self._alive, value
        if was_alive and not value and self._stopping is None:
            # Possibly in a signal handler: only schedule.
            self._stopping = gevent.spawn(self._shut_down_sessions)

    def patch(self) -> None:
        loaded = frozenset(sys.modules)
        super().patch()  # type: ignore[misc]
        if self.cfg.preload_app:  # else the application is imported after patching
            check_patching(True, ignore=_imported_by_arbiter(loaded))

    def load_wsgi(self) -> None:
        super().load_wsgi()  # type: ignore[misc]
        if find_geventsio_app(self.wsgi) is None:
            self.log.warning(
                "%s: no geventsio.WSGIApp found in the application (looked at it and its "
                "wsgi_app attributes): Socket.IO sessions will not be closed at shutdown",
                type(self).__name__,
            )

    def run(self) -> None:
        threshold = self._block_threshold()
        monitor = BlockingMonitor(threshold).start() if threshold else None
        try:
            super().run()  # type: ignore[misc]
            # gunicorn returns once no *request* runs; a WebSocket taken over from its
            # request is none: let the closing finish.
            if self._stopping is not None:
                self._stopping.join(CLOSING_TIMEOUT)
        finally:
            if monitor is not None:
                monitor.stop()

    def _block_threshold(self) -> float | None:
        value = os.environ.get(BLOCK_THRESHOLD_ENV, "").strip()
        try:
            threshold = float(value) if value else None
        except ValueError:
            threshold = -1.0
        if threshold is not None and not threshold > 0:
            self.log.warning(
                "ignored %s=%r: not a number of seconds above 0", BLOCK_THRESHOLD_ENV, value
            )
            return None
        return threshold

    def _shut_down_sessions(self) -> None:
        target = find_geventsio_app(getattr(self, "wsgi", None))
        if target is None:
            return
        close_sessions_of_stopping_worker(self, target.shutdown)


def _access_log_enabled(cfg: Any) -> bool:
    """Whether gunicorn writes an access log (as gunicorn's own logger decides)."""
    return bool(
        getattr(cfg, "accesslog", None)
        or getattr(cfg, "logconfig", None)
        or getattr(cfg, "logconfig_dict", None)
        or getattr(cfg, "logconfig_json", None)
        or (
            getattr(cfg, "syslog", False)
            and not getattr(cfg, "disable_redirect_access_to_syslog", False)
        )
    )


class GunicornHandler(GeventsioHandler, _PyWSGIHandler):  # type: ignore[misc]
    """geventsio's handler in a gunicorn worker: gunicorn's access log (only when one is
    configured) and environ keys, and every request counted for ``max_requests``."""

    #: The worker this handler serves for (set on a subclass made by each worker).
    worker: Any = None
    access_log = False
    response_headers: list[tuple[bytes, bytes]] | None

    def log_request(self) -> None:
        if self.access_log:
            if self.response_headers is None:  # a WebSocket: its 101 was written by us
                self.response_headers = []
            _PyWSGIHandler.log_request(self)

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["gunicorn.sock"] = self.socket
        environ["RAW_URI"] = self.path
        return environ

    def handle_one_response(self) -> None:
        super().handle_one_response()
        worker = self.worker
        if worker is None:
            return
        worker.nr += 1
        if worker.nr >= worker.max_requests and worker.alive:
            worker.log.info("Autorestarting worker after current request.")
            worker.alive = False


class GeventWorker(GracefulShutdownMixin, _GeventPyWSGIWorker):  # type: ignore[misc]
    """gunicorn's gevent worker serving with geventsio's handler (the runner's speed:
    gunicorn's own HTTP parser costs about twice as much per long-polling request), with
    graceful Socket.IO shutdown and ``max_requests`` counted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wsgi_handler = type(
            "GunicornHandler",
            (GunicornHandler,),
            {"worker": self, "access_log": _access_log_enabled(self.cfg)},
        )


class GeventWebSocketWorker(GracefulShutdownMixin, _GeventWebSocketWorker):  # type: ignore[misc]
    """gevent-websocket's gunicorn worker, with graceful Socket.IO shutdown."""
