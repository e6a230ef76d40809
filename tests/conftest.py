"""Fixtures shared by every test: live servers on 127.0.0.1:0 with a leak check.

The tests are cooperative, so the standard library is monkey-patched here, before anything
else is imported; the library itself never patches.
"""

from gevent import monkey

monkey.patch_all()

# ruff: noqa: E402 -- the imports below must come after patching.
from tests.build import select_build

select_build()  # compiled geventsio or its sources (GEVENTSIO_TEST_BUILD), before importing it

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from geventwebsocket.handler import WebSocketHandler

from geventsio.engine.server import EngineServer
from geventsio.engine.socket import EngineHandler
from geventsio.options import EngineOptions
from geventsio.wsgi import WSGIApp, WSGIApplication
from tests.redis.harness import RedisServer, redis_answers
from tests.support.proxy import CuttableProxy
from tests.support.server import LiveServer, RecordingEcho, live_greenlets

ServeApp = Callable[..., LiveServer]
EioServer = Callable[..., LiveServer]


@pytest.fixture
def serve_app() -> Iterator[ServeApp]:
    """Start WSGI apps on 127.0.0.1:0: ``serve_app(app, engine=None, handler_class=None)``.

    Every server is stopped at teardown (its clients closed, its sessions closed), and
    then, within a bounded wait, the engine must hold no session and every greenlet
    started during the test must have finished.
    """
    greenlets_before = {id(g) for g in live_greenlets()}
    servers: list[LiveServer] = []

    def start(
        app: WSGIApplication,
        *,
        engine: EngineServer | None = None,
        handler: Any = None,
        handler_class: type | None = None,
    ) -> LiveServer:
        server = LiveServer(app, engine=engine, handler=handler, handler_class=handler_class)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    for server in servers:
        server.check_no_leaks(greenlets_before)


@pytest.fixture
def eio_server(serve_app: ServeApp) -> EioServer:
    """Start an Engine.IO server: ``eio_server(handler=None, *, gevent_websocket=False,
    wsgi_app=None, **engine_options) -> LiveServer``.

    The handler defaults to a :class:`RecordingEcho` (``server.handler``); options are
    :class:`EngineOptions` fields; ``gevent_websocket=True`` serves through
    gevent-websocket's ``WebSocketHandler`` (the ``wsgi.websocket`` path) instead of
    geventsio's handler; ``wsgi_app`` is the app for other paths.
    """

    def start(
        handler: EngineHandler | None = None,
        *,
        gevent_websocket: bool = False,
        wsgi_app: WSGIApplication | None = None,
        **options: Any,
    ) -> LiveServer:
        handler = handler if handler is not None else RecordingEcho()
        engine = EngineServer(handler, EngineOptions(**options))
        return serve_app(
            WSGIApp(engine, wsgi_app),
            engine=engine,
            handler=handler,
            handler_class=WebSocketHandler if gevent_websocket else None,
        )

    return start


@pytest.fixture
def echo_server(eio_server: EioServer) -> LiveServer:
    """An Engine.IO echo server with the default options."""
    return eio_server()


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The Redis every test shares (the one on 6379, else one started for the session)."""
    if redis_answers(DEFAULT_REDIS_URL):
        yield DEFAULT_REDIS_URL
        return
    server = RedisServer()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def key() -> str:
    """A channel prefix of this test's own (isolates it from every other test)."""
    return f"gsio-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def proxies() -> Iterator[list[CuttableProxy]]:
    """TCP proxies a test starts (``tests/support/proxy.py``), stopped at teardown."""
    started: list[CuttableProxy] = []
    yield started
    for proxy in started:
        proxy.stop()
