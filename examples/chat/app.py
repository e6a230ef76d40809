"""Chat with rooms and nicknames: a Flask app with flask_ext, in memory.

    python examples/chat/app.py [--host 127.0.0.1] [--port 5000]

Open http://127.0.0.1:5000/ in two windows. The page uses the official browser client,
served from this folder's node_modules (``npm install`` here, or the README's demo
command, installs it). URL parameters: ``?nickname=ann&room=lobby&transports=polling``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from flask import Flask, abort, request, send_file

from flask_ext import SocketIO, emit, join_room, leave_room, rooms

HERE = Path(__file__).resolve().parent
CLIENT_BUNDLE = HERE / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

app = Flask(__name__)
socketio = SocketIO(app)
nicknames: dict[str, str] = {}  # socket id -> nickname, for this process's clients


@app.get("/")
def index() -> Any:
    return send_file(HERE / "static" / "index.html")


@app.get("/socket.io.min.js")
def client_bundle() -> Any:
    if not CLIENT_BUNDLE.exists():
        abort(404, "run `npm install` in examples/chat first")
    return send_file(CLIENT_BUNDLE, mimetype="application/javascript")


def current_rooms() -> list[str]:
    return [room for room in rooms() if room != request.sid]


@socketio.on("connect")
def connect(auth: dict[str, Any] | None) -> None:
    nicknames[request.sid] = str((auth or {}).get("nickname") or "anonymous")[:32]


@socketio.on("join")
def join(room: str) -> dict[str, str]:
    room = str(room)[:64] or "lobby"
    for old in current_rooms():
        leave_room(old)
        emit("notice", f"{nicknames[request.sid]} left", to=old)
    join_room(room)
    emit("notice", f"{nicknames[request.sid]} joined", to=room, include_self=False)
    return {"room": room}


@socketio.on("chat")
def chat(text: str) -> str:
    message = {"from": nicknames[request.sid], "text": str(text)[:500]}
    for room in current_rooms():
        emit("chat", message, to=room)
    return "ok"


@socketio.on("disconnect")
def disconnect(reason: str) -> None:
    nickname = nicknames.pop(request.sid, "anonymous")
    for room in current_rooms():  # the rooms are still readable here
        emit("notice", f"{nickname} left", to=room, include_self=False)


def main() -> None:
    parser = argparse.ArgumentParser(description="geventsio chat example")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(f"Chat demo on http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    socketio.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
