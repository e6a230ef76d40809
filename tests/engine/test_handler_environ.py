"""geventsio's handler builds the same WSGI environ as pywsgi's, at a lower cost.

Each raw request is read by both handlers from a real TCP connection, and the two
environs are compared key by key.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from gevent import pywsgi

from geventsio.engine.takeover import TAKEOVER_KEY
from geventsio.serving.handler import GeventsioHandler
from geventsio.serving.lean import PlainInput

#: Keys whose values are live objects (compared by kind, not by value).
LIVE_KEYS = {"wsgi.input", "wsgi.errors", "geventsio.socket", TAKEOVER_KEY}
#: Keys that differ between two connections (checked against the connection).
PER_CONNECTION_KEYS = {"REMOTE_PORT"}

REQUESTS = {
    "polling GET": (
        b"GET /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\n"
        b"Host: 127.0.0.1:5000\r\nAccept: */*\r\nUser-Agent: node\r\n\r\n"
    ),
    "POST with a body": (
        b"POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\n"
        b"Host: h\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 5\r\n\r\n"
        b"4helo"
    ),
    "escaped path and repeated fields": (
        b"GET /a%20b/%C3%A9?q=%20x HTTP/1.1\r\nHost: h\r\nX-Many: 1\r\nx-many:  2 \r\n"
        b"Cookie: a=1\r\nCookie: b=2\r\nAccept-Language: fr\r\n\r\n"
    ),
    "underscores and folded lines": (
        b"GET / HTTP/1.1\r\nHost: h\r\nX_Smuggled: 1\r\nX-Folded: first\r\n  second\r\n"
        b"X-Empty:\r\n\r\n"
    ),
    "chunked with a content length": (
        b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 10\r\n\r\n0\r\n\r\n"
    ),
    "expect continue": (
        b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    ),
    "WebSocket upgrade": (
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: h\r\n"
        b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ),
    "HTTP/1.0": b"GET /old HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
}


@contextmanager
def connected_handler(handler_class: type[Any]) -> Iterator[tuple[Any, socket.socket]]:
    """A ``handler_class`` on the server end of a real connection, and its client end."""
    server = pywsgi.WSGIServer(("127.0.0.1", 0), lambda e, s: [], log=None)
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    conn, address = listener.accept()
    try:
        yield handler_class(conn, address, server), client
    finally:
        client.close()
        listener.close()


def read_next(handler: Any, client: socket.socket, raw: bytes) -> None:
    """Send ``raw`` and have ``handler`` read its request."""
    client.sendall(raw)
    assert handler.read_request(handler.read_requestline())


def environ_of(handler_class: type[Any], raw: bytes) -> tuple[dict[str, Any], Any]:
    """The environ ``handler_class`` builds for ``raw``, read from a real connection."""
    with connected_handler(handler_class) as (handler, client):
        read_next(handler, client, raw)
        return handler.get_environ(), handler


def plain_values(environ: dict[str, Any]) -> dict[str, Any]:
    """The environ's values that two connections' requests share."""
    skipped = LIVE_KEYS | PER_CONNECTION_KEYS
    return {key: value for key, value in environ.items() if key not in skipped}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_environ_is_pywsgis(name):
    raw = REQUESTS[name]
    expected, _ = environ_of(pywsgi.WSGIHandler, raw)
    actual, ours = environ_of(GeventsioHandler, raw)
    assert plain_values(actual) == plain_values(expected)
    assert actual["REMOTE_PORT"] == str(ours.client_address[1])
    # The body stream: pywsgi's Input, or the raw reader for an upgrade.
    assert type(actual["wsgi.input"]) is type(expected["wsgi.input"])
    assert actual["wsgi.input_terminated"] == expected["wsgi.input_terminated"]
    assert (TAKEOVER_KEY in actual) == (name == "WebSocket upgrade")
    assert actual["geventsio.socket"] is ours.socket
    if name == "POST with a body":
        assert actual["wsgi.input"].read() == b"4helo"


def test_header_lookups_answer_the_first_field_in_any_case():
    _, handler = environ_of(GeventsioHandler, REQUESTS["escaped path and repeated fields"])
    headers = handler.headers
    assert headers.get("x-MANY") == "1"
    assert headers.getheader("cookie") == "a=1"
    assert headers.get("missing", "dflt") == "dflt"
    del headers["X-Many"]
    assert headers.get("x-many") is None
    assert not any(line.lower().startswith("x-many") for line in headers.headers)


#: Heads geventsio's handler reads line by line instead of in one go (the same environ).
LINE_BY_LINE = {
    "bare LF line ends": b"GET /lf?x=1 HTTP/1.1\nHost: h\nX-A: 1\r\nX-B: 2\n\n",
    "a head longer than the read buffer": (
        b"GET /long HTTP/1.1\r\nHost: h\r\nCookie: " + b"c" * 3000 + b"\r\nX-After: 1\r\n\r\n"
    ),
}


@pytest.mark.parametrize("name", sorted(LINE_BY_LINE))
def test_heads_read_line_by_line_give_pywsgis_environ_too(name):
    raw = LINE_BY_LINE[name]
    expected, _ = environ_of(pywsgi.WSGIHandler, raw)
    actual, _ = environ_of(GeventsioHandler, raw)
    assert plain_values(actual) == plain_values(expected)
    assert actual["PATH_INFO"] in ("/lf", "/long")


def test_a_head_read_whole_leaves_the_body_and_the_next_request_unread():
    raw = REQUESTS["POST with a body"] + b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
    environ, handler = environ_of(GeventsioHandler, raw)
    assert environ["wsgi.input"].read() == b"4helo"
    assert handler.rfile.readline() == b"GET /next HTTP/1.1\r\n"


def test_too_many_header_lines_are_refused_either_way():
    raw = b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 101 + b"\r\n"
    for handler_class in (pywsgi.WSGIHandler, GeventsioHandler):
        with pytest.raises(Exception, match="more than 100 headers"):
            environ_of(handler_class, raw)


def test_header_names_are_remembered_up_to_a_bound_and_read_right_beyond_it():
    from geventsio.serving import handler as handler_module

    names = [f"X-Hostile-{n}" for n in range(handler_module._CGI_NAMES_MAX + 100)]
    for start in range(0, len(names), 90):  # requests of 90 new names each (100 at most)
        raw = (
            b"GET / HTTP/1.1\r\n"
            + b"".join(f"{name}: v\r\n".encode() for name in names[start : start + 90])
            + b"\r\n"
        )
        actual, _ = environ_of(GeventsioHandler, raw)
        expected, _ = environ_of(pywsgi.WSGIHandler, raw)
        assert {k: v for k, v in actual.items() if k.startswith("HTTP_")} == {
            k: v for k, v in expected.items() if k.startswith("HTTP_")
        }
    assert len(handler_module._CGI_NAMES) <= handler_module._CGI_NAMES_MAX
    assert actual["HTTP_X_HOSTILE_611"] == "v"


#: Requests whose parsed state (method, version, body length, whether the connection
#: closes after them) or refusal must be pywsgi's: each case of the handler's own
#: read_request and each it leaves to pywsgi's.
READ_STATE_REQUESTS = {
    "HTTP/1.1 kept alive": b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "HTTP/1.1 Connection: Close": b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n",
    "HTTP/1.1 Connection: keep-alive": b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
    "HTTP/1.0 no Connection": b"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
    "HTTP/1.0 Keep-Alive": b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    "HTTP/1.0 close": b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n",
    "HTTP/0.9": b"GET /\r\n\r\n",
    "a body length": b"POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n",
    "a zero body length": b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    "HEAD with a zero length": b"HEAD / HTTP/1.1\r\nContent-Length: 00\r\n\r\n",
    "HEAD with a length": b"HEAD / HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
    "a negative length": b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    "a length that is no number": b"POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n",
    "a length in superscript digits": "POST / HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\n".encode(
        "latin-1"
    ),
    "a length with a sign": b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
    "chunked and a length": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 7\r\n\r\n",
    "an unknown version": b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
    "a bad version": b"GET / HTTX/1.1\r\nHost: h\r\n\r\n",
    "a folded Connection": b"GET / HTTP/1.1\r\nConnection:\r\n close\r\n\r\n",
}


def read_state(handler_class: type[Any], raw: bytes) -> tuple[Any, ...]:
    """What ``handler_class`` makes of ``raw``'s head: its parsed attributes, or the
    class of the error that refuses it."""
    try:
        _, handler = environ_of(handler_class, raw)
    except Exception as exc:  # the handler answers 400 for any of them
        return ("refused", type(exc).__name__)
    return parsed_request(handler)


def parsed_request(handler: Any) -> tuple[Any, ...]:
    """The request attributes a handler's read_request set."""
    return (
        handler.command,
        handler.path,
        handler.request_version,
        handler.requestline,
        handler.content_length,
        handler.close_connection,
    )


