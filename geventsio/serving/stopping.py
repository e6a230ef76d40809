"""What the application learns of the server running it: a gunicorn worker stopping,
a handler that answers WebSocket handshakes itself.

gunicorn's gevent workers (``-k gevent``, ``-k gevent_pywsgi``, gevent-websocket's
worker) never tell the application that they stop: on SIGTERM, ``max_requests`` or a
reload they clear their ``alive`` flag, close their listening sockets within a second,
then wait ``graceful_timeout`` for the open connections to end. A WebSocket or a
long-polling session never ends by itself, so without help every client stays on the
old worker until it is killed.

:func:`watch_gunicorn_worker` finds the worker from the application's side (on the main
greenlet's stack: the worker's ``run()`` never returns while it serves) and watches its
flag. When it clears, every session is closed with "server shutting down" and new
handshakes are answered 503; clients reconnect to the replacement worker, their
connection waiting in the listen queue meanwhile. Once the worker's listening sockets
are closed, the sessions of clients that came back too early are closed too.

geventsio's worker classes (:mod:`geventsio.serving.gunicorn`) do the same from inside
the worker, without watching; with them the watcher stands aside.
"""

from __future__ import annotations

import atexit
import logging
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import gevent
from greenlet import getcurrent

logger = logging.getLogger(__name__)

#: How often the watcher looks at the worker's ``alive`` flag, in seconds.
WATCH_INTERVAL = 0.1
#: How often a stopping worker is checked for closed listening sockets, in seconds.
LISTENER_POLL = 0.05
#: How long a stopping worker's process waits at exit for its sessions to be closed.
CLOSING_TIMEOUT = 5.0
#: How many frames of the main greenlet's stack are searched for the worker.
_MAX_FRAMES = 64
#: How many ``wsgi_app`` wrappers deep to look for the geventsio application.
_MAX_WRAPPERS = 8


def find_geventsio_app(app: Any) -> Any:
    """The geventsio application in ``app`` (itself, or down a chain of ``wsgi_app``, as
    in a Flask app, and ``app``, as in Werkzeug's middlewares), or None."""
    for _ in range(_MAX_WRAPPERS):
        if app is None:
            return None
        if hasattr(app, "engine") and callable(getattr(app, "shutdown", None)):
            return app
        app = getattr(app, "wsgi_app", None) or getattr(app, "app", None)
    return None


def listening(sock: Any) -> bool:
    """Whether a listening socket is still open (gevent's server closes it underneath the
    socket object, whose ``closed`` stays false: its descriptor becomes -1)."""
    try:
        return bool(sock.fileno() != -1)
    except OSError:
        return False


def _self_on_stack(frame: FrameType | None, kind: type | None) -> Any:
    """The first ``self`` of type ``kind`` in the frames from ``frame`` outwards."""
    if kind is None:
        return None
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return None
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, kind):
            return candidate
        frame = frame.f_back
    return None


def running_gunicorn_worker() -> Any:
    """The gunicorn worker serving from this process, or None (not under gunicorn, or a
    worker whose ``run()`` is not on the main greenlet's stack)."""
    worker_class = getattr(sys.modules.get("gunicorn.workers.base"), "Worker", None)
    root = getcurrent()
    while root.parent is not None:
        root = root.parent
    frame = root.gr_frame if root is not getcurrent() else sys._getframe()
    return _self_on_stack(frame, worker_class)


def pywsgi_handler_serving() -> Any:
    """The pywsgi handler serving the current request (gevent-websocket's is one), found
    on the current greenlet's stack; None under another server (gunicorn -k gevent)."""
    handler_class = getattr(sys.modules.get("gevent.pywsgi"), "WSGIHandler", None)
    return _self_on_stack(sys._getframe(1), handler_class)


def answers_upgrades_itself(handler: Any) -> bool:
    """Whether ``handler`` is gevent-websocket's, which sends ``101`` before the
    application runs."""
    module = sys.modules.get("geventwebsocket.handler")
    return module is not None and isinstance(handler, module.WebSocketHandler)


def close_sessions_of_stopping_worker(worker: Any, shutdown: Callable[[], None]) -> None:
    """Close the sessions now, and again once the worker's listeners are closed."""
    # At once, while the worker still accepts: a long-polling client between two
    # requests can still come and collect its CLOSE packet.
    worker.log.info("closing the Socket.IO sessions (worker stopping)")
    shutdown()
    # gunicorn's run loop closes the listeners within a second; a client that
    # reconnected meanwhile landed here again: close those sessions too.
    with gevent.Timeout(worker.cfg.graceful_timeout / 2, False):
        while any(listening(listener) for listener in worker.sockets):
            gevent.sleep(LISTENER_POLL)
    shutdown()


def _watch(worker: Any, shutdown: Callable[[], None]) -> None:
    while worker.alive:
        gevent.sleep(WATCH_INTERVAL)
    # gunicorn's worker exits once no *request* is running; a WebSocket taken over from
    # its request is none: let the closing finish before the process ends.
    atexit.register(getcurrent().join, CLOSING_TIMEOUT)
    close_sessions_of_stopping_worker(worker, shutdown)


def watch_gunicorn_worker(shutdown: Callable[[], None]) -> gevent.Greenlet[..., Any] | None:
    """Call ``shutdown`` when the gunicorn worker running this process starts stopping.

    :returns: the watching greenlet; None when there is nothing to watch (not under
        gunicorn, or under a worker that closes the sessions itself).
    """
    worker = running_gunicorn_worker()
    if worker is None or getattr(worker, "closes_sessions_itself", False):
        return None
    logger.debug("watching %s for its stop", type(worker).__name__)
    return gevent.spawn(_watch, worker, shutdown)
