"""One geventsio server behind nginx, in a Redis cluster with the others.

    python tests/nginx/backend.py --redis URL --key KEY --name A [--cluster]

With ``--cluster`` it is served by geventsio's runner (``run_server``), which makes it
share its sessions with the other backends in its adapter's Redis.

It listens on 127.0.0.1 (a free port) and, once its Redis link is up, prints one JSON
line, ``{"port": N, "name": "A", "pid": P}``. It serves until its stdin closes (so it
never outlives the test that started it). Logs, the sticky-sessions hint among them, go
to stderr. The Socket.IO API, in namespace ``/``:

- connect with ``auth = {"rooms": [...]}``: the socket joins those rooms;
- ``whoami`` -> ``{"node", "pid", "transport", "address", "headers"}``: which server
  the client reached, over which transport, and what the proxy told it;
- ``echo(*args)`` -> ``[*args]`` (one argument);
- ``broadcast(room, text)`` -> this server's name, after emitting
  ``news {"from": name, "text": text}`` to ``room`` on every server (through Redis).

CORS is left at its default (same origin only), so that a proxy that loses the public
``Host`` shows up as a 403. The app is wrapped in Werkzeug's ``ProxyFix`` (one proxy), so
``socket.handshake.address`` is the client's address, not nginx's.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from typing import Any

import gevent
import orjson
from gevent.fileobject import FileObjectPosix
from werkzeug.middleware.proxy_fix import ProxyFix

import geventsio
from geventsio.adapters.redis import redis_adapter
from geventsio.serving import make_server, run_server

#: Seconds the Redis link may take to come up.
LINK_TIMEOUT = 10.0

#: Headers a reverse proxy sets, reported by ``whoami``.
PROXY_HEADERS = ("host", "x-forwarded-for", "x-forwarded-proto", "upgrade")


def build_server(name: str, redis_url: str, key: str) -> tuple[geventsio.Server, Any]:
    """The Socket.IO server of this backend and its Redis adapter factory."""
    factory = redis_adapter(redis_url, key=key, requests_timeout=2.0, reconnect_delay=0.05)
    sio = geventsio.Server(adapter=factory, ping_interval=1.0, ping_timeout=5.0)

    @sio.on("connect")
    def connect(socket: geventsio.Socket, auth: Any) -> None:
        rooms = auth.get("rooms", []) if isinstance(auth, dict) else []
        socket.join([str(room) for room in rooms])

    @sio.on("whoami")
    def whoami(socket: geventsio.Socket) -> dict[str, Any]:
        headers = socket.handshake.headers
        return {
            "node": name,
            "pid": os.getpid(),
            "transport": socket.transport,
            "address": socket.handshake.address,
            "headers": {header: headers.get(header) for header in PROXY_HEADERS},
        }

    @sio.on("echo")
    def echo(socket: geventsio.Socket, *args: Any) -> list[Any]:
        return list(args)  # one acknowledgement argument: the list

    @sio.on("broadcast")
    def broadcast(socket: geventsio.Socket, room: str, text: str) -> str:
        sio.to(room).emit("news", {"from": name, "text": text})
        return name

    return sio, factory


def wait_for_link(factory: Any) -> None:
    """Wait (bounded) until the Redis link is subscribed: broadcasts reach us from then on."""
    deadline = time.monotonic() + LINK_TIMEOUT
    while not factory.link.up:
        if time.monotonic() > deadline:
            raise SystemExit(f"the Redis link did not come up within {LINK_TIMEOUT} s")
        gevent.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument(
        "--cluster", action="store_true", help="served by geventsio's runner (shares sessions)"
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    sio, factory = build_server(args.name, args.redis, args.key)
    # Behind exactly one proxy: REMOTE_ADDR and the scheme come from its X-Forwarded-*.
    app = ProxyFix(geventsio.WSGIApp(sio), x_for=1, x_proto=1)
    server = make_server(app, "127.0.0.1", 0)  # listening from here on
    wait_for_link(factory)
    stdout = FileObjectPosix(sys.stdout.fileno(), "wb", close=False)
    hello = {"port": server.server_port, "name": args.name, "pid": os.getpid()}
    stdout.write(orjson.dumps(hello) + b"\n")
    stdout.flush()
    if args.cluster:
        # geventsio's runner, as a deployment runs it: with a Redis adapter, it shares
        # its sessions with the other servers in that Redis by itself, no setting.
        gevent.spawn(stop_when_stdin_closes)
        run_server(server, app)
    else:
        server.start()
        wait_for_stdin_to_close()
        sio.shutdown()
        server.stop(timeout=1)
    factory.close()


def wait_for_stdin_to_close() -> None:
    """Serve until the test closes our stdin (or kills us)."""
    stdin = FileObjectPosix(sys.stdin.fileno(), "rb", close=False)
    for _line in stdin:
        pass


def stop_when_stdin_closes() -> None:
    wait_for_stdin_to_close()
    os.kill(os.getpid(), signal.SIGTERM)  # run_server's clean shutdown


if __name__ == "__main__":
    main()
