"""flask_ext passes ``connection_state_recovery`` through, and ``request.recovered`` tells
a handler that the connection resumed a session (the client's transport is cut by a
proxy, the server keeps running)."""

from __future__ import annotations

from typing import Any

from flask import Flask, request

import geventsio
from flask_ext import SocketIO, join_room
from tests.support import wait_until
from tests.support.proxy import CuttableProxy


def test_request_recovered(app: Flask, serve_app: Any) -> None:
    socketio = SocketIO(app, connection_state_recovery={"max_disconnection_duration": 30})
    connects: list[tuple[str, bool]] = []
    missed: list[Any] = []

    @socketio.on("connect")
    def connect() -> None:
        connects.append((request.sid, request.recovered))  # type: ignore[attr-defined]
        join_room("news")

    server = serve_app(app, engine=socketio.server.engine)
    proxy = CuttableProxy((server.host, server.port))
    client = geventsio.Client(reconnection_delay=0.05, randomization_factor=0)
    client.on("news", lambda *args: missed.append(args))
    try:
        client.connect(proxy.url, transports=["websocket"], wait_timeout=10)
        socketio.emit("news", 1, to="news")
        wait_until(lambda: missed, 5, "the first news arrives")
        proxy.cut()
        namespace = socketio.server.of("/")  # type: ignore[union-attr]
        wait_until(lambda: not namespace.sockets, 5, "the server notices the cut")
        socketio.emit("news", 2, to="news")
        proxy.resume()
        wait_until(lambda: len(connects) == 2 and len(missed) == 2, 10, "recovered")
    finally:
        client.disconnect()
        proxy.stop()
    assert connects[0][1] is False
    assert connects[1] == (connects[0][0], True)
    assert [args[0] for args in missed] == [1, 2]
