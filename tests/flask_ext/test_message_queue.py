"""message_queue: Flask apps sharing rooms and broadcasts through the real Redis, and the
write-only SocketIO (no app) emitting into them, as Flask-SocketIO users do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask

from flask_ext import SocketIO, join_room
from tests.support.waiting import wait_until


def subscribers(redis_url: str, channel: str) -> int:
    client = redis.Redis.from_url(redis_url, protocol=2)
    try:
        return int(dict(client.pubsub_numsub(channel))[channel.encode()])
    finally:
        client.close()


@pytest.fixture
def servers(redis_url: str, key: str) -> Iterator[list[SocketIO]]:
    """SocketIO servers made by the test; their adapters are closed at teardown."""
    made: list[SocketIO] = []
    yield made
    for socketio in made:
        assert socketio.server is not None
        socketio.server.shutdown()


def news_server(redis_url: str, key: str, servers: list[SocketIO]) -> tuple[Flask, SocketIO]:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    socketio = SocketIO(app, message_queue=redis_url, channel=key)
    servers.append(socketio)

    @socketio.on("connect")
    def connect() -> None:
        join_room("news")

    wait_until(
        lambda: subscribers(redis_url, f"{key}-request#/#") >= 1, 5.0, "the adapter subscribed"
    )
    return app, socketio


def received(client: Any, into: list[dict[str, Any]]) -> list[dict[str, Any]]:
    into.extend(client.get_received())
    return into


def test_a_write_only_socketio_reaches_the_clients_of_a_server(
    redis_url: str, key: str, servers: list[SocketIO]
) -> None:
    app, socketio = news_server(redis_url, key, servers)
    client = socketio.test_client(app)
    writer = SocketIO(message_queue=redis_url, channel=key)

    writer.emit("news", {"headline": "hello"}, b"\x00\x01", to="news")
    writer.emit("elsewhere", "not for us", to="another room")
    writer.emit("news", "last")

    got: list[dict[str, Any]] = []
    wait_until(lambda: len(received(client, got)) >= 2, 5.0, "two events through Redis")
    assert [(e["name"], e["args"]) for e in got] == [
        ("news", [{"headline": "hello"}, b"\x00\x01"]),
        ("news", ["last"]),
    ]
    with pytest.raises(ValueError, match="callbacks need a server"):
        writer.emit("news", "x", callback=lambda *args: None)


def test_two_servers_share_a_room_broadcast(
    redis_url: str, key: str, servers: list[SocketIO]
) -> None:
    app_a, socketio_a = news_server(redis_url, key, servers)
    app_b, socketio_b = news_server(redis_url, key, servers)
    wait_until(lambda: subscribers(redis_url, f"{key}-request#/#") >= 2, 5.0, "both subscribed")
    client_a = socketio_a.test_client(app_a)
    client_b = socketio_b.test_client(app_b)

    with app_a.test_request_context("/"):
        socketio_a.emit("news", "from a", to="news")

    got_a: list[dict[str, Any]] = []
    got_b: list[dict[str, Any]] = []
    wait_until(lambda: received(client_b, got_b), 5.0, "the broadcast crossed to server b")
    assert [(e["name"], e["args"]) for e in received(client_a, got_a)] == [("news", ["from a"])]
    assert [(e["name"], e["args"]) for e in got_b] == [("news", ["from a"])]
