"""The bench application on gevent's pywsgi with gevent-websocket's ``WebSocketHandler``:
how many users serve a gevent WebSocket application, no geventsio serving code.
Started by bench/serving_paths.py (the command line of ``_common.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from paths_app import app

if __name__ == "__main__":
    _common.serve_on_gevent_websocket_handler(app)
