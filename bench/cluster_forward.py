"""The cost of a forwarded long-polling request, inside one process (CPU time per op).

Two engines of one local cluster (as two gunicorn workers are) each on a live server in
this process, and a raw HTTP client: a POST of one message goes either to the owner, or
to the other engine, which forwards it over the owner's abstract unix socket. Everything
runs in this process, so CPU time (``time.process_time``) counts both sides; rounds of
each kind are interleaved, so both see the same noise. The difference is what
forwarding costs.

    .venv/bin/python bench/cluster_forward.py [--requests 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from gevent import monkey

monkey.patch_all()

from geventsio.cluster import LocalCluster  # noqa: E402
from geventsio.engine.server import EngineServer  # noqa: E402
from geventsio.serving import make_server  # noqa: E402
from geventsio.wsgi import WSGIApp  # noqa: E402
from tests.support import HttpClient, RecordingEcho  # noqa: E402


def member(group: str) -> tuple[EngineServer, int, LocalCluster]:
    engine = EngineServer(RecordingEcho(echo=False))
    cluster = LocalCluster(engine, group)
    cluster.start()
    server = make_server(WSGIApp(engine), "127.0.0.1", 0)
    server.start()
    return engine, server.server_port, cluster


def posts(port: int, target: str, count: int) -> float:
    """CPU seconds per POST of ``count`` POSTs on one keep-alive connection."""
    with HttpClient("127.0.0.1", port) as http:
        started = time.process_time()
        for _ in range(count):
            response = http.post(target, "4x")
            assert response.status == 200, response
        return (time.process_time() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    group = uuid.uuid4().hex[:12]
    (_, owner_port, _), (_, other_port, _) = member(group), member(group)
    with HttpClient("127.0.0.1", owner_port) as http:
        sid = http.get("/socket.io/?EIO=4&transport=polling").text.split('"')[3]
    target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    posts(owner_port, target, 200)  # warm up both paths
    posts(other_port, target, 200)
    direct, forwarded = [], []
    for _ in range(args.rounds):
        direct.append(posts(owner_port, target, args.requests))
        forwarded.append(posts(other_port, target, args.requests))
    d, f = statistics.median(direct) * 1e6, statistics.median(forwarded) * 1e6
    print(f"POST to the owner:        {d:7.1f} µs CPU per request (median of {args.rounds})")
    print(f"POST through another one: {f:7.1f} µs CPU per request")
    print(f"forwarding costs:         {f - d:7.1f} µs CPU per request")


if __name__ == "__main__":
    main()