@pytest.mark.parametrize("name", sorted(READ_STATE_REQUESTS))
def test_the_parsed_request_is_pywsgis(name):
    raw = READ_STATE_REQUESTS[name]
    assert read_state(GeventsioHandler, raw) == read_state(pywsgi.WSGIHandler, raw)


def test_every_request_of_a_connection_has_its_remote_address():
    seen: list[tuple[str, str]] = []

    def app(environ, start_response):
        seen.append((environ["REMOTE_ADDR"], environ["REMOTE_PORT"]))
        start_response("200 OK", [("Content-Length", "0")])
        return []

    server = pywsgi.WSGIServer(("127.0.0.1", 0), app, handler_class=GeventsioHandler, log=None)
    server.start()
    try:
        with socket.create_connection(server.address, timeout=10) as client:
            client.sendall(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.0\r\n\r\n")
            while client.recv(65536):
                pass
            address = client.getsockname()
    finally:
        server.stop()
    assert seen == [("127.0.0.1", str(address[1]))] * 2


def environs_of(handler_class: type[Any], raws: list[bytes]) -> list[dict[str, Any]]:
    """The environs ``handler_class`` builds for the requests ``raws``, sent one after the
    other on one kept-alive connection (each body, if any, read by the application)."""
    environs = []
    with connected_handler(handler_class) as (handler, client):
        for raw in raws:
            read_next(handler, client, raw)
            environ = handler.get_environ()
            environ["geventsio.test.body"] = environ["wsgi.input"].read()
            environ["geventsio.test.state"] = (*parsed_request(handler), handler.headers.items())
            environs.append(environ)
        return environs


#: A connection's requests: heads repeated whole (parsed once, then taken as they
#: were), and heads that differ from the last by a byte (parsed again).
REPEATED_HEADS = [
    REQUESTS["POST with a body"],
    REQUESTS["POST with a body"],
    REQUESTS["POST with a body"].replace(b"&sid=abc", b"&sid=abc&t=P1"),
    REQUESTS["POST with a body"].replace(b"&sid=abc", b"&sid=abc&t=P2"),
    REQUESTS["POST with a body"].replace(b"POST /socket.io/", b"POST /%73ocket.io/"),
    REQUESTS["POST with a body"].replace(b"HTTP/1.1", b"HTTP/1.0"),
    REQUESTS["POST with a body"].replace(b"POST ", b"PUT "),
    REQUESTS["POST with a body"].replace(b"sid=abc", b"sid=abd"),
    REQUESTS["POST with a body"].replace(b"sid=abc", b"sid=abd"),
    REQUESTS["polling GET"],
    REQUESTS["polling GET"].replace(b"User-Agent: node", b"User-Agent: nodf"),
    REQUESTS["polling GET"].replace(b"User-Agent: node", b"User-Agent: nodf"),
    REQUESTS["escaped path and repeated fields"],
    REQUESTS["escaped path and repeated fields"],
    REQUESTS["expect continue"] + b"abc",
    REQUESTS["expect continue"] + b"abc",
    REQUESTS["HTTP/1.0"],
    REQUESTS["HTTP/1.0"],
    REQUESTS["polling GET"],
]


def test_a_repeated_head_gives_pywsgis_environ_and_state_each_time():
    expected = environs_of(pywsgi.WSGIHandler, REPEATED_HEADS)
    actual = environs_of(GeventsioHandler, REPEATED_HEADS)
    for ours, theirs in zip(actual, expected, strict=True):
        assert plain_values(ours) == plain_values(theirs)
        assert _same_kind_of_input(ours["wsgi.input"], theirs["wsgi.input"])


def _same_kind_of_input(ours: Any, theirs: Any) -> bool:
    """pywsgi's Input, or, for a plain body of a repeated head, the lean path's
    PlainInput (which reads as Input does: tests/engine/test_plain_input.py)."""
    if type(ours) is type(theirs):
        return True
    return (
        type(ours) is PlainInput
        and type(theirs) is pywsgi.Input
        and not theirs.chunked_input
        and ours.content_length == theirs.content_length
    )


def test_a_repeated_head_is_parsed_once_and_its_headers_stay_apart():
    raws = [REQUESTS["polling GET"]] * 3
    with connected_handler(GeventsioHandler) as (handler, client):
        seen = []
        for raw in raws:
            read_next(handler, client, raw)
            handler.get_environ()
            seen.append((handler._parsed, handler.headers))
            del handler.headers["User-Agent"]  # this request's headers only
            assert handler.headers.get("user-agent") is None
        assert seen[0][0] is seen[1][0] is seen[2][0]  # parsed once
        assert seen[0][1] is not seen[1][1]
        assert all(headers.get("accept") == "*/*" for _, headers in seen)
        assert seen[2][0] is not None and seen[2][0].first["user-agent"] == "node"


def test_a_server_environ_with_http_variables_gets_them_joined_as_pywsgi_does():
    raws = [REQUESTS["polling GET"]] * 2
    server_env = {"HTTP_ACCEPT": "text/html", "HTTP_X_SERVER": "1"}

    def with_server_env(handler_class: type[Any]) -> list[dict[str, Any]]:
        original = pywsgi.WSGIServer.get_environ

        def get_environ(self: Any) -> dict[str, Any]:
            environ = original(self)
            environ.update(server_env)
            return environ

        pywsgi.WSGIServer.get_environ = get_environ  # type: ignore[method-assign]
        try:
            return environs_of(handler_class, raws)
        finally:
            pywsgi.WSGIServer.get_environ = original  # type: ignore[method-assign]

    expected = with_server_env(pywsgi.WSGIHandler)
    actual = with_server_env(GeventsioHandler)
    for ours, theirs in zip(actual, expected, strict=True):
        assert plain_values(ours) == plain_values(theirs)
    assert actual[1]["HTTP_ACCEPT"] == "text/html,*/*"


def test_fields_are_parsed_once_whatever_the_request_target():
    targets = [
        b"/socket.io/?EIO=4&transport=polling&sid=abc&t=P" + str(n).encode() for n in range(3)
    ]
    targets.append(b"/other%20path")
    raws = [
        REQUESTS["polling GET"].replace(b"/socket.io/?EIO=4&transport=polling&sid=abc", target)
        for target in targets
    ]
    with connected_handler(GeventsioHandler) as (handler, client):
        parsed, environs = [], []
        for raw in raws:
            read_next(handler, client, raw)
            environs.append(handler.get_environ())
            parsed.append(handler._parsed)
        assert all(p is parsed[0] for p in parsed)
        assert [e["QUERY_STRING"][-4:] for e in environs[:3]] == ["t=P0", "t=P1", "t=P2"]
        assert environs[3]["PATH_INFO"] == "/other path" and environs[3]["QUERY_STRING"] == ""
    expected = environs_of(pywsgi.WSGIHandler, raws)
    actual = environs_of(GeventsioHandler, raws)
    for ours, theirs in zip(actual, expected, strict=True):
        assert plain_values(ours) == plain_values(theirs)


def test_alternating_fields_on_one_connection_are_each_parsed_once_and_kept_bounded():
    from geventsio.serving import handler as handler_module

    get = REQUESTS["polling GET"].replace(b"&sid=abc", b"&sid=abc&t=P{n}")
    post = REQUESTS["POST with a body"].replace(b"&sid=abc", b"&sid=abc&t=Q{n}")
    raws = [(get if n % 2 else post).replace(b"{n}", str(n).encode()) for n in range(6)]
    # then more distinct field sets than are kept, then the first again
    raws += [
        REQUESTS["HTTP/1.0"].replace(b"Host: h", b"Host: h" + str(n).encode()) for n in range(5)
    ]
    raws.append(raws[0])
    with connected_handler(GeventsioHandler) as (handler, client):
        parsed = []
        for raw in raws:
            read_next(handler, client, raw)
            handler.get_environ()["wsgi.input"].read()
            parsed.append(handler._parsed)
            assert len(handler._parsed_fields) <= handler_module._PARSED_FIELDS_KEPT
        assert parsed[0] is parsed[2] is parsed[4] and parsed[1] is parsed[3] is parsed[5]
        assert parsed[0] is not parsed[1]
        assert parsed[-1] is not parsed[0]  # pushed out meanwhile: parsed again
    expected = environs_of(pywsgi.WSGIHandler, raws)
    actual = environs_of(GeventsioHandler, raws)
    for ours, theirs in zip(actual, expected, strict=True):
        assert plain_values(ours) == plain_values(theirs)
