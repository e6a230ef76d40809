"""The geventsio server under test: the bench application on geventsio's own runner.

Started by bench/run.py (see ``_common.py`` for the command line and the application).
Served by ``geventsio.serving.make_server``: gevent's pywsgi with geventsio's handler
(TCP_NODELAY, WebSocket take-over), no access log. Nothing is monkey-patched.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import gevent
import gevent.event

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import geventsio
from geventsio.serving import make_server


def build_app() -> geventsio.WSGIApp:
    sio = geventsio.Server(cors_allowed_origins="*")

    @sio.on("echo")
    def echo(socket: geventsio.Socket, data: Any) -> Any:
        return data

    @sio.on("join")
    def join(socket: geventsio.Socket, room: str) -> str:
        socket.join(room)
        return "ok"

    @sio.on("bcast")
    def bcast(socket: geventsio.Socket, room: str, data: Any) -> str:
        sio.to(room).emit("msg", data)
        return "ok"

    return geventsio.WSGIApp(sio)


def main() -> None:
    args = _common.parse_args()
    _common.raise_fd_limit()
    app = build_app()
    server = make_server(app, args.host, args.port)
    stopping = gevent.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stopping.set)
    profiler = _common.Profiler()
    server.start()
    _common.announce(server.server_port)
    profiler.start()
    try:
        stopping.wait()
    finally:
        profiler.stop()
    server.stop(timeout=1)


if __name__ == "__main__":
    main()
