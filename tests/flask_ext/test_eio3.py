"""flask_ext with ``allow_eio3=True`` (geventsio's option, passed through) against the real
socket.io-client 2.x: Flask-SocketIO's handler API works the same for a 2.x client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, request

from flask_ext import ConnectionRefusedError, SocketIO, emit, join_room
from tests.server.sio_support import events, run_plan
from tests.support import LiveServer

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("transports", ["polling", "upgrade"])
def test_a_v2_client_through_flask_ext(serve_app: Callable[..., LiveServer], transports) -> None:
    app = Flask(__name__)
    socketio = SocketIO(app, allow_eio3=True)
    chat_auth: list[Any] = []

    @socketio.on("whoami")
    def whoami(blob: bytes) -> tuple[str, str, bytes]:
        join_room("news")
        emit("pushed", {"sid": request.sid}, to="news")  # type: ignore[attr-defined]
        return request.sid, request.namespace, blob[::-1]  # type: ignore[attr-defined]

    @socketio.on("connect", namespace="/chat")
    def chat_connect(auth: Any) -> None:
        chat_auth.append(auth)

    @socketio.on("connect", namespace="/closed")
    def closed_connect() -> None:
        raise ConnectionRefusedError("members only")

    assert socketio.server is not None
    server = serve_app(app, engine=socketio.server.engine)
    report = run_plan(
        server.url,
        [
            {"op": "connect", "as": "a", "listen": ["pushed"]},
            {"op": "emit", "as": "a", "event": "whoami", "args": [{"$bin": "0102"}], "ack": True},
            {"op": "waitEvent", "as": "a", "event": "pushed"},
            {"op": "connect", "as": "c", "nsp": "/chat", "opts": {"query": {"room": "x"}}},
            {"op": "connect", "as": "x", "nsp": "/closed", "wait": "error"},
        ],
        transports=transports,
        script="sio_v2_plan.mjs",
    )
    engine_id = report["clients"]["a"]["engineIds"][0]
    assert report["results"]["whoami"]["args"] == [engine_id, "/", {"$bin": "0201"}]
    assert events(report, "a", "pushed") == [[{"sid": engine_id}]]
    assert chat_auth == [{"room": "x"}]
    assert report["clients"]["x"]["errors"] == ["members only"]
