"""The polling handshake and the checks every request goes through (Node's codes 0-5)."""

from __future__ import annotations

import logging
import re
import time

import pytest

from geventsio.engine.server import EngineServer
from geventsio.exceptions import RemoteProtocolError
from geventsio.options import CookieOptions, EngineOptions
from geventsio.protocol.engineio import decode_payload
from tests.support import (
    HandshakeRefused,
    assert_still_serving,
    decode_open,
    eio_target,
    elapsed,
    wait_until,
)

NODE_MESSAGES = {
    0: "Transport unknown",
    1: "Session ID unknown",
    2: "Bad handshake method",
    3: "Bad request",
    4: "Forbidden",
    5: "Unsupported protocol version",
}
URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def assert_engine_error(response, status: int, code: int) -> None:
    assert response.status == status, (response.status, response.body)
    assert response.header("content-type") == "application/json"
    assert response.json() == {"code": code, "message": NODE_MESSAGES[code]}


def test_handshake_announces_the_options_in_milliseconds(eio_server):
    server = eio_server(ping_interval=0.3, ping_timeout=0.25, max_payload=12345)
    client = server.polling()
    response = client.get_response()

    assert response.status == 200
    assert response.header("content-type") == "text/plain; charset=UTF-8"
    [packet] = decode_payload(response.body)
    data = decode_open(packet)
    assert set(data) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert data["upgrades"] == ["websocket"]
    assert (data["pingInterval"], data["pingTimeout"], data["maxPayload"]) == (300, 250, 12345)
    assert server.session_count == 1
    client.sid = data["sid"]
    client.close()
    assert_still_serving(server)


@pytest.mark.parametrize(
    ("options", "upgrades"),
    [({"allow_upgrades": False}, []), ({"transports": ("polling",)}, [])],
)
def test_no_upgrade_offered_when_upgrades_are_off(eio_server, options, upgrades):
    server = eio_server(**options)
    client = server.polling()
    assert client.handshake()["upgrades"] == upgrades
    client.close()
    assert_still_serving(server)


def test_session_ids_are_distinct_long_and_urlsafe(echo_server):
    clients = [echo_server.polling() for _ in range(30)]
    sids = [client.handshake()["sid"] for client in clients]

    assert len(set(sids)) == len(sids)
    for sid in sids:
        assert len(sid) >= 20 and URLSAFE.match(sid), sid
    assert echo_server.session_count == 30
    for client in clients:
        client.close()
    assert_still_serving(echo_server)


def test_handshake_sets_the_cookie_when_configured(eio_server):
    server = eio_server(cookie=CookieOptions(name="io", same_site="Strict"))
    client = server.polling()
    sid = client.handshake()["sid"]
    assert client.handshake_response.header("set-cookie") == (
        f"io={sid}; Path=/; SameSite=Strict; HttpOnly"
    )
    client.close()
    assert_still_serving(server)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("transport=polling", 5),
        ("EIO=&transport=polling", 5),
        ("EIO=four&transport=polling", 5),
        ("EIO=3&transport=polling", 5),
        ("EIO=5&transport=polling", 5),
        ("EIO=4", 0),
        ("EIO=4&transport=carrier-pigeon", 0),
        ("EIO=4&transport=__proto__", 0),
        ("EIO=4&transport=constructor", 0),
        ("EIO=4&transport=polling&sid=unknown-sid-0123456789", 1),
        ("EIO=4&transport=polling&sid=__proto__", 1),
        ("EIO=4&transport=polling&sid=", 1),
    ],
)
def test_bad_handshake_query_is_refused_with_node_codes(echo_server, query, code):
    response = echo_server.http().get(f"{echo_server.path}?{query}")
    assert_engine_error(response, 400, code)
    assert_still_serving(echo_server)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_handshake_is_get_only(echo_server, method):
    target = eio_target(echo_server.path)
    response = echo_server.http().request(method, target, body=b"4x")
    assert_engine_error(response, 400, 2)
    assert_still_serving(echo_server)


