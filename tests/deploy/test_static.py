"""WSGIApp(static_files=...): files and folders at URL prefixes, and no way out of them."""

from __future__ import annotations

import email.utils
import os
from pathlib import Path
from typing import Any

import pytest

import geventsio
from geventsio.serving.static import StaticFiles
from tests.conftest import ServeApp
from tests.support import HttpClient, HttpResponse, LiveServer

INDEX = b"<!doctype html><title>home</title>"
SCRIPT = b"console.log('hi');\n"
SECRET = b"top secret\n"


def legacy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = f"legacy {environ['REQUEST_METHOD']} {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """root/index.html, root/public/{app.js, img/logo.png, inside -> app.js, outside ->
    ../secret.txt, escape -> /}, and root/secret.txt outside the public folder."""
    (tmp_path / "index.html").write_bytes(INDEX)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    public = tmp_path / "public"
    (public / "img").mkdir(parents=True)
    (public / "app.js").write_bytes(SCRIPT)
    (public / "img" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    (public / "inside").symlink_to(public / "app.js")
    (public / "outside").symlink_to(tmp_path / "secret.txt")
    (public / "escape").symlink_to("/")
    return tmp_path


@pytest.fixture
def server(serve_app: ServeApp, site: Path) -> LiveServer:
    sio = geventsio.Server()
    app = geventsio.WSGIApp(
        sio,
        legacy,
        static_files={"/": site / "index.html", "/static": str(site / "public") + "/"},
    )
    return serve_app(app, engine=sio.engine)


def request(
    server: LiveServer, method: str, target: str, *headers: tuple[str, str]
) -> HttpResponse:
    with HttpClient(server.host, server.port) as http:
        return http.request(method, target, headers=list(headers))


def test_a_file_and_the_files_of_a_folder(server: LiveServer, site: Path) -> None:
    index = request(server, "GET", "/")
    script = request(server, "GET", "/static/app.js")
    logo = request(server, "GET", "/static/img/logo.png")
    linked = request(server, "GET", "/static/inside")  # a symlink that stays inside

    assert (index.status, index.body) == (200, INDEX)
    assert index.header("Content-Type") == "text/html; charset=utf-8"
    assert index.header("Content-Length") == str(len(INDEX))
    assert index.header("X-Content-Type-Options") == "nosniff"
    mtime = int(os.stat(site / "index.html").st_mtime)
    assert index.header("Last-Modified") == email.utils.formatdate(mtime, usegmt=True)
    assert (script.status, script.body) == (200, SCRIPT)
    assert script.header("Content-Type") == "text/javascript; charset=utf-8"
    assert (logo.status, logo.header("Content-Type"), len(logo.body)) == (200, "image/png", 2008)
    assert (linked.status, linked.body) == (200, SCRIPT)


def test_head_and_if_modified_since(server: LiveServer, site: Path) -> None:
    head = request(server, "HEAD", "/static/app.js")
    last_modified = head.header("Last-Modified") or ""
    unchanged = request(server, "GET", "/static/app.js", ("If-Modified-Since", last_modified))
    older = email.utils.formatdate(os.stat(site / "public" / "app.js").st_mtime - 60, usegmt=True)
    changed = request(server, "GET", "/static/app.js", ("If-Modified-Since", older))
    garbage = request(server, "GET", "/static/app.js", ("If-Modified-Since", "yesterday"))

    assert (head.status, head.body, head.header("Content-Length")) == (200, b"", str(len(SCRIPT)))
    assert (unchanged.status, unchanged.body) == (304, b"")
    assert unchanged.header("Last-Modified") == last_modified
    assert (changed.status, changed.body) == (200, SCRIPT)
    assert (garbage.status, garbage.body) == (200, SCRIPT)


@pytest.mark.parametrize(
    "target",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/%2e%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/img/../../secret.txt",
        "/static/./app.js",
        "/static/..\\secret.txt",
        "/static/outside",
        "/static/escape/etc/passwd",
        "/static/app.js%00.png",
    ],
)
def test_no_way_out_of_the_folder(server: LiveServer, target: str) -> None:
    response = request(server, "GET", target)

    assert (response.status, response.body) == (404, b"Not Found")


@pytest.mark.parametrize(
    "target", ["/static//etc/passwd", "/static/%252e%252e/secret.txt", "/static/nothing.js"]
)
def test_what_is_not_a_file_there_goes_to_the_legacy_app(server: LiveServer, target: str) -> None:
    response = request(server, "GET", target)

    assert response.status == 200
    assert response.body.startswith(b"legacy GET /static/")
    assert b"root:" not in response.body


@pytest.mark.parametrize(
    ("method", "target"),
    [("POST", "/"), ("PUT", "/static/app.js"), ("GET", "/index.html"), ("GET", "/staticx/app.js")],
)
def test_other_methods_and_paths_go_to_the_legacy_app(
    server: LiveServer, method: str, target: str
) -> None:
    response = request(server, method, target)

    assert (response.status, response.body) == (200, f"legacy {method} {target}".encode())


def test_socketio_still_answers_at_its_path(server: LiveServer) -> None:
    client = server.polling()
    client.handshake()
    client.close()


def test_prefixes_must_be_absolute(site: Path) -> None:
    with pytest.raises(ValueError, match="start with '/'"):
        StaticFiles({"static": site})
