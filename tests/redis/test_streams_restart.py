"""The Redis Streams adapter across a restart of Redis: with persistence the sessions and
the stream come back and a client recovers; without it a client gets a fresh session.
Either way, broadcasts flow again once Redis answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

import geventsio
from geventsio.adapters.redis_streams import redis_streams_adapter
from geventsio.adapters.redis_streams_wire import entry_key
from tests.redis.harness import RedisServer
from tests.redis.test_streams_adapter import foreign, session
from tests.support.waiting import wait_until


@pytest.mark.parametrize("persisted", [True, False], ids=["persisted", "not persisted"])
def test_after_a_redis_restart(tmp_path: Path, persisted: bool) -> None:
    server = RedisServer(persist_dir=tmp_path if persisted else None)
    factory = redis_streams_adapter(server.url, stream_name="s", block_time=0.2)
    sio = geventsio.Server(adapter=factory, connection_state_recovery=True)
    adapter, link = sio.of("/").adapter, factory.link  # type: ignore[attr-defined]
    client = redis.Redis.from_url(server.url)
    try:
        offset = foreign(client, "s", 0)
        missed = foreign(client, "s", 1)
        wait_until(lambda: entry_key(link.position) >= entry_key(missed), 5, "read")
        adapter.persist_session(session())
        server.kill()
        server.start()

        restored = adapter.restore_session("pid-1", offset)
        if persisted:
            assert restored is not None and [p.data[1] for p in restored.missed] == [1]
        else:
            assert restored is None
        after = foreign(client, "s", 2)
        wait_until(lambda: entry_key(link.position) >= entry_key(after), 10, "read again")
    finally:
        sio.shutdown()
        client.close()
        server.kill()
