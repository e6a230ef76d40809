"""SocketIO's options: Flask-SocketIO's names translated, nothing silently ignored."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask

from flask_ext import MessageQueueNotAvailable, SocketIO
from geventsio.options import CookieOptions, Transport


def engine_options(socketio: SocketIO):
    assert socketio.server is not None
    return socketio.server.engine.options


def test_unknown_option_is_a_type_error_naming_it(app: Flask) -> None:
    with pytest.raises(TypeError, match="'cors_alowed_origins'"):
        SocketIO(app, cors_alowed_origins="*")
    with pytest.raises(TypeError, match="'client_manager'"):
        SocketIO(client_manager=object())  # checked before init_app too


@pytest.mark.parametrize("mode", ["eventlet", "threading", "gevent_uwsgi", "asgi"])
def test_async_modes_other_than_gevent_are_refused(app: Flask, mode: str) -> None:
    with pytest.raises(ValueError, match=f"async_mode={mode!r}"):
        SocketIO(app, async_mode=mode)


@pytest.mark.parametrize("mode", [None, "gevent"])
def test_gevent_async_mode_is_accepted(app: Flask, mode: str | None) -> None:
    assert SocketIO(app, async_mode=mode).async_mode == "gevent"


@pytest.mark.parametrize("url", ["amqp://guest@localhost//", "kafka://localhost:9092", 42])
def test_a_message_queue_other_than_redis_is_refused(app: Flask, url: object) -> None:
    with pytest.raises(MessageQueueNotAvailable, match="only Redis") as info:
        SocketIO(app, message_queue=url, channel="chat")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, NotImplementedError)
    SocketIO(app, message_queue=None)  # the default is fine


def test_flask_socketio_options_are_translated(app: Flask) -> None:
    socketio = SocketIO(
        app,
        ping_interval=0.3,
        ping_timeout=0.7,
        max_http_buffer_size=1234,
        cors_allowed_origins=["https://a.example", "https://b.example"],
        cors_credentials=False,
        cookie="sio",
        path="realtime",
        transports=["websocket"],
        allow_upgrades=False,
    )
    options = engine_options(socketio)
    assert (options.ping_interval, options.ping_timeout) == (0.3, 0.7)
    assert options.max_payload == 1234
    assert options.cors_allowed_origins == ("https://a.example", "https://b.example")
    assert options.cors_credentials is False
    assert options.cookie == CookieOptions(name="sio")
    assert options.path == "/realtime/"
    assert options.transports == (Transport.WEBSOCKET,)
    assert options.allow_upgrades is False


@pytest.mark.parametrize(
    ("given", "policy"),
    [
        (None, None),
        ("*", "*"),
        (["*"], "*"),
        ([], "*"),
        ("https://a.example", ("https://a.example",)),
    ],
)
def test_cors_allowed_origins(app: Flask, given: object, policy: object) -> None:
    socketio = SocketIO(app, cors_allowed_origins=given)
    assert engine_options(socketio).cors_allowed_origins == policy


def test_cookie_as_a_dict(app: Flask) -> None:
    socketio = SocketIO(
        app,
        cookie={
            "name": "io",
            "path": "/app",
            "samesite": "Strict",
            "secure": True,
            "httponly": False,
        },
    )
    assert engine_options(socketio).cookie == CookieOptions(
        name="io", path="/app", same_site="Strict", secure=True, http_only=False
    )


def test_ping_interval_with_a_grace_period_keeps_the_interval(app: Flask) -> None:
    assert engine_options(SocketIO(app, ping_interval=(0.25, 5))).ping_interval == 0.25


def test_options_accepted_and_ignored(app: Flask) -> None:
    socketio = SocketIO(
        app,
        json=json,
        always_connect=True,
        monitor_clients=False,
    )
    assert socketio.server is not None


def test_http_compression_options_reach_the_engine(app: Flask) -> None:
    assert engine_options(SocketIO(app)).http_compression is True
    assert engine_options(SocketIO(app)).compression_threshold == 1024
    socketio = SocketIO(app, http_compression=False, compression_threshold=2048)
    assert engine_options(socketio).http_compression is False
    assert engine_options(socketio).compression_threshold == 2048


def test_allow_eio3_reaches_the_engine(app: Flask) -> None:
    # Neither Flask-SocketIO nor python-engineio (since 4.0) has an option for Engine.IO
    # v3 clients: geventsio's name, Node's allowEIO3, passes through.
    assert engine_options(SocketIO(app)).allow_eio3 is False
    assert engine_options(SocketIO(app, allow_eio3=True)).allow_eio3 is True


def test_serializer_reaches_the_server(app: Flask) -> None:
    # python-socketio's option name; its values "json" and "msgpack" (a class is refused)
    assert SocketIO(app).server.serializer.name == "json"  # type: ignore[union-attr]
    socketio = SocketIO(app, serializer="msgpack")
    assert socketio.server.serializer.name == "msgpack"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="serializer"):
        SocketIO(app, serializer=object())


def test_json_must_look_like_a_json_module(app: Flask) -> None:
    with pytest.raises(TypeError, match="dumps"):
        SocketIO(app, json=object())


def test_an_option_and_its_geventsio_name_together_are_refused(app: Flask) -> None:
    with pytest.raises(TypeError, match="max_http_buffer_size"):
        SocketIO(app, max_http_buffer_size=10, max_payload=20)


def test_geventsio_options_pass_through(app: Flask) -> None:
    socketio = SocketIO(app, connect_timeout=3, upgrade_timeout=2, max_buffer_size=4096)
    assert socketio.server is not None
    assert socketio.server.connect_timeout == 3
    assert engine_options(socketio).upgrade_timeout == 2
    assert engine_options(socketio).max_buffer_size == 4096


def test_async_handlers_default_and_explicit(app: Flask) -> None:
    default = SocketIO(app)
    assert default.server is not None and default.server.async_handlers is False
    explicit = SocketIO(Flask("other"), async_handlers=True)
    assert explicit.server is not None and explicit.server.async_handlers is True


def test_application_factory(app: Flask) -> None:
    socketio = SocketIO(ping_interval=0.5, manage_session=False)
    assert socketio.server is None

    @socketio.on("hello")
    def hello(data: str) -> str:
        return data.upper()

    socketio.init_app(app, ping_timeout=0.9)
    assert app.extensions["socketio"] is socketio
    assert socketio.manage_session is False
    options = engine_options(socketio)
    assert (options.ping_interval, options.ping_timeout) == (0.5, 0.9)
    assert socketio.test_client(app).emit("hello", "hi", callback=True) == "HI"


def test_init_app_wraps_the_wsgi_app(app: Flask) -> None:
    @app.route("/")
    def index() -> str:
        return "flask"

    SocketIO(app)
    client = app.test_client()
    assert client.get("/").text == "flask"
    handshake = client.get("/socket.io/?EIO=4&transport=polling")
    assert handshake.status_code == 200
    assert handshake.text.startswith("0{")


def test_logger_true_sets_info_levels_only_when_asked(app: Flask) -> None:
    SocketIO(app)
    assert logging.getLogger("geventsio.server").level == logging.NOTSET
    SocketIO(Flask("two"), logger=True, engineio_logger=True)
    assert logging.getLogger("geventsio.server").level == logging.INFO
    assert logging.getLogger("geventsio.engine").level == logging.INFO


def test_logger_object_receives_the_records(app: Flask) -> None:
    target = logging.getLogger("tests.flask_ext.app_logger")
    target.setLevel(logging.DEBUG)
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect()
    target.addHandler(handler)
    try:
        SocketIO(app, logger=target)
        logging.getLogger("geventsio.server.socket").debug("from the library")
    finally:
        target.removeHandler(handler)
    assert seen == ["from the library"]


def test_logger_must_be_a_bool_or_a_logger(app: Flask) -> None:
    with pytest.raises(TypeError, match="engineio_logger"):
        SocketIO(app, engineio_logger="yes")
