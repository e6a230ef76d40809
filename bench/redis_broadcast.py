"""Broadcast throughput across two geventsio servers through Redis.

Two server processes (A and B) share a Redis. WebSocket clients (raw Engine.IO/Socket.IO,
in this process) connect to B and join the room "bench". Then a server emits N events to
that room as fast as it can, and the clock stops when every client has all N:

* cross-node: A emits, B delivers what it reads from Redis;
* same node: B emits (and still publishes to Redis), delivering to its own clients.

    python bench/redis_broadcast.py [--redis URL] [--clients 20] [--messages 20000]
    python bench/redis_broadcast.py --smoke      # about a second; exit status 0 if it worked

Without ``--redis`` (or when nothing answers there) a redis-server is started on a free
port for the run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket as std_socket
import subprocess
import sys
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import gevent
import gevent.event
import orjson
from gevent import socket
from gevent.fileobject import FileObjectPosix

from geventsio.protocol import websocket as ws
from geventsio.protocol import websocket_handshake as handshake

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


# -- the servers (run as child processes) ---------------------------------------------------


def serve(redis_url: str, key: str, name: str) -> None:
    """A geventsio server whose clients join "bench"; GET /bench/emit makes it emit."""
    import logging

    import geventsio
    from geventsio.adapters.redis import redis_adapter
    from geventsio.serving import make_server

    logging.basicConfig(format=f"[server {name}] %(levelname)s %(name)s: %(message)s")
    factory = redis_adapter(redis_url, key=key)
    sio = geventsio.Server(adapter=factory)
    sio.on("connect", lambda sock: sock.join("bench"))

    def control(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        body: dict[str, Any] = {"up": factory.link.up}
        if environ["PATH_INFO"] == "/bench/emit":
            count, size = int(query["count"]), int(query["size"])
            payload: Any = b"\x00" * size if query.get("binary") == "1" else "x" * size
            started = time.perf_counter()
            for i in range(count):
                sio.to("bench").emit("m", payload, i)
                if i % 256 == 255:
                    gevent.idle()  # let the loop do its I/O (sleep(0) would starve it)
            body["seconds"] = time.perf_counter() - started
        start_response("200 OK", [("Content-Type", "application/json")])
        return [orjson.dumps(body)]

    server = make_server(geventsio.WSGIApp(sio, control), "127.0.0.1", 0)
    server.start()
    sys.stdout.write(orjson.dumps({"port": server.server_port}).decode() + "\n")
    sys.stdout.flush()
    FileObjectPosix(sys.stdin.fileno(), "rb", close=False).read()  # until the parent closes it
    factory.close()


# -- the clients (in this process) -----------------------------------------------------------


class BenchClient:
    """A raw Socket.IO client over WebSocket that counts the "m" events it receives."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(std_socket.IPPROTO_TCP, std_socket.TCP_NODELAY, 1)
        key = handshake.new_client_key()
        resource = "/socket.io/?EIO=4&transport=websocket"
        self.sock.sendall(handshake.client_handshake_request(f"127.0.0.1:{port}", resource, key))
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        head, _, rest = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.parser = ws.FrameParser(max_message_size=1 << 24, expect_masked=False)
        self.received = 0
        self.connected = gevent.event.Event()
        self._pending = self.parser.feed(rest)
        self.reader = gevent.spawn(self._read)

    def _send(self, text: str) -> None:
        self.sock.sendall(ws.encode_text(text, mask=os.urandom(4)))

    def _read(self) -> None:
        events, self._pending = self._pending, []
        while True:
            for event in events:
                if isinstance(event, ws.TextMessage):
                    self._on_text(event.data)
            data = self.sock.recv(1 << 16)
            if not data:
                return
            events = self.parser.feed(data)

    def _on_text(self, text: str) -> None:
        if text.startswith(("42", "451-")):
            self.received += 1
        elif text.startswith("0"):
            self._send("40")
        elif text.startswith("40"):
            self.connected.set()
        elif text == "2":
            self._send("3")

    def close(self) -> None:
        self.reader.kill()
        self.sock.close()


