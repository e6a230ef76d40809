"""The flask_ext server under test: the bench application as a Flask-SocketIO application.

Started by bench/run.py (see ``_common.py`` for the command line and the application).
The same handlers as ``geventsio_server.py``, written as Flask-SocketIO handlers on
``flask_ext.SocketIO`` (the event's arguments only, ``join_room``, ``socketio.emit(...,
to=room)``), so that each event goes through flask_ext's dispatch and Flask contexts.
Served by the same runner as geventsio (``geventsio.serving.make_server`` on the Flask
application, whose ``wsgi_app`` flask_ext wraps); nothing is monkey-patched. Compared with
the geventsio server, the figures are the cost of the extension.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import flask

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

from flask_ext import SocketIO, join_room


def build_app() -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = "bench"
    socketio = SocketIO(app, cors_allowed_origins="*")

    @socketio.on("echo")
    def echo(data: Any) -> Any:
        return data

    @socketio.on("join")
    def join(room: str) -> str:
        join_room(room)
        return "ok"

    @socketio.on("bcast")
    def bcast(room: str, data: Any) -> str:
        socketio.emit("msg", data, to=room)
        return "ok"

    return app


def main() -> None:
    _common.serve_on_geventsio_runner(build_app())


if __name__ == "__main__":
    main()
