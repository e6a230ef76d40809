"""Fixtures of the Redis tests: a redis-server of a test's own, and child processes
(geventsio servers, Node servers, Node clients) killed at teardown. The shared Redis
(``redis_url``) and the per-test channel prefix (``key``) are in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import gevent
import pytest

from tests.redis.harness import (
    Clients,
    ClusterNode,
    JsonLinesProcess,
    NodeServer,
    RedisServer,
)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may kill and restart."""
    server = RedisServer()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def children() -> Iterator[list[JsonLinesProcess]]:
    """Every child process a test starts; all killed at teardown."""
    started: list[JsonLinesProcess] = []
    yield started
    for child in started:
        child.stop()


StartNodes = Callable[..., list[ClusterNode]]


@pytest.fixture
def start_nodes(children: list[JsonLinesProcess], redis_url: str, key: str) -> StartNodes:
    """``start_nodes("A", "B", redis=None, extra=(), linked=True)``: geventsio servers
    started in parallel, listening and (unless ``linked=False``) linked to Redis."""

    def start(
        *names: str, redis: str | None = None, extra: tuple[str, ...] = (), linked: bool = True
    ) -> list[ClusterNode]:
        nodes = [ClusterNode(name, redis or redis_url, key, *extra) for name in names]
        children.extend(nodes)
        gevent.joinall([gevent.spawn(node.ready) for node in nodes], raise_error=True)
        for node in nodes:
            if linked:
                node.wait_up()
        return nodes

    return start


@pytest.fixture
def clients(children: list[JsonLinesProcess]) -> Clients:
    """socket.io-client instances in a Node process."""
    process = Clients()
    children.append(process)
    return process


@pytest.fixture
def node_server(children: list[JsonLinesProcess], redis_url: str, key: str) -> NodeServer:
    """The Node reference server with the Node Redis adapter, in this test's cluster."""
    server = NodeServer("N", redis_url, key)
    children.append(server)
    return server.ready()
