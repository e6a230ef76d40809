"""The chat, watched: the Admin UI's namespace and Prometheus metrics on a geventsio server.

    python examples/monitoring/app.py [--host 127.0.0.1] [--port 5000]

Chat at http://127.0.0.1:5000/ (the page of examples/chat), metrics at /metrics, and the
Admin UI: open https://admin.socket.io, server URL http://127.0.0.1:5000, user "admin",
password from ADMIN_PASSWORD (one is made up and printed when it is not set).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import geventsio

CHAT = Path(__file__).resolve().parent.parent / "chat"
CLIENT_BUNDLE = CHAT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
ADMIN_UI = "https://admin.socket.io"


def build_app(origin: str, admin_password: str) -> geventsio.WSGIApp:
    """The chat server, instrumented for the Admin UI, with /metrics."""
    sio = geventsio.Server(cors_allowed_origins=[origin, ADMIN_UI])
    nicknames: dict[str, str] = {}

    def rooms_of(socket: geventsio.Socket) -> list[str]:
        return [room for room in socket.rooms if room != socket.id]

    @sio.on("connect")
    def connect(socket: geventsio.Socket, auth: Any) -> None:
        nickname = auth.get("nickname") if isinstance(auth, dict) else None
        nicknames[socket.id] = str(nickname or "anonymous")[:32]

    @sio.on("join")
    def join(socket: geventsio.Socket, room: str) -> dict[str, str]:
        room = str(room)[:64] or "lobby"
        for old in rooms_of(socket):
            socket.leave(old)
            sio.to(old).emit("notice", f"{nicknames[socket.id]} left")
        socket.join(room)
        socket.to(room).emit("notice", f"{nicknames[socket.id]} joined")
        return {"room": room}

    @sio.on("chat")
    def chat(socket: geventsio.Socket, text: str) -> str:
        message = {"from": nicknames[socket.id], "text": str(text)[:500]}
        for room in rooms_of(socket):
            sio.to(room).emit("chat", message)
        return "ok"

    @sio.on("disconnect")
    def disconnect(socket: geventsio.Socket) -> None:
        nicknames.pop(socket.id, None)

    sio.instrument(auth={"username": "admin", "password": geventsio.hash_password(admin_password)})
    return geventsio.WSGIApp(
        sio,
        static_files={"/": CHAT / "static" / "index.html", "/socket.io.min.js": CLIENT_BUNDLE},
        metrics_path="/metrics",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="geventsio chat with the Admin UI and metrics")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(9)
    origin = f"http://{args.host}:{args.port}"
    app = build_app(origin, password)
    if "ADMIN_PASSWORD" not in os.environ:
        print(f"Admin UI password (user admin): {password}", flush=True)
    print(f"Chat on {origin}/, metrics on {origin}/metrics (Ctrl-C stops it)", flush=True)
    geventsio.serve(app, args.host, args.port)


if __name__ == "__main__":
    main()
