"""The Flask session in Socket.IO handlers: live with ``manage_session=False``, and never
in ``socket.data`` (which ``fetch_sockets()`` sends to the other servers)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Request, Response, session
from flask.sessions import SessionInterface, SessionMixin
from flask_login import LoginManager, UserMixin, current_user, login_user
from werkzeug.datastructures import CallbackDict

from flask_ext import SocketIO
from tests.flask_ext.test_message_queue import subscribers
from tests.support.waiting import wait_until


class _StoredSession(CallbackDict[str, Any], SessionMixin):
    def __init__(self, sid: str, initial: dict[str, Any]) -> None:
        def changed(_: Any) -> None:
            self.modified = True

        super().__init__(initial, changed)
        self.sid = sid
        self.modified = False


class ServerSideSessions(SessionInterface):
    """A server-side session store (what Flask-Session does): the cookie holds an id."""

    def __init__(self) -> None:
        self.store: dict[str, dict[str, Any]] = {}

    def open_session(self, app: Flask, request: Request) -> _StoredSession:
        sid = request.cookies.get(self.get_cookie_name(app)) or secrets.token_hex(8)
        return _StoredSession(sid, dict(self.store.get(sid, {})))

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, _StoredSession)
        self.store[session.sid] = dict(session)
        response.set_cookie(self.get_cookie_name(app), session.sid)


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def login_app(app: Flask, **options: Any) -> SocketIO:
    manager = LoginManager(app)
    manager.user_loader(User)

    @app.route("/login/<name>")
    def login(name: str) -> str:
        login_user(User(name))
        return "ok"

    socketio = SocketIO(app, **options)

    @socketio.on("whoami")
    def whoami() -> str | None:
        return current_user.id if current_user.is_authenticated else None

    return socketio


def test_a_live_session_sees_a_login_made_over_http_after_connecting(app: Flask) -> None:
    app.session_interface = ServerSideSessions()
    socketio = login_app(app, manage_session=False)
    http = app.test_client()
    http.get("/login/nobody-yet")  # gives the browser its session id cookie
    client = socketio.test_client(app, flask_test_client=http)
    assert client.emit("whoami", callback=True) == "nobody-yet"
    http.get("/login/ada")  # a new login over HTTP, after the connection was made
    assert client.emit("whoami", callback=True) == "ada"


def test_a_managed_session_keeps_the_copy_taken_at_connect(app: Flask) -> None:
    socketio = login_app(app)
    http = app.test_client()
    http.get("/login/ada")
    client = socketio.test_client(app, flask_test_client=http)
    http.get("/login/grace")
    assert client.emit("whoami", callback=True) == "ada"


@pytest.fixture
def two_nodes(redis_url: str, key: str) -> Iterator[list[tuple[Flask, SocketIO]]]:
    nodes: list[tuple[Flask, SocketIO]] = []
    for _ in range(2):
        app = Flask(__name__)
        app.config.update(SECRET_KEY="test", TESTING=True)
        nodes.append((app, login_app(app, message_queue=redis_url, channel=key)))
    wait_until(
        lambda: subscribers(redis_url, f"{key}-request#/#") >= 2, 5.0, "both adapters subscribed"
    )
    yield nodes
    for _, socketio in nodes:
        socketio.require_server().shutdown()


def test_fetch_sockets_across_two_nodes_carries_no_session_data(
    two_nodes: list[tuple[Flask, SocketIO]],
) -> None:
    (app_a, socketio_a), (_, socketio_b) = two_nodes

    @socketio_a.on("remember")
    def remember(secret: str) -> None:
        session["secret"] = secret

    http = app_a.test_client()
    http.get("/login/ada")
    client = socketio_a.test_client(app_a, flask_test_client=http)
    assert client.emit("whoami", callback=True) == "ada"
    client.emit("remember", "s3cr3t")
    sockets = socketio_b.require_server().fetch_sockets()
    assert [s.id for s in sockets] == [client.get_sid()]
    carried = repr(sockets[0].data)
    assert "ada" not in carried and "s3cr3t" not in carried and "_user_id" not in carried