@pytest.mark.parametrize(
    ("method", "target", "detail"),
    [
        ("PUT", "session", "method PUT not allowed"),
        ("DELETE", "session", "method DELETE not allowed"),
        ("GET", eio_target("/socket.io/", "websocket"), "WebSocket handshake expected"),
        ("GET", eio_target("/socket.io/") + "&a=" * 100, "too many query parameters"),
    ],
    ids=["put", "delete", "websocket-without-upgrade", "many-parameters"],
)
def test_bad_requests_get_nodes_message_and_the_detail_goes_to_the_log(
    echo_server, caplog, method, target, detail
):
    caplog.set_level(logging.INFO, "geventsio")
    client = echo_server.polling()
    client.handshake()
    if target == "session":
        target = client.target()
    response = echo_server.http().request(method, target, body=b"4x")
    assert_engine_error(response, 400, 3)
    assert detail in caplog.text
    client.close()
    assert_still_serving(echo_server)


def test_thousands_of_query_parameters_are_refused_quickly(echo_server):
    query = "&".join(["a="] * 2500)
    start = time.monotonic()
    response = echo_server.http().get(f"{eio_target(echo_server.path)}&{query}")
    assert elapsed(start) < 1.0
    assert_engine_error(response, 400, 3)
    assert_still_serving(echo_server)


def test_ten_kilobyte_query_is_refused_quickly(echo_server):
    # pywsgi refuses a request line over 8 KiB itself, before the engine sees it.
    start = time.monotonic()
    http = echo_server.http()
    response = http.get(f"{eio_target(echo_server.path)}&pad={'x' * 10_000}")
    assert elapsed(start) < 1.0
    assert response.status == 414
    assert response.closes_connection
    http.wait_eof()
    assert_still_serving(echo_server)


# -- CORS -------------------------------------------------------------------------------


def test_same_origin_is_the_default_policy(echo_server):
    own = f"http://127.0.0.1:{echo_server.port}"
    client = echo_server.polling(headers=[("Origin", own)])
    client.handshake()
    assert client.handshake_response.header("access-control-allow-origin") == own
    client.close()

    refused = echo_server.http().get(
        eio_target(echo_server.path), [("Origin", "http://evil.example")]
    )
    assert_engine_error(refused, 403, 4)
    assert_still_serving(echo_server)


