"""The take-over seam (geventsio.engine.takeover): how a request's connection becomes a
WebSocket under geventsio's handler."""

from __future__ import annotations

import pytest

from geventsio.engine.takeover import EnvironHeaders
from geventsio.exceptions import RemoteProtocolError
from geventsio.protocol.websocket_handshake import check_client_handshake

ENVIRON = {
    "REQUEST_METHOD": "GET",
    "HTTP_HOST": "example.com",
    "HTTP_UPGRADE": "WebSocket",
    "HTTP_CONNECTION": "keep-alive, Upgrade",
    "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==",
    "HTTP_SEC_WEBSOCKET_VERSION": "13",
    "HTTP_X_CUSTOM_THING": "x",
    "wsgi.url_scheme": "http",
}


def test_environ_headers_read_the_environ_by_lower_case_dashed_name():
    headers = EnvironHeaders(ENVIRON)
    assert headers.get("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ=="
    assert headers["x-custom-thing"] == "x"
    assert headers.get("sec-websocket-extensions") is None
    assert headers.get("origin", "") == ""
    with pytest.raises(KeyError):
        headers["origin"]
    assert dict(headers) == {
        "host": "example.com",
        "upgrade": "WebSocket",
        "connection": "keep-alive, Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
        "x-custom-thing": "x",
    }
    assert len(headers) == 6


def test_the_handshake_checks_read_the_environ_headers():
    assert check_client_handshake(EnvironHeaders(ENVIRON)) == "dGhlIHNhbXBsZSBub25jZQ=="
    for key, value in [
        ("HTTP_UPGRADE", "h2c"),
        ("HTTP_CONNECTION", "keep-alive"),
        ("HTTP_SEC_WEBSOCKET_VERSION", "8"),
        ("HTTP_SEC_WEBSOCKET_KEY", "short"),
    ]:
        with pytest.raises(RemoteProtocolError):
            check_client_handshake(EnvironHeaders({**ENVIRON, key: value}))
    without_key = {k: v for k, v in ENVIRON.items() if k != "HTTP_SEC_WEBSOCKET_KEY"}
    with pytest.raises(RemoteProtocolError):
        check_client_handshake(EnvironHeaders(without_key))