# -- the run ----------------------------------------------------------------------------------


def http_get(port: int, path: str, timeout: float = 120.0) -> dict[str, Any]:
    """GET a control URL of a server; its JSON answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return orjson.loads(data.partition(b"\r\n\r\n")[2])  # type: ignore[no-any-return]


def start_server(redis_url: str, key: str, name: str) -> tuple[subprocess.Popen[bytes], int]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--redis", redis_url, "--key", key, "--name", name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit("a server did not start")
    return process, int(orjson.loads(line)["port"])


def redis_for_run(url: str | None) -> tuple[str, subprocess.Popen[bytes] | None]:
    """A Redis URL that answers, starting a redis-server when needed."""
    import redis

    candidate = url or DEFAULT_REDIS
    try:
        redis.Redis.from_url(candidate, socket_connect_timeout=0.5, protocol=2).ping()
        return candidate, None
    except redis.RedisError:
        if url is not None:
            raise SystemExit(f"no Redis answers at {url}") from None
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with std_socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
    )
    started = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(started, protocol=2).ping()
            return started, process
        except redis.RedisError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def measure(
    emitter_port: int, clients: list[BenchClient], count: int, size: int, binary: bool
) -> tuple[float, float]:
    """Emit ``count`` events from the server on ``emitter_port``; the seconds until every
    client had them all, and the seconds the emitting loop took."""
    for client in clients:
        client.received = 0
    started = time.perf_counter()
    answer = gevent.spawn(
        http_get, emitter_port, f"/bench/emit?count={count}&size={size}&binary={int(binary)}"
    )
    deadline = started + max(30.0, count / 500)
    while any(c.received < count for c in clients):
        if time.perf_counter() > deadline:
            got = sorted(c.received for c in clients)
            raise SystemExit(f"not every client got {count} events in time: {got}")
        gevent.sleep(0.002)
    elapsed = time.perf_counter() - started
    return elapsed, float(answer.get(timeout=30)["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", help=f"Redis URL (default {DEFAULT_REDIS}, else a new one)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--smoke", action="store_true", help="a quick run (about a second)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.redis, args.key, args.name)
        return
    clients_count, count = (2, 300) if args.smoke else (args.clients, args.messages)
    redis_url, redis_process = redis_for_run(args.redis)
    key = f"bench-{uuid.uuid4().hex[:8]}"
    servers = [start_server(redis_url, key, name) for name in "AB"]
    (_, port_a), (_, port_b) = servers
    clients: list[BenchClient] = []
    try:
        deadline = time.monotonic() + 10
        while not all(http_get(p, "/bench/state")["up"] for _, p in servers):
            if time.monotonic() > deadline:
                raise SystemExit("the servers did not link to Redis")
            gevent.sleep(0.05)
        clients = [BenchClient(port_b) for _ in range(clients_count)]
        for client in clients:
            client.connected.wait(10)
        print(f"{clients_count} clients on node B, {count} broadcasts per run, Redis {redis_url}")
        runs = [("cross-node (A -> Redis -> B)", port_a, 64, False)]
        if not args.smoke:
            runs += [
                ("cross-node (A -> Redis -> B)", port_a, 1024, True),
                ("same node (B)", port_b, 64, False),
                ("same node (B)", port_b, 1024, True),
            ]
        for label, port, size, binary in runs:
            kind = f"{size} B {'binary' if binary else 'text'}"
            elapsed, emitting = measure(port, clients, count, size, binary)
            print(
                f"{label:30} {kind:12} {count / elapsed:>9,.0f} broadcasts/s "
                f"{count * clients_count / elapsed:>10,.0f} deliveries/s "
                f"(emit loop {count / emitting:,.0f}/s)"
            )
    finally:
        for client in clients:
            client.close()
        for process, _ in servers:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
        if redis_process is not None:
            redis_process.kill()
            redis_process.wait()


if __name__ == "__main__":
    main()
