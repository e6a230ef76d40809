"""The WSGI application: Engine.IO at its path, everything else to the wrapped app."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import gevent.lock

from geventsio.cluster import LocalCluster, Member
from geventsio.engine.server import EngineServer, StartResponse
from geventsio.engine.takeover import SOCKET_KEY
from geventsio.options import AllowRequest
from geventsio.server.server import Server
from geventsio.serving.adoption import Adopter
from geventsio.serving.static import StaticFiles, StaticFilesMapping
from geventsio.serving.stopping import (
    answers_upgrades_itself,
    pywsgi_handler_serving,
    running_gunicorn_worker,
    watch_gunicorn_worker,
)

logger = logging.getLogger(__name__)

#: Environment variables for a cluster spread over hosts
#: (:class:`geventsio.cluster.redis.RedisCluster`): the Redis URL (when the server's
#: adapter is not a Redis one), the address this host's members listen on (reachable
#: from the other hosts; default: this host's address toward Redis) and the key.
CLUSTER_REDIS_ENV = "GEVENTSIO_CLUSTER_REDIS"
CLUSTER_HOST_ENV = "GEVENTSIO_CLUSTER_HOST"
CLUSTER_KEY_ENV = "GEVENTSIO_CLUSTER_KEY"

WSGIApplication = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class HasEngine(Protocol):
    """A server built on an :class:`EngineServer` (the Socket.IO server is one)."""

    @property
    def engine(self) -> EngineServer:
        """The Engine.IO server underneath."""

    def shutdown(self, *, refuse_new: bool = False) -> None:
        """Close every connection (``refuse_new``: and accept no new one)."""


def adapter_redis(app: WSGIApp) -> tuple[str, str] | None:
    """The Redis URL and key of the server's adapter, when it is a Redis one."""
    factory = getattr(app.server, "adapter_factory", None)
    url, key = getattr(factory, "redis_url", None), getattr(factory, "key", None)
    return (url, key) if isinstance(url, str) and isinstance(key, str) else None


def _not_found(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"Not Found"]


