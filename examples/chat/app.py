"""Chat with rooms and nicknames: a Flask page and a geventsio server in one process.

    python examples/chat/app.py [--host 127.0.0.1] [--port 5000]

Open http://127.0.0.1:5000/ in two windows. The page uses the official browser client,
served from this folder's node_modules (``npm install`` here, or the README's demo
command, installs it).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from flask import Flask, abort, send_file

import geventsio

HERE = Path(__file__).resolve().parent
CLIENT_BUNDLE = HERE / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

app = Flask(__name__, static_folder=str(HERE / "static"), static_url_path="/static")
sio = geventsio.Server()


@app.get("/")
def index() -> Any:
    return send_file(HERE / "static" / "index.html")


@app.get("/socket.io.min.js")
def client_bundle() -> Any:
    if not CLIENT_BUNDLE.exists():
        abort(404, "run `npm install` in examples/chat first")
    return send_file(CLIENT_BUNDLE, mimetype="application/javascript")


@sio.on("connect")
def connect(socket: geventsio.Socket, auth: Any) -> None:
    nickname = str((auth or {}).get("nickname") or "anonymous")[:32]
    socket.data["nickname"] = nickname


@sio.on("join")
def join(socket: geventsio.Socket, room: str) -> dict[str, Any]:
    room = str(room)[:64] or "lobby"
    for old in socket.rooms - {socket.id}:
        socket.leave(old)
        sio.to(old).emit("notice", f"{socket.data['nickname']} left")
    socket.join(room)
    socket.to(room).emit("notice", f"{socket.data['nickname']} joined")
    return {"room": room}


@sio.on("chat")
def chat(socket: geventsio.Socket, text: str) -> str:
    rooms = socket.rooms - {socket.id}
    message = {"from": socket.data["nickname"], "text": str(text)[:500]}
    sio.to(rooms).emit("chat", message)
    return "ok"


@sio.on("disconnecting")
def disconnecting(socket: geventsio.Socket, reason: geventsio.DisconnectReason) -> None:
    for room in socket.rooms - {socket.id}:
        socket.to(room).emit("notice", f"{socket.data['nickname']} left")


application = geventsio.WSGIApp(sio, app)


def main() -> None:
    parser = argparse.ArgumentParser(description="geventsio chat example")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(f"Chat demo on http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    geventsio.serve(application, args.host, args.port)


if __name__ == "__main__":
    main()
