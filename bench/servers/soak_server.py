"""The server of ``bench/soak.py``: geventsio's core or flask_ext, with a Redis adapter.

Not a library module: ``bench/soak.py`` starts it as a process of its own, with
``SOAK_FORM`` (``core`` or ``flask_ext``) and ``SOAK_REDIS`` (the Redis URL) in its
environment and ``_common.py``'s command line. It prints ``PORT <n>`` once it accepts
connections and serves until SIGTERM. The application, the same in both forms:

* on connect, a socket joins the room ``all``;
* ``join(room)`` joins ``room`` and acknowledges ``"ok"``;
* ``say(room, data)`` emits ``news(data)`` to ``room`` (the sender too) and
  acknowledges ``"ok"``;
* ``echo(data)`` acknowledges ``data``; ``slow(data)`` does too, after 50 ms;
* ``stats()`` acknowledges ``{"sessions", "namespaces"}``: how many Engine.IO sessions
  and namespaces the server holds (what the soak prints beside the memory);
* any namespace ``/dyn-<n>`` is accepted (a dynamic parent; flask_ext: ``namespaces="*"``),
  with empty children removed, so that a client naming a million namespaces costs nothing
  that stays.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gevent
from _common import serve_on_geventsio_runner

import geventsio

#: Options both forms share: small enough limits that hostile clients meet them quickly.
OPTIONS: dict[str, Any] = {
    "cors_allowed_origins": "*",
    "max_buffer_size": 1_000_000,
    "max_queued_events": 200,
    "max_child_namespaces": 1000,
    "cleanup_empty_child_namespaces": True,
}


def stats(server: geventsio.Server) -> dict[str, int]:
    """What the server holds now."""
    return {"sessions": len(server.engine.sessions), "namespaces": len(server.all_namespaces())}


def core_app(redis_url: str) -> Any:
    """The application on geventsio's core API."""
    sio = geventsio.Server(adapter=geventsio.redis_adapter(redis_url), **OPTIONS)

    @sio.on("connect")
    def connect(socket: geventsio.Socket) -> None:
        socket.join("all")

    @sio.on("join")
    def join(socket: geventsio.Socket, room: str) -> str:
        socket.join(room)
        return "ok"

    @sio.on("say")
    def say(socket: geventsio.Socket, room: str, data: Any) -> str:
        sio.to(room).emit("news", data)
        return "ok"

    sio.on("stats", lambda socket: stats(sio))
    sio.on("echo", lambda socket, data: data)
    sio.on("slow", lambda socket, data: gevent.sleep(0.05) or data)
    sio.of(re.compile(r"^/dyn-\d+$")).on("echo", lambda socket, data: data)
    return geventsio.WSGIApp(sio)


def flask_app(redis_url: str) -> Any:
    """The same application on flask_ext, as a Flask-SocketIO application is written."""
    from flask import Flask

    from flask_ext import SocketIO, emit, join_room

    app = Flask(__name__)
    options = {k: v for k, v in OPTIONS.items() if k != "cleanup_empty_child_namespaces"}
    socketio = SocketIO(app, message_queue=redis_url, namespaces="*", **options)

    @socketio.on("connect")
    def connect() -> None:
        join_room("all")

    @socketio.on("join")
    def join(room: str) -> str:
        join_room(room)
        return "ok"

    @socketio.on("say")
    def say(room: str, data: Any) -> str:
        emit("news", data, to=room)
        return "ok"

    @socketio.on("echo", namespace="*")
    def echo(data: Any) -> Any:
        return data

    @socketio.on("stats")
    def server_stats() -> dict[str, int]:
        assert socketio.server is not None
        return stats(socketio.server)

    @socketio.on("slow")
    def slow(data: Any) -> Any:
        gevent.sleep(0.05)
        return data

    return app


def main() -> None:
    redis_url = os.environ["SOAK_REDIS"]
    app = flask_app(redis_url) if os.environ["SOAK_FORM"] == "flask_ext" else core_app(redis_url)
    serve_on_geventsio_runner(app)


if __name__ == "__main__":
    main()
