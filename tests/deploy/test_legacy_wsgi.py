"""WSGIApp in front of an existing WSGI application: Socket.IO at its path, and every
other request -- method, headers, body, streamed response -- passed through untouched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent.event
import orjson
import pytest
from flask import Flask, Response, redirect, request

import geventsio
from tests.conftest import ServeApp
from tests.support import HttpClient, LiveServer, eio_target

ALL_BYTES = bytes(range(256)) * 4


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A bare WSGI callable that answers with what it received, as JSON."""
    length = environ.get("CONTENT_LENGTH")
    body = environ["wsgi.input"].read(int(length)) if length else environ["wsgi.input"].read()
    received = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "x_custom": environ.get("HTTP_X_CUSTOM"),
        "content_type": environ.get("CONTENT_TYPE"),
        "body": body.hex(),
    }
    payload = orjson.dumps(received)
    start_response(
        "207 Multi-Status",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("X-Legacy", "yes"),
            ("Set-Cookie", "a=1; Path=/"),
            ("Set-Cookie", "b=2; Path=/"),
        ],
    )
    return [payload]


def serve(serve_app: ServeApp, legacy: Any) -> tuple[LiveServer, geventsio.Server]:
    sio = geventsio.Server()
    return serve_app(geventsio.WSGIApp(sio, legacy), engine=sio.engine), sio


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods_headers_and_bodies_pass_through(serve_app: ServeApp, method: str) -> None:
    server, _ = serve(serve_app, echo_app)
    body = b"" if method in ("GET", "OPTIONS") else ALL_BYTES
    with HttpClient(server.host, server.port) as http:
        response = http.request(
            method,
            "/orders/7?x=1&y=%C3%A9",
            body=body,
            headers=[("X-Custom", "kept"), ("Content-Type", "application/octet-stream")],
        )

    assert response.status == 207
    assert response.header("X-Legacy") == "yes"
    assert response.header_values("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.json() == {
        "method": method,
        "path": "/orders/7",
        "query": "x=1&y=%C3%A9",
        "x_custom": "kept",
        "content_type": "application/octet-stream",
        "body": body.hex(),
    }


def test_head_gets_the_head_only(serve_app: ServeApp) -> None:
    server, _ = serve(serve_app, echo_app)
    with HttpClient(server.host, server.port) as http:
        head = http.request("HEAD", "/anything")
        after = http.get("/after")  # the same connection: no stray body in between

    assert head.status == 207
    assert int(head.header("Content-Length") or 0) > 0
    assert (after.status, after.json()["path"]) == (207, "/after")


def test_a_chunked_request_body(serve_app: ServeApp) -> None:
    server, _ = serve(serve_app, echo_app)
    with HttpClient(server.host, server.port) as http:
        chunked = http.request("PUT", "/upload", body=ALL_BYTES, chunked=True)

    assert chunked.json()["body"] == ALL_BYTES.hex()


@pytest.mark.parametrize(
    "path", ["/socket.io.js", "/socket.iox", "/socket.io/extra", "/SOCKET.IO/"]
)
def test_paths_near_the_socketio_path_reach_the_legacy_app(serve_app: ServeApp, path: str) -> None:
    server, _ = serve(serve_app, echo_app)
    with HttpClient(server.host, server.port) as http:
        response = http.get(path)
    assert (response.status, response.json()["path"]) == (207, path)


def test_the_socketio_path_never_reaches_the_legacy_app(serve_app: ServeApp) -> None:
    calls: list[str] = []

    def legacy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        return echo_app(environ, start_response)

    server, _ = serve(serve_app, legacy)
    client = server.polling()
    client.handshake()
    client.close()
    with HttpClient(server.host, server.port) as http:
        assert http.get(eio_target("/socket.io", "nope")).status == 400

    assert calls == []


def test_a_streamed_response_is_not_buffered(serve_app: ServeApp) -> None:
    release = gevent.event.Event()
    closed = gevent.event.Event()

    def streaming(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            yield b"first"
            release.wait(5)
            yield b"second"
        finally:
            closed.set()

    server, _ = serve(serve_app, streaming)
    with HttpClient(server.host, server.port) as http:
        http.send_request("GET", "/stream")
        head = http.read_head()
        assert head.header("Transfer-Encoding") == "chunked"
        assert http.read_exact(10) == b"5\r\nfirst\r\n"  # before the generator goes on
        assert not closed.is_set()
        release.set()
        assert http.read_exact(11) == b"6\r\nsecond\r\n"
        assert http.read_exact(5) == b"0\r\n\r\n"
    assert closed.wait(5)


class DjangoStyleHandler:
    """A WSGI handler object as Django's: an instance, and a response with close()."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> DjangoStyleResponse:
        response = DjangoStyleResponse(self, environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return response


class DjangoStyleResponse:
    def __init__(self, handler: DjangoStyleHandler, path: str) -> None:
        self.handler = handler
        self.path = path

    def __iter__(self) -> Iterator[bytes]:
        yield f"<p>{self.path}</p>".encode()

    def close(self) -> None:  # Django sends request_finished here
        self.handler.closed.append(self.path)


def test_a_django_style_handler_gets_its_response_closed(serve_app: ServeApp) -> None:
    handler = DjangoStyleHandler()
    server, _ = serve(serve_app, handler)
    with HttpClient(server.host, server.port) as http:
        response = http.get("/admin/")

    assert (response.status, response.body) == (200, b"<p>/admin/</p>")
    assert handler.closed == ["/admin/"]


def flask_app(sio: geventsio.Server) -> Flask:
    app = Flask(__name__)

    @app.route("/items/<int:item>", methods=["GET", "PUT", "DELETE"])
    def item(item: int) -> Any:
        if request.method == "PUT":
            return {"item": item, "saved": request.get_json()}, 201
        if request.method == "DELETE":
            sio.emit("deleted", item)
            return "", 204
        return {"item": item, "cookie": request.cookies.get("session")}

    @app.post("/login")
    def login() -> Any:
        response = redirect("/items/1", code=303)
        response.set_cookie("session", request.form["user"])
        return response

    @app.get("/stream")
    def stream() -> Response:
        return Response((f"{n}\n" for n in range(3)), mimetype="text/plain")

    return app


def test_a_flask_app_with_its_routes_errors_cookies_and_streams(serve_app: ServeApp) -> None:
    sio = geventsio.Server()
    app = flask_app(sio)
    app.wsgi_app = geventsio.WSGIApp(sio, app.wsgi_app)  # type: ignore[method-assign]
    server = serve_app(app, engine=sio.engine)

    with HttpClient(server.host, server.port) as http:
        login = http.request(
            "POST",
            "/login",
            body=b"user=ann",
            headers=[("Content-Type", "application/x-www-form-urlencoded")],
        )
        got = http.get("/items/3", [("Cookie", "session=ann")])
        put = http.request(
            "PUT", "/items/3", body=b'{"n": 1}', headers=[("Content-Type", "application/json")]
        )
        deleted = http.request("DELETE", "/items/3")
        missing = http.get("/nowhere")
        not_allowed = http.request("POST", "/items/3")
        streamed = http.get("/stream")

    assert (login.status, login.header("Location")) == (303, "/items/1")
    assert "session=ann" in (login.header("Set-Cookie") or "")
    assert got.json() == {"item": 3, "cookie": "ann"}
    assert (put.status, put.json()) == (201, {"item": 3, "saved": {"n": 1}})
    assert (deleted.status, deleted.body) == (204, b"")
    assert (missing.status, not_allowed.status) == (404, 405)
    assert streamed.body == b"0\n1\n2\n"
