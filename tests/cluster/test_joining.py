"""When a process shares its sessions, and through what: WSGIApp decides at the first
request, from how it is served and from its adapter."""

from __future__ import annotations

import pytest
import redis

import geventsio
from geventsio.cluster.redis import RedisCluster, local_address_toward
from geventsio.options import EngineOptions


def served_once(serve_app, app: geventsio.WSGIApp) -> None:
    """Serve ``app`` and make its first request (a handshake, closed at once)."""
    live = serve_app(app, engine=app.engine)
    opened = live.http().get("/socket.io/?EIO=4&transport=polling")
    assert opened.status == 200, opened


def registered_address(redis_url: str, cluster: RedisCluster) -> str | None:
    client = redis.Redis.from_url(redis_url)
    try:
        value = client.get(f"{cluster.key}#{cluster.tag}")
    finally:
        client.close()
    return None if value is None else value.decode()


def test_a_runner_with_a_redis_adapter_joins_the_hosts_in_that_redis(
    serve_app, redis_url, key
) -> None:
    sio = geventsio.Server(adapter=geventsio.redis_adapter(redis_url, key=key))
    app = geventsio.WSGIApp(sio)
    app.runner = True  # as geventsio's runner and flask_ext's run set it
    try:
        served_once(serve_app, app)
        cluster = app.cluster
        assert isinstance(cluster, RedisCluster)
        assert cluster.key == f"{key}-cluster"
        assert cluster.address is not None and cluster.address[0] == "127.0.0.1"
        assert registered_address(redis_url, cluster) == f"127.0.0.1:{cluster.address[1]}"
        assert sio.engine.router is cluster
    finally:
        app.shutdown()
    assert app.cluster is None and sio.engine.router is None
    assert registered_address(redis_url, cluster) is None  # it said it left


def test_an_embedded_server_keeps_its_sessions(serve_app, redis_url, key) -> None:
    """Served by something else than a runner, and not under gunicorn: one process, as
    far as it can tell (share_sessions=True or GEVENTSIO_CLUSTER_REDIS say otherwise)."""
    sio = geventsio.Server(adapter=geventsio.redis_adapter(redis_url, key=key))
    app = geventsio.WSGIApp(sio)
    served_once(serve_app, app)
    assert app.cluster is None and sio.engine.router is None
    sio.shutdown()


def test_share_sessions_true_joins_without_a_runner(serve_app, redis_url, key) -> None:
    sio = geventsio.Server(adapter=geventsio.redis_adapter(redis_url, key=key))
    app = geventsio.WSGIApp(sio, share_sessions=True)
    try:
        served_once(serve_app, app)
        assert isinstance(app.cluster, RedisCluster)
    finally:
        app.shutdown()


def test_share_sessions_false_never_joins(serve_app, redis_url, key) -> None:
    sio = geventsio.Server(adapter=geventsio.redis_adapter(redis_url, key=key))
    app = geventsio.WSGIApp(sio, share_sessions=False)
    app.runner = True
    served_once(serve_app, app)
    assert app.cluster is None
    sio.shutdown()


def test_a_runner_with_the_memory_adapter_is_alone(serve_app) -> None:
    sio = geventsio.Server()
    app = geventsio.WSGIApp(sio)
    app.runner = True
    served_once(serve_app, app)
    assert app.cluster is None
    sio.shutdown()


def test_share_sessions_with_generate_id_is_refused_at_once() -> None:
    engine = geventsio.Server(generate_id=lambda: "mine").engine
    assert isinstance(engine.options, EngineOptions)
    with pytest.raises(ValueError, match="generate_id"):
        geventsio.WSGIApp(engine, share_sessions=True)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("unix:///run/redis.sock", "127.0.0.1"),
        ("redis://127.0.0.1:6379/0", "127.0.0.1"),
        ("redis://localhost/0", "127.0.0.1"),
        ("rediss://:secret@127.0.0.1:6380", "127.0.0.1"),
    ],
)
def test_the_address_toward_redis(url: str, address: str) -> None:
    assert local_address_toward(url) == address


def test_a_runner_with_generate_id_says_at_start_up_that_it_cannot_share(
    serve_app, redis_url, key, caplog
) -> None:
    """A Redis adapter under a runner would share sessions, but ids of the application's
    own name no process: said when the runner starts, before any request, and once."""
    sio = geventsio.Server(
        adapter=geventsio.redis_adapter(redis_url, key=key), generate_id=lambda environ: "mine"
    )
    app = geventsio.WSGIApp(sio)
    app.serve_as_runner()
    assert [r.getMessage() for r in caplog.records if "generate_id" in r.getMessage()] != []
    caplog.clear()

    served_once(serve_app, app)

    assert app.cluster is None and sio.engine.router is None
    assert "generate_id" not in caplog.text  # not said again at the first request
    sio.shutdown()


def test_a_runner_alone_with_generate_id_says_nothing(caplog) -> None:
    app = geventsio.WSGIApp(geventsio.Server(generate_id=lambda environ: "mine"))
    app.serve_as_runner()
    assert "generate_id" not in caplog.text
