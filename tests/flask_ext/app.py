"""A Flask-SocketIO application, as its users write them, with only the import changed.

Used by the test-client tests and by the end-to-end tests (served for real, driven by
Node's socket.io-client). ``create_app()`` builds a fresh one for each test.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request, session
from flask_login import LoginManager, UserMixin, current_user, login_user

from flask_ext import (
    ConnectionRefusedError,
    Namespace,
    SocketIO,
    close_room,
    disconnect,
    emit,
    join_room,
    leave_room,
    rooms,
    send,
)


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


class Chat(Namespace):
    """A class-based namespace."""

    def on_connect(self, auth: Any) -> None:
        emit("welcome", {"sid": request.sid, "auth": auth})

    def on_disconnect(self, reason: str) -> None:
        self.socketio.events.append(("chat disconnect", reason))  # type: ignore[union-attr]

    def on_echo(self, *args: Any) -> Any:
        emit("echoed", args)
        return args

    def on_shout(self, text: str) -> None:
        self.emit("shouted", text.upper())

    def on_whoami(self) -> dict[str, Any]:
        return {"namespace": request.namespace, "user": current_user.get_id()}


def create_app(**options: Any) -> tuple[Flask, SocketIO]:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test secret", TESTING=True)
    socketio = SocketIO(app, **options)
    socketio.events = []  # type: ignore[attr-defined]  # what handlers observed
    events: list[Any] = socketio.events  # type: ignore[attr-defined]
    login_manager = LoginManager(app)

    @login_manager.user_loader
    def load_user(name: str) -> User:
        return User(name)

    # -- HTTP views ---------------------------------------------------------------------

    @app.route("/login/<name>")
    def login(name: str) -> str:
        login_user(User(name))
        session["color"] = "blue"
        return "ok"

    @app.route("/notify/<room>/<text>")
    def notify(room: str, text: str) -> str:
        socketio.emit("notice", {"room": room, "text": text}, to=room)
        return "sent"

    @app.route("/stop")
    def stop() -> str:
        socketio.stop()
        return "stopping"

    # -- the main namespace -------------------------------------------------------------

    @socketio.on("connect")
    def on_connect(auth: Any) -> Any:
        if request.args.get("refuse") == "false":
            return False
        if request.args.get("refuse") == "raise":
            raise ConnectionRefusedError("go away", {"code": 42})
        g.seen = "connect"
        emit("hello", {"auth": auth, "user": current_user.get_id()})
        return None

    @socketio.on("disconnect")
    def on_disconnect(reason: str) -> None:
        events.append(("disconnect", request.sid, reason))

    @socketio.event
    def echo(*args: Any) -> Any:
        emit("echo", args)
        return args if len(args) != 1 else args[0]

    @socketio.on("pair")
    def pair() -> tuple[int, str]:
        emit("pair", (1, "two"))
        return 1, "two"

    @socketio.on("message")
    def on_message(text: str) -> str:
        send(text)
        return text

    @socketio.on("json")
    def on_json(data: dict[str, Any]) -> None:
        send(data, json=True, broadcast=True)

    @socketio.on("join")
    def on_join(room: str) -> list[str]:
        join_room(room)
        return rooms()

    @socketio.on("leave")
    def on_leave(room: str) -> None:
        leave_room(room)

    @socketio.on("to room")
    def to_room(room: str, text: str, include_self: bool = True) -> None:
        emit("room message", text, to=room, include_self=include_self)

    @socketio.on("close room")
    def on_close_room(room: str) -> None:
        close_room(room)

    @socketio.on("broadcast")
    def on_broadcast(text: str) -> None:
        emit("broadcasted", text, broadcast=True, include_self=False)

    @socketio.on("session get")
    def session_get(key: str) -> Any:
        return session.get(key)

    @socketio.on("session set")
    def session_set(key: str, value: Any) -> None:
        session[key] = value

    @socketio.on("whoami")
    def whoami() -> dict[str, Any]:
        return {
            "user": current_user.get_id(),
            "color": session.get("color"),
            "sid": request.sid,
            "namespace": request.namespace,
            "event": request.event,
            "g": getattr(g, "seen", None),
        }

    @socketio.on("ask")
    def ask(question: str) -> None:
        def answered(*answer: Any) -> None:
            emit("answered", {"answer": list(answer), "sid": request.sid})

        emit("question", question, callback=answered)

    @socketio.on("kick me")
    def kick_me() -> None:
        disconnect()

    @socketio.on("fail")
    def fail(kind: str) -> None:
        raise ValueError(kind)

    @socketio.on_error()
    def main_error(exc: Exception) -> Any:
        if str(exc) == "reraise":
            raise exc
        events.append(("error /", request.sid, repr(exc)))
        return "handled: " + str(exc)

    @socketio.on("background")
    def background(text: str) -> None:
        sid = request.sid

        def task() -> None:
            socketio.sleep(0)
            socketio.emit("from background", text, to=sid)

        socketio.start_background_task(task)

    # -- other namespaces ----------------------------------------------------------------

    @socketio.on("fail", namespace="/other")
    def fail_other(kind: str) -> None:
        raise KeyError(kind)

    @socketio.on("echo", namespace="/other")
    def echo_other(data: Any) -> Any:
        emit("echo", data)
        return data

    @socketio.on_error_default
    def default_error(exc: Exception) -> str:
        return "default: " + type(exc).__name__

    socketio.on_namespace(Chat("/chat"))
    return app, socketio
