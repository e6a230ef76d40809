"""The server's observer hook points: what an observer (metrics, the Admin UI) is told."""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

import geventsio
from geventsio.server.observer import Observer
from tests.support import wait_until


class Recorder(Observer):
    """Records every call as ``(hook, details...)`` with ids, not objects."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def session_opened(self, session: Any) -> None:
        self.calls.append(("session_opened", session.transport.value))

    def session_closed(self, session: Any, reason: Any) -> None:
        self.calls.append(("session_closed", reason.value))

    def socket_connected(self, socket: geventsio.Socket) -> None:
        self.calls.append(("socket_connected", socket.namespace.name, socket.id))

    def socket_disconnected(self, socket: geventsio.Socket, reason: Any) -> None:
        self.calls.append(("socket_disconnected", socket.id, reason.value))

    def room_joined(self, socket: geventsio.Socket, room: str) -> None:
        self.calls.append(("room_joined", socket.id, room))

    def room_left(self, socket: geventsio.Socket, room: str) -> None:
        self.calls.append(("room_left", socket.id, room))

    def event_handled(self, socket: geventsio.Socket, event: str, seconds: float) -> None:
        assert seconds >= 0
        self.calls.append(("event_handled", event))

    def hooks(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]


def test_an_observer_hears_sockets_rooms_and_handlers_in_order(sio_server):
    app = sio_server()
    first, second = Recorder(), Recorder()
    app.sio.add_observer(first)
    app.sio.add_observer(second)

    @app.sio.on("connect")
    def connect(socket: geventsio.Socket) -> None:
        socket.join("lobby")  # before the acknowledgement: reported with the connect

    @app.sio.on("join")
    def join(socket: geventsio.Socket, room: str) -> str:
        socket.join(room)
        socket.join(room)  # already in: not reported again
        socket.leave("lobby")
        socket.leave("never-joined")
        return "ok"

    client = app.raw()
    socket_id = client.connect()
    client.emit("join", "games", ack_id=1)
    assert client.recv() == '31["ok"]'
    client.emit("unhandled")
    wait_until(lambda: len(first.hooks("event_handled")) == 2)
    client.ws.close()
    wait_until(lambda: first.hooks("session_closed"))

    assert first.calls == second.calls  # both members of the group hear everything
    calls = [c for c in first.calls if c[0] != "session_closed"]
    joined_at_connect = {c[2] for c in calls[1:3]}
    assert calls[0] == ("session_opened", "websocket")
    assert joined_at_connect == {socket_id, "lobby"}
    assert calls[1][0] == calls[2][0] == "room_joined"
    assert calls[3:] == [
        ("socket_connected", "/", socket_id),
        ("room_joined", socket_id, "games"),
        ("room_left", socket_id, "lobby"),
        ("event_handled", "join"),
        ("event_handled", "unhandled"),
        ("room_left", socket_id, ANY),
        ("room_left", socket_id, ANY),
        ("socket_disconnected", socket_id, "transport close"),
    ]
    assert {c[2] for c in calls[-3:-1]} == {socket_id, "games"}
    assert first.hooks("session_closed") == [("session_closed", "transport close")]


def test_a_refused_socket_is_never_reported(sio_server):
    app = sio_server()
    recorder = Recorder()
    app.sio.add_observer(recorder)
    app.sio.on("connect", lambda socket: False)
    client = app.raw()
    client.send("0")
    assert client.recv().startswith("4")
    client.ws.close()
    wait_until(lambda: recorder.hooks("session_closed"))
    assert not [c for c in recorder.calls if c[0].startswith(("socket", "room"))]
