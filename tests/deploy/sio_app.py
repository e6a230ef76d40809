"""The Socket.IO application the deployment tests serve (gunicorn, the command line).

``app`` is a :class:`geventsio.WSGIApp` around a small legacy WSGI app; ``flask_app`` is a
Flask app whose ``wsgi_app`` is one (as the Flask extension arranges it).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import gevent
from flask import Flask
from gevent import monkey

import geventsio

#: Whether the standard library was patched when this module was imported.
PATCHED_AT_IMPORT = monkey.is_module_patched("socket")

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

#: ``SIO_APP_STRICT=1``: one allowed Origin and small limits (the hostile-input tests).
STRICT = os.environ.get("SIO_APP_STRICT") == "1"

#: ``SIO_APP_REDIS=URL`` (with ``SIO_APP_REDIS_KEY``): rooms and broadcasts through Redis.
REDIS = os.environ.get("SIO_APP_REDIS")

sio = (
    geventsio.Server(
        cors_allowed_origins=["http://good.example"],
        max_payload=1000,
        max_websocket_fragments=1_000_000,
    )
    if STRICT
    else geventsio.Server(
        cors_allowed_origins="*",
        adapter=geventsio.redis_adapter(REDIS, key=os.environ.get("SIO_APP_REDIS_KEY", "t"))
        if REDIS
        else None,
    )
)


@sio.on("echo")
def echo(socket: geventsio.Socket, *args: Any) -> list[Any]:
    return list(args)


@sio.on("echo_pid")
def echo_pid(socket: geventsio.Socket, value: Any) -> list[Any]:
    return [value, os.getpid()]


@sio.on("pid")
def pid(socket: geventsio.Socket) -> int:
    return os.getpid()


@sio.on("join")
def join(socket: geventsio.Socket, room: str) -> str:
    socket.join(room)
    return room


@sio.on("shout")
def shout(socket: geventsio.Socket, room: str, text: str) -> str:
    sio.to(room).emit("heard", text, os.getpid())
    return "sent"


@sio.on("stream")
def stream(socket: geventsio.Socket, size: int) -> str:
    """Send numbered ``chunk`` events of ``size`` characters until the client leaves."""

    def run() -> None:
        number = 0
        while socket.connected:
            socket.emit("chunk", number, str(number % 10) * size)
            number += 1
            gevent.sleep(0.005)

    gevent.spawn(run)
    return "streaming"


@sio.on("slow")
def slow(socket: geventsio.Socket) -> str:
    slow_handler()
    return "done"


def slow_handler() -> None:
    """Hold the hub: the real, unpatched ``time.sleep``."""
    monkey.get_original("time", "sleep")(0.3)


def legacy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """``/pid``: this process; ``/patched``: whether it was patched at import; else hello."""
    path = environ.get("PATH_INFO", "")
    if path == "/pid":
        body = str(os.getpid()).encode()
    elif path == "/patched":
        body = str(PATCHED_AT_IMPORT).encode()
    else:
        body = b"hello from the legacy app"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


#: ``SIO_APP_ADOPT=0``: gunicorn -k gevent serves every request itself.
ADOPT = os.environ.get("SIO_APP_ADOPT") != "0"

app = geventsio.WSGIApp(sio, legacy, adopt_connections=ADOPT)

flask_app = Flask(__name__)
flask_app.wsgi_app = geventsio.WSGIApp(sio, legacy)  # type: ignore[method-assign]
