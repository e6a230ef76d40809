"""The geventsio server under test: the bench application on geventsio's own runner.

Started by bench/run.py (see ``_common.py`` for the command line and the application).
Served by ``geventsio.serving.make_server``: gevent's pywsgi with geventsio's handler
(TCP_NODELAY, WebSocket take-over), no access log. Nothing is monkey-patched.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import geventsio


def build_app(**wsgi_options: Any) -> geventsio.WSGIApp:
    """The bench application; ``wsgi_options`` go to ``WSGIApp`` (the metrics server's
    ``metrics_path``)."""
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

    return geventsio.WSGIApp(sio, **wsgi_options)


def main() -> None:
    _common.serve_on_geventsio_runner(build_app())


if __name__ == "__main__":
    main()
