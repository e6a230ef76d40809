"""The bench application on gevent's pywsgi with gevent-websocket's ``WebSocketHandler``:
how many users serve a gevent WebSocket application, no geventsio serving code.
Started by bench/serving_paths.py (the command line of ``_common.py``)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import gevent
import gevent.event
from gevent import pywsgi
from geventwebsocket.handler import WebSocketHandler
from paths_app import app


def main() -> None:
    args = _common.parse_args()
    _common.raise_fd_limit()
    server = pywsgi.WSGIServer(
        (args.host, args.port), app, handler_class=WebSocketHandler, log=None
    )
    stopping = gevent.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stopping.set)
    server.start()
    _common.announce(server.server_port)
    stopping.wait()
    server.stop(timeout=1)


if __name__ == "__main__":
    main()