class WSGIApp:
    """Serve Engine.IO/Socket.IO under its path and hand every other request, untouched,
    to ``wsgi_app`` (a Flask app, any legacy WSGI callable).

    :param server: a Socket.IO :class:`~geventsio.Server` or a bare :class:`EngineServer`.
    :param wsgi_app: the application for every other path; 404 when None.
    :param static_files: URL prefix -> file or folder, answered for GET and HEAD before
        ``wsgi_app`` sees the request (``{"/": "index.html", "/static": "public/"}``; see
        :class:`~geventsio.serving.static.StaticFiles`).
    :param metrics_path: serve the server's Prometheus metrics at this path (needs the
        ``metrics`` extra, ``prometheus_client``); ``self.metrics`` is then the
        :class:`~geventsio.metrics.Metrics` (its ``registry`` for more metrics of yours).
    :param metrics_allow_request: ``f(environ) -> bool``; False (or an exception) answers
        a scrape with 403. Without it, anyone who reaches the path reads the metrics.
    :param share_sessions: whether this process is one of several behind one address,
        forwarding the requests of sessions it does not own to their owner (see
        docs/deployment.md, "Several workers"). None (the default) decides at the first
        request: yes under gunicorn, and under geventsio's runner (:func:`geventsio.serve`,
        ``python -m geventsio``, flask_ext's ``run``) when the adapter is a Redis one
        (the processes then meet in its Redis, on any host). False: never (a sticky load
        balancer keeps each session on one process). Where sessions would be shared but
        cannot be (the engine's ``generate_id``; several gunicorn workers off Linux with
        no Redis), a warning is logged when the process starts: as a gunicorn worker
        imports this application, or as a runner starts serving it.
    :param adopt_connections: under ``gunicorn -k gevent``, pywsgi's handler or
        gevent-websocket's (its handler or its gunicorn worker), serve a kept-alive
        connection with geventsio's own HTTP handler once that server answered a
        request on it (twice the long-polling rate; see
        :mod:`geventsio.serving.adoption`). False leaves every request to that server.
    :raises ValueError: ``metrics_path`` with a bare engine (metrics need a Socket.IO
        server), or on the Engine.IO path; ``share_sessions=True`` with the engine's
        ``generate_id`` (such ids name no process).
    """

    def __init__(
        self,
        server: EngineServer | HasEngine,
        wsgi_app: WSGIApplication | None = None,
        *,
        static_files: StaticFilesMapping | None = None,
        metrics_path: str | None = None,
        metrics_allow_request: AllowRequest | None = None,
        share_sessions: bool | None = None,
        adopt_connections: bool = True,
    ) -> None:
        self.server = server
        self.engine = server if isinstance(server, EngineServer) else server.engine
        self.wsgi_app = wsgi_app or _not_found
        self.static_files = StaticFiles(static_files) if static_files else None
        path = self.engine.options.path
        self._paths = (path, path.rstrip("/"))
        self._host_seen = False
        self._seeing_host = gevent.lock.Semaphore()
        if share_sessions and self.engine.options.generate_id is not None:
            raise ValueError(
                "share_sessions needs geventsio's session ids (each names its process): "
                "drop generate_id, or serve behind a sticky load balancer"
            )
        self.share_sessions = share_sessions
        # Other HTTP stacks' kept-alive connections, served by geventsio's handler.
        self._adopter = Adopter() if adopt_connections else None
        #: Set by the runner serving this application as the process's own
        #: (:func:`geventsio.serving.run_server`, flask_ext's ``run``).
        self.runner = False
        #: The processes this one shares sessions with, once it does, or None.
        self.cluster: Member | None = None
        self._told_why_not = False
        worker = running_gunicorn_worker()
        if worker is not None:  # imported by a gunicorn worker: say now what will not work
            self._check_sharing(worker)
        self.metrics: Any = None
        self.metrics_path = metrics_path
        self._metrics_app: WSGIApplication = _not_found
        if metrics_path is not None:
            self._serve_metrics(metrics_path, metrics_allow_request)

    def _serve_metrics(self, path: str, allow_request: AllowRequest | None) -> None:
        if not isinstance(self.server, Server):
            raise ValueError("metrics_path needs a geventsio.Server, not a bare engine")
        if path in self._paths:
            raise ValueError(f"metrics_path {path!r} is the Engine.IO path")
        try:
            from geventsio.metrics import Metrics, metrics_endpoint
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                "metrics_path needs prometheus_client: pip install 'geventsio[metrics]'"
            ) from exc
        self.metrics = Metrics(self.server)
        self._metrics_app = metrics_endpoint(self.metrics, allow_request)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # An Engine.IO request on geventsio's handler (a long-poll's every request) first.
        if environ.get("PATH_INFO") in self._paths and SOCKET_KEY in environ and self._host_seen:
            return self.engine.handle_request(environ, start_response)
        return self._serve_request(environ, start_response)

    def _serve_request(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        if not self._host_seen:
            # Joining a cluster may wait for Redis: the requests that come meanwhile wait
            # too, or they would open sessions no other process could route to.
            with self._seeing_host:
                if not self._host_seen:
                    try:
                        self._first_request()
                    finally:
                        self._host_seen = True
        path = environ.get("PATH_INFO", "")
        if path in self._paths:
            result = self.engine.handle_request(environ, start_response)
            if self._adopter is not None and SOCKET_KEY not in environ:  # not our handler
                return self._adopter.after(result, environ)
            return result
        if path == self.metrics_path:
            return self._metrics_app(environ, start_response)
        if self.static_files is not None:
            response = self.static_files(environ, start_response)
            if response is not None:
                return response
        return self.wsgi_app(environ, start_response)

    def _first_request(self) -> None:
        # Under a gunicorn worker that does not tell the application it stops (-k gevent,
        # gevent-websocket's worker), notice it here: see geventsio.serving.stopping.
        # And say at once when the server answers WebSocket handshakes itself.
        watch_gunicorn_worker(self.shutdown)
        if answers_upgrades_itself(pywsgi_handler_serving()):
            self.engine.hosts.server_answers_upgrades()
        self._join_workers()

    def serve_as_runner(self) -> None:
        """Say that a runner serves this application as its process's own
        (:func:`geventsio.serving.run_server`, flask_ext's ``run``): with a Redis adapter it
        then shares its sessions with the other processes in that Redis. Logs at once, at
        WARNING, when it could not (the engine's ``generate_id``)."""
        self.runner = True
        self._check_sharing(running_gunicorn_worker())

    def _shares(self, worker: Any) -> bool:
        if self.share_sessions is not None:
            return self.share_sessions
        return worker is not None or (self.runner and adapter_redis(self) is not None)

    def _sharing_problem(self, worker: Any) -> str | None:
        """Why this process could not share its long-polling sessions with the others
        serving the same address, or None (also None when it serves alone)."""
        if not self._shares(worker):
            return None
        redis_url = os.environ.get(CLUSTER_REDIS_ENV) or adapter_redis(self)
        workers = getattr(getattr(worker, "cfg", None), "workers", 1)
        if self.share_sessions is None and worker is not None and not redis_url and workers == 1:
            return None  # one gunicorn worker, no other host: alone
        if self.engine.options.generate_id is not None:
            return (
                "generate_id is set: session ids name no process, so the long-polling "
                "requests of a session must all reach the process that opened it (a sticky "
                "load balancer, or WebSocket only); drop generate_id to share sessions"
            )
        if not redis_url and worker is not None and not LocalCluster.supported():
            return (
                f"the workers of this gunicorn cannot share long-polling sessions on "
                f"{sys.platform} (no abstract unix sockets): run one worker, use "
                "WebSocket only, or a Redis adapter"
            )
        return None

    def _check_sharing(self, worker: Any) -> bool:
        """Log (once) why sessions cannot be shared; whether they can."""
        problem = self._sharing_problem(worker)
        if problem is not None and not self._told_why_not:
            logger.warning("%s", problem)
            self._told_why_not = True
        return problem is None

    def _join_workers(self) -> None:
        # The processes of a cluster share their sessions: each forwards the requests of
        # the others' sessions to their owner (geventsio.cluster). Across hosts when they
        # meet in Redis (their adapter's, or GEVENTSIO_CLUSTER_REDIS); else the workers of
        # one gunicorn, on this host.
        engine = self.engine
        worker = running_gunicorn_worker()
        if engine.router is not None or not self._shares(worker):
            return
        if not self._check_sharing(worker):
            return
        redis_url, redis_key = os.environ.get(CLUSTER_REDIS_ENV), "geventsio"
        if not redis_url:
            redis_url, redis_key = adapter_redis(self) or (None, redis_key)
        if redis_url:
            self._join_hosts(redis_url, os.environ.get(CLUSTER_KEY_ENV, f"{redis_key}-cluster"))
        elif worker is None or not LocalCluster.supported():
            return  # one process alone, or one gunicorn worker (with several: told above)
        else:
            self.cluster = LocalCluster(engine, group=f"gunicorn-{worker.ppid}")
            self.cluster.start()

    def _join_hosts(self, redis_url: str, key: str) -> None:
        from geventsio.cluster.redis import RedisCluster, local_address_toward  # redis extra

        host = os.environ.get(CLUSTER_HOST_ENV) or local_address_toward(redis_url)
        self.cluster = RedisCluster(self.engine, redis_url, host=host, key=key)
        self.cluster.start()

    def shutdown(self) -> None:
        """The process is stopping (:func:`geventsio.serving.serve` on SIGTERM, the
        gunicorn workers): close every session, and answer new handshakes with 503 so that
        reconnecting clients find another server."""
        if isinstance(self.server, EngineServer):
            self.server.close_all(refuse_new=True)
        else:
            self.server.shutdown(refuse_new=True)
        if self._adopter is not None:
            self._adopter.close_idle()
        if self.cluster is not None:  # after the sessions' last packets were collected
            self.cluster.stop()
            self.cluster = None
