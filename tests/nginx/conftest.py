"""Fixtures of the nginx tests: three geventsio servers sharing rooms through Redis (a
channel prefix of the test's own), and nginx in front of them, all killed at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from tests.nginx.harness import (
    NAMES,
    Backend,
    Nginx,
    StartNginx,
    check_loopback_range,
    nginx_binary,
    render_config,
)
from tests.redis.harness import free_port


@pytest.fixture
def backends(redis_url: str, key: str) -> Iterator[list[Backend]]:
    """Three geventsio servers in one Redis cluster, started in parallel."""
    yield from _started(redis_url, key, cluster=False)


@pytest.fixture
def cluster_backends(redis_url: str, key: str) -> Iterator[list[Backend]]:
    """Three geventsio servers sharing rooms and sessions (RedisCluster) through Redis."""
    yield from _started(redis_url, key, cluster=True)


def _started(redis_url: str, key: str, *, cluster: bool) -> Iterator[list[Backend]]:
    nginx_binary()  # skip before starting anything when nginx is missing
    started = [Backend(name, redis_url, key, cluster=cluster) for name in NAMES]
    try:
        gevent.joinall([gevent.spawn(backend.ready) for backend in started], raise_error=True)
        yield started
    finally:
        for backend in started:
            backend.stop()


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[StartNginx]:
    """``start_nginx(backends, balance="ip_hash")``: the example's configuration in
    front of ``backends``, on a free port of 127.0.0.1 (``balance=None``: round-robin)."""
    binary = nginx_binary()
    started: list[Nginx] = []

    def start(backends: list[Backend], balance: str | None = "ip_hash") -> Nginx:
        prefix = tmp_path / f"nginx-{len(started)}"
        prefix.mkdir()
        port = free_port()
        config = render_config(prefix, port, [b.address for b in backends], balance)
        nginx = Nginx(binary, config, prefix, port)
        started.append(nginx)
        return nginx.ready()

    try:
        yield start
    finally:
        for nginx in started:
            nginx.stop()


@pytest.fixture
def nginx(backends: list[Backend], start_nginx: StartNginx) -> Nginx:
    """The example's configuration, sticky by client address (``ip_hash``)."""
    check_loopback_range()
    return start_nginx(backends)
