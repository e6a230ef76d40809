"""Dynamic child namespaces on Redis: a child's subscriptions live and die with it."""

from __future__ import annotations

import gc
import re
import weakref

import redis

import geventsio
from tests.server.sio_support import SioServerFactory
from tests.support import wait_until


def subscribed_children(client: redis.Redis, key: str) -> set[str]:
    """The children this test's server has channels subscribed for (its request and
    response channels; the broadcast one is a pattern, which Redis does not list)."""
    return {c.decode().split("#")[1] for c in client.pubsub_channels(f"{key}-*#/dyn-*")}


def test_children_subscribe_only_once_accepted_and_unsubscribe_when_removed(
    serve_app, redis_url, key
):
    adapter = geventsio.redis_adapter(redis_url, key=key)
    app = SioServerFactory(serve_app)(adapter=adapter, cleanup_empty_child_namespaces=True)
    parent = app.sio.of(re.compile(r"^/dyn-\d+$"))

    @parent.use
    def odd_ones_only(socket, auth):
        if int(socket.namespace.name.split("-")[1]) % 2 == 0:
            raise geventsio.ConnectionRefused("even")

    client = redis.Redis.from_url(redis_url, protocol=2)
    try:
        raw = app.raw()
        for i in range(10):
            raw.send(f"0/dyn-{i},")
            assert raw.recv().startswith(f"0/dyn-{i},{{" if i % 2 else f"4/dyn-{i},")
        accepted = {f"/dyn-{i}" for i in (1, 3, 5, 7, 9)}
        wait_until(lambda: subscribed_children(client, key) == accepted, 5.0, "subscribed")
        assert set(parent.children) == accepted

        adapters = [weakref.ref(child.adapter) for child in parent.children.values()]
        for i in (1, 3, 5, 7, 9):
            raw.send(f"1/dyn-{i},")
        wait_until(lambda: not parent.children, 5.0, "every child removed")
        wait_until(lambda: not subscribed_children(client, key), 5.0, "subscriptions gone")
        gc.collect()  # nothing keeps a removed child's adapter (the factory did once)
        assert [ref() for ref in adapters] == [None] * 5
        raw.ws.close()
    finally:
        app.sio.shutdown()
        client.close()
