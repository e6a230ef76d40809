"""The Redis Streams adapter in process, on the shared Redis (a stream and session keys of
the test's own): what a restore hands back, the stream's cap, the sessions' expiry, and
forged pids and offsets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

import geventsio
from geventsio._types import Room, SocketId
from geventsio.adapters.recovery import SessionState
from geventsio.adapters.redis_streams import RedisStreamsAdapter, StreamLink, redis_streams_adapter
from geventsio.adapters.redis_streams_wire import (
    MessageType,
    decode_session,
    encode_fields,
    encode_session,
    entry_key,
)
from tests.support.waiting import wait_until

NEWS = {"rooms": ["news"], "except": [], "flags": {}}


@pytest.fixture
def setup(redis_url: str, key: str) -> Iterator[tuple[RedisStreamsAdapter, StreamLink, Any]]:
    factory = redis_streams_adapter(
        redis_url,
        stream_name=key,
        session_key_prefix=key + ":session:",
        block_time=0.2,
        max_len=50,
    )
    sio = geventsio.Server(
        adapter=factory, connection_state_recovery={"max_disconnection_duration": 30}
    )
    client = redis.Redis.from_url(redis_url)
    try:
        yield sio.of("/").adapter, factory.link, client  # type: ignore[attr-defined]
    finally:
        sio.shutdown()
        client.delete(key)
        client.close()


def foreign(client: Any, key: str, n: int, opts: Any = NEWS) -> str:
    """A broadcast entry from another server."""
    data = {"packet": {"type": 2, "data": ["tick", n]}, "opts": opts}
    return client.xadd(key, encode_fields("other", "/", MessageType.BROADCAST, data)).decode()


def session(pid: str = "pid-1") -> SessionState:
    return SessionState(SocketId("s1"), pid, frozenset({Room("s1"), Room("news")}), {"k": [1]})


def test_restore_hands_back_what_each_path_handed_out(setup, key) -> None:
    adapter, link, client = setup
    first = foreign(client, key, 0)
    ids = [foreign(client, key, n) for n in (1, 2, 3)]
    foreign(client, key, -1, {"rooms": ["other"], "except": [], "flags": {}})
    foreign(client, key, -2, {"rooms": [], "except": [], "flags": {"volatile": True}})
    wait_until(
        lambda: entry_key(link.position) >= entry_key(ids[-1]), 5, "the reader hands them out"
    )

    adapter.persist_session(session())
    restored = adapter.restore_session("pid-1", first)
    assert restored is not None and restored.state == session()
    assert [p.data for p in restored.missed] == [
        ["tick", n, i] for n, i in zip((1, 2, 3), ids, strict=True)
    ]

    # As if the reader had not handed out the last two yet: it will, after the join.
    link.position = ids[0]
    adapter.persist_session(session())
    restored = adapter.restore_session("pid-1", first)
    assert restored is not None and [p.data[1] for p in restored.missed] == [1]


def test_own_broadcasts_count_once_they_are_delivered(setup, key) -> None:
    adapter, link, client = setup
    offset = foreign(client, key, 0)
    adapter.broadcast(
        geventsio.protocol.socketio.Packet(
            geventsio.protocol.socketio.PacketType.EVENT, "/", ["tick", 1]
        ),
        geventsio.adapters.base.BroadcastOptions(frozenset({Room("news")})),
    )
    wait_until(
        lambda: entry_key(link.position) > entry_key(offset), 5, "the reader passes the entry"
    )
    adapter.persist_session(session())
    restored = adapter.restore_session("pid-1", offset)
    assert restored is not None and [p.data[1] for p in restored.missed] == [1]


@pytest.mark.parametrize(
    ("pid", "offset"),
    [("forged", "real"), ("pid-1", "1-1"), ("pid-1", "not an offset"), ("x" * 100, "real")],
)
def test_a_forged_pid_or_offset_restores_nothing(setup, key, pid, offset) -> None:
    adapter, _, client = setup
    real = foreign(client, key, 0)
    adapter.persist_session(session())
    assert adapter.restore_session(pid, real if offset == "real" else offset) is None


def test_sessions_expire_with_the_window_and_are_read_once(setup, key) -> None:
    adapter, _, client = setup
    adapter.persist_session(session())
    ttl = client.pttl(key + ":session:pid-1")
    assert 25_000 < ttl <= 30_000
    assert decode_session(client.get(key + ":session:pid-1")) == session()
    offset = foreign(client, key, 0)
    assert adapter.restore_session("pid-1", offset) is not None
    assert client.exists(key + ":session:pid-1") == 0


def test_the_stream_is_capped(setup, key) -> None:
    _, _, client = setup
    for n in range(600):
        foreign(client, key, n)  # not through the adapter: capped by its own XADDs
    adapter, _, _ = setup
    adapter.broadcast(
        geventsio.protocol.socketio.Packet(
            geventsio.protocol.socketio.PacketType.EVENT, "/", ["x"]
        ),
        geventsio.adapters.base.BroadcastOptions(),
    )
    # MAXLEN ~ 50: Redis trims whole macro nodes (100 entries by default), never below 50.
    assert 50 <= client.xlen(key) <= 50 + 100


def test_sessions_are_written_as_node_writes_them() -> None:
    state = SessionState(
        SocketId("abc"), "pid", frozenset({Room("abc"), Room("r")}), {"b": b"\x01"}
    )
    assert decode_session(encode_session(state)) == state