@pytest.mark.parametrize(
    ("policy", "allowed", "refused"),
    [
        ("*", "http://anyone.example", None),
        (["http://a.example", "https://b.example"], "https://b.example", "http://c.example"),
        (
            lambda origin: origin.endswith(".good.example"),
            "http://x.good.example",
            "http://good.example.evil",
        ),
        ("http://only.example", "http://only.example", "http://only.example.evil"),
    ],
    ids=["star", "list", "callable", "string"],
)
def test_cors_policies_on_polling(eio_server, policy, allowed, refused):
    server = eio_server(cors_allowed_origins=policy)
    client = server.polling(headers=[("Origin", allowed)])
    client.handshake()
    headers = client.handshake_response
    assert headers.header("access-control-allow-origin") == allowed
    assert headers.header("access-control-allow-credentials") == "true"
    assert "Origin" in headers.header_values("vary")
    client.send("cross-site")
    assert client.get()[0].data == "cross-site"

    preflight = server.http().request(
        "OPTIONS",
        client.target(),
        headers=[
            ("Origin", allowed),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    )
    assert preflight.status == 204
    assert preflight.header("access-control-allow-origin") == allowed
    assert "POST" in (preflight.header("access-control-allow-methods") or "")
    assert preflight.header("access-control-allow-headers") == "content-type"
    client.close()

    if refused is not None:
        response = server.http().get(eio_target(server.path), [("Origin", refused)])
        assert_engine_error(response, 403, 4)
        preflight = server.http().request(
            "OPTIONS", eio_target(server.path), headers=[("Origin", refused)]
        )
        assert preflight.status == 403
    assert_still_serving(server)


def test_cors_credentials_can_be_switched_off(eio_server):
    server = eio_server(cors_allowed_origins="*", cors_credentials=False)
    client = server.polling(headers=[("Origin", "http://a.example")])
    client.handshake()
    assert client.handshake_response.header("access-control-allow-credentials") is None
    client.close()
    assert_still_serving(server)


def test_refused_origin_gets_no_cors_headers(echo_server):
    response = echo_server.http().get(
        eio_target(echo_server.path), [("Origin", "http://evil.example")]
    )
    assert response.status == 403
    assert response.header("access-control-allow-origin") is None


def test_websocket_from_a_refused_origin_gets_403_not_101(echo_server):
    with pytest.raises(HandshakeRefused) as refused:
        echo_server.websocket(
            eio_target(echo_server.path, "websocket"), headers=[("Origin", "http://evil.example")]
        )
    response = refused.value.response
    assert_engine_error(response, 403, 4)
    assert_still_serving(echo_server)


# -- allow_request ----------------------------------------------------------------------


def test_allow_request_refusal_is_403_code_4(eio_server):
    seen = []

    def allow(environ):
        seen.append(environ["QUERY_STRING"])
        return "let-me-in" in environ["QUERY_STRING"]

    server = eio_server(allow_request=allow)
    response = server.http().get(eio_target(server.path))
    assert_engine_error(response, 403, 4)
    with pytest.raises(HandshakeRefused) as refused:
        server.websocket(eio_target(server.path, "websocket"))
    assert_engine_error(refused.value.response, 403, 4)
    assert server.session_count == 0
    assert len(seen) == 2

    client = server.polling(query={"let-me-in": "1"})
    client.handshake()
    client.close()
    server.wait_sessions(0)


def test_allow_request_that_raises_refuses(eio_server, caplog):
    def allow(environ):
        raise RuntimeError("hook broke")

    server = eio_server(allow_request=allow)
    response = server.http().get(eio_target(server.path))
    assert_engine_error(response, 403, 4)
    wait_until(lambda: "allow_request raised" in caplog.text, 2.0)
    assert server.session_count == 0


class _NotAScalar:
    pass


def test_the_kept_handshake_environ_holds_the_scalars_only_in_order() -> None:
    from geventsio.engine.server import handshake_environ

    environ = {
        "REQUEST_METHOD": "GET",
        "wsgi.input": _NotAScalar(),
        "SERVER_PORT": 80,
        "wsgi.multithread": False,
        "wsgi.version": (1, 0),
        "x.ratio": 0.5,
        "x.none": None,
        "HTTP_HOST": "example.com",
        "x.bytes": b"raw",
    }
    kept = handshake_environ(environ)
    assert list(kept.items()) == [
        ("REQUEST_METHOD", "GET"),
        ("SERVER_PORT", 80),
        ("wsgi.multithread", False),
        ("x.ratio", 0.5),
        ("HTTP_HOST", "example.com"),
    ]
    assert kept is not environ


@pytest.mark.parametrize(
    "transports", [("polling", "websocket"), ("polling",), ("websocket",), ("websocket", "polling")]
)
@pytest.mark.parametrize(
    "name", ["polling", "websocket", "POLLING", "Polling", "", "flashsocket", "polling ", None]
)
def test_the_transport_of_a_query_is_the_enabled_one_it_names(transports, name):
    """The lookup by name answers as comparing the name with each enabled transport."""
    server = EngineServer(handler=None, options=EngineOptions(transports=transports))
    enabled = [t for t in server.options.transports if t == name]
    query = {} if name is None else {"transport": name}
    if enabled:
        assert server._transport_of(query) is enabled[0]
    else:
        with pytest.raises(RemoteProtocolError) as refused:
            server._transport_of(query)
        assert refused.value.code == 0
        assert refused.value.context == {"transport": name}


def test_a_callable_origin_policy_is_asked_once_per_request(eio_server):
    """The policy's answer serves both the check and the CORS headers; a session's
    request from an origin it refuses is refused too (Node's code 4)."""
    asked: list[str] = []

    def policy(origin: str) -> bool:
        asked.append(origin)
        return origin == "http://good.example"

    server = eio_server(cors_allowed_origins=policy)
    client = server.polling(headers=[("Origin", "http://good.example")])
    client.handshake()
    assert client.handshake_response.header("access-control-allow-origin") == "http://good.example"
    assert asked == ["http://good.example"]
    refused = server.http().get(client.target(), [("Origin", "http://evil.example")])
    assert_engine_error(refused, 403, 4)
    assert refused.header("access-control-allow-origin") is None
    assert asked == ["http://good.example", "http://evil.example"]
    client.close()
    assert_still_serving(server)
