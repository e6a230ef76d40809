"""A member whose Redis is unreachable: new long-polling sessions are refused (nobody
could route to them), WebSocket sessions are not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from geventsio.cluster.redis import RedisCluster
from geventsio.engine.server import EngineServer
from geventsio.wsgi import WSGIApp
from tests.deploy.processes import free_port
from tests.support import LiveServer, RecordingEcho, open_websocket, wait_until
from tests.support.proxy import CuttableProxy


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


def test_redis_lost_mid_run_refuses_new_polling_keeps_websockets_and_recovers(
    proxies, redis_url, key, monkeypatch, caplog
) -> None:
    """Redis goes away after the member registered: at its next refresh the member logs
    it and refuses new long-polling sessions (503); its WebSocket client goes on; once
    Redis is back, so are new polling sessions."""
    monkeypatch.setattr("geventsio.cluster.redis.REFRESH", 0.05)
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = CuttableProxy(("127.0.0.1", redis_port))
    proxies.append(proxy)
    handler = RecordingEcho()
    engine = EngineServer(handler)
    cluster = RedisCluster(engine, proxy.url.replace("http://", "redis://") + "/0", key=key)
    cluster.start()
    server = LiveServer(WSGIApp(engine), engine=engine, handler=handler)
    try:
        assert cluster.registered
        ws, _ = open_websocket(server)
        proxy.cut()
        wait_until(lambda: not cluster.registered, 5.0, "the member notices")
        assert "Redis unreachable" in caplog.text
        refused = server.http().get("/socket.io/?EIO=4&transport=polling")
        assert refused.status == 503, refused  # Node's body; the reason is in the log
        ws.send_text("4still here")
        assert ws.recv(timeout=5) == "4still here"

        proxy.resume()
        wait_until(lambda: cluster.registered, 5.0, "registered again")
        opened = server.http().get("/socket.io/?EIO=4&transport=polling")
        assert opened.status == 200, opened
        ws.close()
    finally:
        server.stop()
        cluster.stop()
