"""``@socketio.before_event`` and ``Namespace.before_event``: per-event authorisation."""

from __future__ import annotations

from typing import Any

from flask import Flask, session

from flask_ext import Namespace, SocketIO, disconnect, emit


def test_before_event_refuses_with_an_ack_and_lets_the_rest_through(
    app: Flask, socketio: SocketIO
) -> None:
    seen: list[tuple[str, tuple[Any, ...]]] = []

    @socketio.before_event
    def only_members(event: str, *args: Any) -> Any:
        seen.append((event, args))
        if event == "secret" and not session.get("member"):
            return {"error": "members only"}
        return None

    @socketio.on("secret")
    def secret(x: int) -> str:
        return f"secret {x}"

    @socketio.on("join")
    def join() -> str:
        session["member"] = True
        return "joined"

    client = socketio.test_client(app)
    assert client.emit("secret", 1, callback=True) == {"error": "members only"}
    assert client.emit("join", callback=True) == "joined"
    assert client.emit("secret", 2, callback=True) == "secret 2"
    assert seen == [("secret", (1,)), ("join", ()), ("secret", (2,))]


def test_before_event_can_disconnect(app: Flask, socketio: SocketIO) -> None:
    handled: list[str] = []

    @socketio.before_event(namespace="*")
    def kick(event: str, *args: Any) -> None:
        if event == "bad":
            disconnect()

    @socketio.on("*", namespace="/chat")
    def anything(event: str, *args: Any) -> None:
        handled.append(event)

    client = socketio.test_client(app, namespace="/chat")
    client.emit("good", namespace="/chat")
    client.emit("bad", namespace="/chat")
    assert handled == ["good"]
    assert not client.is_connected("/chat")


def test_namespace_before_event(app: Flask, socketio: SocketIO) -> None:
    class Guarded(Namespace):
        def before_event(self, event: str, *args: Any) -> Any:
            return "refused" if args and args[0] < 0 else None

        def on_square(self, x: int) -> int:
            emit("squared", x * x)
            return x * x

    socketio.on_namespace(Guarded("/math"))
    client = socketio.test_client(app, namespace="/math")
    assert client.emit("square", -3, namespace="/math", callback=True) == "refused"
    assert client.emit("square", 3, namespace="/math", callback=True) == 9
    assert [e["args"] for e in client.get_received("/math")] == [[9]]
