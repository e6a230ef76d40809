"""A Socket.IO server configured as the official v5 protocol test suite expects.

127.0.0.1:3000, ping interval 300 ms, ping timeout 200 ms, max payload 1e6, connect
timeout 1 s, CORS "*"; on "/" and "/custom": an "auth" event echoing the CONNECT
payload, "message" answered by "message-back" and "message-with-ack" acknowledged with
its own arguments. Runs in the foreground; SIGTERM or Ctrl-C stops it.

    python examples/conformance/sio_server.py [--port 3000]
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import geventsio


def build_server() -> geventsio.Server:
    """The server the suite talks to."""
    sio = geventsio.Server(
        ping_interval=0.3,
        ping_timeout=0.2,
        max_payload=1_000_000,
        connect_timeout=1.0,
        cors_allowed_origins="*",
    )
    for name in ("/", "/custom"):
        namespace = sio.of(name)

        @namespace.on("connect")
        def connect(socket: geventsio.Socket, auth: Any) -> None:
            socket.emit("auth", auth if auth is not None else {})

        @namespace.on("message")
        def message(socket: geventsio.Socket, *args: Any) -> None:
            socket.emit("message-back", *args)

        @namespace.on("message-with-ack")
        def message_with_ack(socket: geventsio.Socket, *args: Any) -> tuple[Any, ...]:
            return args

    return sio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    geventsio.serve(geventsio.WSGIApp(build_server()), args.host, args.port)


if __name__ == "__main__":
    main()
