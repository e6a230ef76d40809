"""``adapter.server_count()``: the servers of a namespace, as Node's adapters count them."""

from __future__ import annotations

import geventsio
from tests.support import wait_until


def test_the_memory_adapter_counts_this_server_alone() -> None:
    sio = geventsio.Server()
    try:
        assert sio.of("/").adapter.server_count() == 1
    finally:
        sio.shutdown()


def test_redis_servers_count_each_other_and_forget_one_that_leaves(redis_url, key) -> None:
    servers = [
        geventsio.Server(adapter=geventsio.redis_adapter(redis_url, key=key)) for _ in range(3)
    ]
    try:
        adapters = [sio.of("/").adapter for sio in servers]
        wait_until(lambda: all(a.server_count() == 3 for a in adapters), 5.0, "3 servers")
        servers.pop().shutdown()  # its adapter closes: it unsubscribes
        wait_until(lambda: all(a.server_count() == 2 for a in adapters[:2]), 5.0, "2 servers")
    finally:
        for sio in servers:
            sio.shutdown()
