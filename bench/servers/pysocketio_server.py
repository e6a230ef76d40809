"""The baseline: the bench application on python-socketio, on gevent.

Started by bench/run.py (see ``_common.py`` for the command line and the application).
Configured as python-socketio's documentation sets it up for gevent: the standard
library monkey-patched, ``async_mode="gevent"``, served by gevent's pywsgi with
gevent-websocket's ``WebSocketHandler``; no logging (``logger=False``,
``engineio_logger=False``, no access log). Everything else is left at its defaults
(``async_handlers=True``; pywsgi does not set TCP_NODELAY).
"""

from gevent import monkey

monkey.patch_all()

# ruff: noqa: E402 -- the imports below must come after patching.
import sys
from pathlib import Path
from typing import Any

import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common


def build_app() -> tuple[socketio.Server, socketio.WSGIApp]:
    sio = socketio.Server(
        async_mode="gevent", cors_allowed_origins="*", logger=False, engineio_logger=False
    )

    @sio.on("echo")
    def echo(sid: str, data: Any) -> Any:
        return data

    @sio.on("join")
    def join(sid: str, room: str) -> str:
        sio.enter_room(sid, room)
        return "ok"

    @sio.on("bcast")
    def bcast(sid: str, room: str, data: Any) -> str:
        sio.emit("msg", data, to=room)
        return "ok"

    return sio, socketio.WSGIApp(sio)


def main() -> None:
    _, app = build_app()
    _common.serve_on_gevent_websocket_handler(app)


if __name__ == "__main__":
    main()
