"""``socketio.run()`` and ``socketio.stop()``, over real HTTP."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable
from typing import Any

import gevent
import pytest
from flask import Flask
from werkzeug.debug import DebuggedApplication

from flask_ext import SocketIO, running
from tests.flask_ext.app import create_app
from tests.support import wait_until


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_run_announces_a_sub_second_ping_interval_and_stops_from_a_view() -> None:
    app, socketio = create_app(ping_interval=0.3, ping_timeout=0.45)
    runner = gevent.spawn(socketio.run, app, port=0)
    try:
        wait_until(lambda: socketio.wsgi_server is not None, 5, "the server to start")
        base = f"http://127.0.0.1:{socketio.wsgi_server.server_port}"
        status, body = get(base + "/socket.io/?EIO=4&transport=polling")
        assert status == 200
        assert body[0] == "0"
        handshake = json.loads(body[1:])
        assert (handshake["pingInterval"], handshake["pingTimeout"]) == (300, 450)
        assert get(base + "/stop") == (200, "stopping")
        runner.join(timeout=10)
        assert runner.dead
        assert runner.exception is None
        assert socketio.wsgi_server is None
    finally:
        runner.kill()


def test_stop_without_run_is_an_error(socketio: SocketIO) -> None:
    with pytest.raises(RuntimeError, match=r"run\(\)"):
        socketio.stop()


def test_emit_before_init_app_is_an_error() -> None:
    socketio = SocketIO()
    with pytest.raises(RuntimeError, match="init_app"):
        socketio.emit("x")


def start(socketio: SocketIO, app: Flask, **kwargs: Any) -> tuple[gevent.Greenlet, str]:
    runner = gevent.spawn(socketio.run, app, port=0, **kwargs)
    wait_until(lambda: socketio.wsgi_server is not None or runner.dead, 5, "the server")
    assert not runner.dead, runner.exception
    return runner, f"http://127.0.0.1:{socketio.wsgi_server.server_port}"


def test_stop_from_a_socketio_handler() -> None:
    app, socketio = create_app()

    @socketio.on("shutdown")
    def shutdown() -> str:
        socketio.stop()
        return "bye"

    runner, _ = start(socketio, app)
    try:
        client = socketio.test_client(app)
        assert client.emit("shutdown", callback=True) == "bye"
        runner.join(timeout=10)
        assert runner.dead and runner.exception is None
    finally:
        runner.kill()


class FakeReloader:
    """Stands for Werkzeug's run_with_reloader: records its options, runs the server."""

    def __init__(self) -> None:
        self.options: dict[str, Any] | None = None

    def __call__(self, main: Callable[[], None], **options: Any) -> None:
        self.options = options
        main()


def test_debug_adds_the_debugger_the_reloader_and_the_access_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reloader = FakeReloader()
    monkeypatch.setattr("werkzeug._reloader.run_with_reloader", reloader)
    app, socketio = create_app()
    runner, base = start(
        socketio, app, debug=True, extra_files=["settings.cfg"], allow_unsafe_werkzeug=True
    )
    try:
        assert reloader.options == {"extra_files": ["settings.cfg"]}
        assert app.debug
        assert isinstance(app.wsgi_app.wsgi_app, DebuggedApplication)  # type: ignore[attr-defined]
        assert logging.getLogger("geventsio.serving.access").level == logging.INFO
        assert get(base + "/stop") == (200, "stopping")
        runner.join(timeout=10)
        assert runner.dead and runner.exception is None
    finally:
        runner.kill()


def test_port_defaults_to_server_name_or_5000(app: Flask) -> None:
    assert (
        running.resolve_options(app, None, None, None, None, None, None, None, None, None).port
        == 5000
    )
    app.config["SERVER_NAME"] = "example.test:8123"
    options = running.resolve_options(app, None, None, None, None, None, None, None, None, None)
    assert (options.host, options.port, options.use_reloader) == ("127.0.0.1", 8123, False)


def test_unknown_run_options_are_refused(socketio: SocketIO, app: Flask) -> None:
    with pytest.raises(TypeError, match="handler_class"):
        socketio.run(app, port=0, handler_class=object)  # type: ignore[call-arg]
