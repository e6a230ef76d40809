"""An Engine.IO server configured as the official v4 protocol test suite expects.

127.0.0.1:3000, path /engine.io/, ping interval 300 ms, ping timeout 200 ms, max payload
1e6, CORS "*", every message echoed back as it came. Runs in the foreground; SIGTERM or
Ctrl-C stops it.

    python examples/conformance/eio_server.py [--port 3000]
"""

from __future__ import annotations

import argparse
import logging

from geventsio._types import DisconnectReason
from geventsio.engine.server import EngineServer
from geventsio.engine.socket import EngineSocket
from geventsio.options import EngineOptions
from geventsio.serving import serve
from geventsio.wsgi import WSGIApp


class Echo:
    """Sends every message back to the session it came from."""

    def on_engine_connect(self, socket: EngineSocket) -> None:
        pass

    def on_engine_message(self, socket: EngineSocket, data: str | bytes) -> None:
        socket.send(data)

    def on_engine_close(self, socket: EngineSocket, reason: DisconnectReason) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    options = EngineOptions(
        path="/engine.io/",
        ping_interval=0.3,
        ping_timeout=0.2,
        max_payload=1_000_000,
        cors_allowed_origins="*",
    )
    serve(WSGIApp(EngineServer(Echo(), options)), args.host, args.port)


if __name__ == "__main__":
    main()
