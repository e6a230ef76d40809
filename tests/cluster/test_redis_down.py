"""A member whose Redis is unreachable: new long-polling sessions are refused (nobody
could route to them), WebSocket sessions are not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from geventsio.cluster.redis import RedisCluster
from geventsio.engine.server import EngineServer
from geventsio.wsgi import WSGIApp
from tests.deploy.processes import free_port
from tests.support import LiveServer, RecordingEcho, open_websocket


@pytest.fixture
def lonely() -> Iterator[tuple[LiveServer, RedisCluster]]:
    handler = RecordingEcho()
    engine = EngineServer(handler)
    cluster = RedisCluster(engine, f"redis://127.0.0.1:{free_port()}/0")
    cluster.start()
    server = LiveServer(WSGIApp(engine), engine=engine, handler=handler)
    try:
        yield server, cluster
    finally:
        server.stop()
        cluster.stop()


def test_new_polling_sessions_are_refused_with_503(lonely) -> None:
    server, cluster = lonely
    assert not cluster.registered
    response = server.http().get("/socket.io/?EIO=4&transport=polling")
    assert response.status == 503
    assert server.session_count == 0


def test_websocket_sessions_are_opened(lonely) -> None:
    server, cluster = lonely
    ws, opened = open_websocket(server)
    assert opened["sid"].endswith("." + cluster.tag)
    ws.send_text("4still here")
    assert ws.recv(timeout=5) == "4still here"
    ws.close()
