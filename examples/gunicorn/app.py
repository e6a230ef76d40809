"""A Socket.IO service for gunicorn: a room-less notice board, and a health check.

gunicorn -c gunicorn.conf.py app:app        (from this folder; see the README)
"""

from __future__ import annotations

import os
from typing import Any

import geventsio

sio = geventsio.Server(cors_allowed_origins=os.environ.get("CORS_ORIGINS", "*"))


@sio.on("connect")
def connect(socket: geventsio.Socket) -> None:
    socket.emit("welcome", {"worker": os.getpid()})


@sio.on("post")
def post(socket: geventsio.Socket, text: str) -> str:
    sio.emit("notice", str(text)[:500])  # to every client of this worker process
    return "posted"


def health(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """``GET /healthz`` for the load balancer; 404 for anything else."""
    if environ.get("PATH_INFO") == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]


app = geventsio.WSGIApp(sio, health)
