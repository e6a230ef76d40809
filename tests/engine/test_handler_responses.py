"""geventsio's handler writes the same response bytes as pywsgi's (but the Date value),
in one ``send()`` for a small body.

Each WSGI application below is served by both handlers on a real TCP connection, with a
second request on the same connection so that a wrong length or framing would show.
"""

from __future__ import annotations

import io
import re
import socket

import gevent
import pytest
from gevent import pywsgi

from geventsio.engine import gevent_private
from geventsio.serving.handler import GeventsioHandler
from geventsio.serving.lean import LeanStart


def _small(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def _large(environ, start_response):
    body = bytes(range(256)) * 400  # 100 KiB: above what is joined to the head
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def _streamed(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (part for part in (b"one ", b"", b"two"))  # no length: chunked


def _listed(environ, start_response):
    start_response("201 Created", [("X-Parts", "2")])
    return [b"ab", b"cd"]  # a list without Content-Length: pywsgi counts it


def _empty(environ, start_response):
    start_response("204 No Content", [])
    return []


def _written(environ, start_response):
    write = start_response("200 OK", [("Content-Length", "6")])
    write(b"abc")
    return [b"def"]


def _closing(environ, start_response):
    start_response("200 OK", [("Content-Length", "2"), ("Connection", "close")])
    return [b"ok"]


def _dated(environ, start_response):
    start_response("200 OK", [("date", "Thu, 01 Jan 1970 00:00:00 GMT"), ("Content-Length", "1")])
    return [b"d"]


def _not_modified(environ, start_response):
    start_response("304 Not Modified", [("ETag", "x"), ("Content-Length", "0")])
    return []


def _header_with_newline(environ, start_response):
    start_response("200 OK", [("X-Bad", "a\r\nSet-Cookie: x")])
    return [b"no"]


def _name_with_newline(environ, start_response):
    start_response("200 OK", [("X-Bad\n", "a")])
    return [b"no"]


def _bytes_header(environ, start_response):
    start_response("200 OK", [(b"X-Bytes", "a")])
    return [b"no"]


def _bytes_value(environ, start_response):
    start_response("200 OK", [("X-Bytes", b"a")])
    return [b"no"]


def _not_latin1(environ, start_response):
    start_response("200 OK", [("X-Name", "\u20ac")])
    return [b"no"]


def _bytes_status(environ, start_response):
    start_response(b"200 OK", [])
    return [b"no"]


def _status_with_newline(environ, start_response):
    start_response("200 OK\r\nX: y", [])
    return [b"no"]


def _no_content_with_a_length(environ, start_response):
    start_response("204 No Content", [("Content-Length", "3")])
    return [b"no"]


def _no_content_with_a_body(environ, start_response):
    start_response("204 No Content", [("Content-Length", "0")])
    return [b"x"]


def _error_before_the_head(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    try:
        raise RuntimeError("failed")
    except RuntimeError:
        import sys

        start_response("503 Service Unavailable", [("Content-Length", "4")], sys.exc_info())
    return [b"busy"]


def _error_after_the_head(environ, start_response):
    write = start_response("200 OK", [("Content-Length", "4")])
    write(b"ab")
    try:
        raise RuntimeError("failed after the head")
    except RuntimeError:
        import sys

        start_response("500 Internal Server Error", [], sys.exc_info())
    return [b"cd"]


APPS = {
    "Connection: close": _closing,
    "own Date": _dated,
    "304": _not_modified,
    "CRLF in a header value": _header_with_newline,
    "LF in a header name": _name_with_newline,
    "bytes header name": _bytes_header,
    "bytes header value": _bytes_value,
    "header not in latin-1": _not_latin1,
    "bytes status": _bytes_status,
    "CRLF in the status": _status_with_newline,
    "204 with a length": _no_content_with_a_length,
    "204 with a body": _no_content_with_a_body,
    "exc_info before the head": _error_before_the_head,
    "exc_info after the head": _error_after_the_head,
    "small": _small,
    "large": _large,
    "streamed": _streamed,
    "listed": _listed,
    "empty": _empty,
    "write callable": _written,
}


def _exchange(handler_class: type, app, request: bytes) -> bytes:
    server = pywsgi.WSGIServer(("127.0.0.1", 0), app, handler_class=handler_class, log=None)
    server.start()
    try:
        with socket.create_connection(server.address, timeout=10) as client:
            client.sendall(request + request.replace(b"/first", b"/second"))
            client.shutdown(socket.SHUT_WR)
            received = b""
            with gevent.Timeout(10):
                while chunk := client.recv(65536):
                    received += chunk
        return received
    finally:
        server.stop()


def _without_dates(raw: bytes) -> bytes:
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", raw)


#: The apps whose first response ends the connection (an error, or Connection: close).
ONE_RESPONSE = {
    "Connection: close",
    "CRLF in a header value",
    "LF in a header name",
    "bytes header name",
    "bytes header value",
    "header not in latin-1",
    "bytes status",
    "CRLF in the status",
    "204 with a length",
    "204 with a body",
    "exc_info after the head",
}


@pytest.mark.parametrize("name", sorted(APPS))
@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0 keep-alive", "HTTP/1.0"])
def test_the_response_bytes_are_pywsgis(name, version, monkeypatch):
    # The application errors are reported through the hub: keep them out of the output.
    monkeypatch.setattr(gevent.get_hub(), "print_exception", lambda *args: None)
    request = {
        "HTTP/1.1": b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n",
        "HTTP/1.0 keep-alive": b"GET /first HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "HTTP/1.0": b"GET /first HTTP/1.0\r\n\r\n",
    }[version]
    expected = _exchange(pywsgi.WSGIHandler, APPS[name], request)
    actual = _exchange(GeventsioHandler, APPS[name], request)
    responses = 1 if name in ONE_RESPONSE or version == "HTTP/1.0" else 2
    assert expected.count(b"HTTP/1.1 ") == responses
    assert _without_dates(actual) == _without_dates(expected)


def _raising(environ, start_response):
    raise RuntimeError("the application failed")


def _raising_after_the_start(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    raise RuntimeError("the application failed after its start")


def _body_left_unread(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def _body_read(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def _body_replaced(environ, start_response):
    # A middleware's way: the body read, and a stream of its own left in the environ
    # (the server must finish the body it made, whatever the environ holds now).
    body = environ["wsgi.input"].read(2)
    environ["wsgi.input"] = io.BytesIO(body)
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


#: More answers, for the second request of a connection only.
SECOND_ONLY = {"raises": _raising, "raises after its start": _raising_after_the_start}


def _second(app):
    """``app`` for the path ``/second``, a small answer for ``/first`` (so that the
    second request, whose head is the first's, is a known request)."""

    def answer(environ, start_response):
        if environ["PATH_INFO"] == "/second":
            return app(environ, start_response)
        return _small(environ, start_response)

    return answer


@pytest.mark.parametrize("name", sorted({**APPS, **SECOND_ONLY}))
def test_the_response_bytes_to_a_known_request_are_pywsgis(name, monkeypatch):
    # geventsio's handler serves a known request without setting its state unless the
    # answer needs it (_serve_lean): every kind of answer, and every error, on it.
    monkeypatch.setattr(gevent.get_hub(), "print_exception", lambda *args: None)
    app = _second({**APPS, **SECOND_ONLY}[name])
    request = b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n"
    expected = _exchange(pywsgi.WSGIHandler, app, request)
    actual = _exchange(GeventsioHandler, app, request)
    assert expected.startswith(b"HTTP/1.1 200 OK\r\n")  # the first answer
    assert _without_dates(actual) == _without_dates(expected)


@pytest.mark.parametrize("app", [_body_left_unread, _body_read, _body_replaced])
def test_a_known_post_body_read_or_not_leaves_the_next_request_whole(app):
    request = b"POST /first HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    expected = _exchange(pywsgi.WSGIHandler, app, request)
    actual = _exchange(GeventsioHandler, app, request)
    assert expected.count(b"HTTP/1.1 200 OK") == 2
    assert _without_dates(actual) == _without_dates(expected)


def test_a_known_request_is_served_lean_unless_a_step_is_overridden():
    # Served lean, the application's start_response is the lean path's (LeanStart), not
    # the handler's bound method.
    lean_served: list[str] = []

    def recording(environ, start_response):
        if isinstance(start_response, LeanStart):
            lean_served.append(environ["PATH_INFO"])
        return _small(environ, start_response)

    _exchange(GeventsioHandler, recording, b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
    assert lean_served == (["/second"] if GeventsioHandler.serves_lean else [])

    class OwnStart(GeventsioHandler):
        def start_response(self, status, headers, exc_info=None):
            return super().start_response(status, headers, exc_info)

    assert not OwnStart.serves_lean  # its start_response must be called: the usual path
    lean_served.clear()
    raw = _exchange(OwnStart, recording, b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
    assert lean_served == [] and raw.count(b"HTTP/1.1 200 OK") == 2


def test_a_head_response_is_the_head_alone():
    raw = _exchange(GeventsioHandler, _small, b"HEAD /first HTTP/1.1\r\nHost: h\r\n\r\n")
    heads = raw.split(b"\r\n\r\n")
    assert len(heads) == 3 and heads[2] == b""  # two heads, nothing after either
    assert all(b"Content-Length: 2" in head for head in heads[:2])


class _RecordingSocket:
    """A kernel socket whose ``send`` calls are recorded (the rest is the socket's)."""

    def __init__(self, sock, sent: list[bytes]) -> None:
        self._sock = sock
        self._sent = sent

    def send(self, data) -> int:
        self._sent.append(bytes(data))
        return self._sock.send(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_a_small_response_leaves_in_one_send(monkeypatch):
    # The first request goes pywsgi's steps (write_whole), the second the lean path: both
    # send head and body with one send() on the kernel socket.
    sent: list[bytes] = []
    original = gevent_private.kernel_socket

    def recording(sock):
        raw = original(sock)
        return None if raw is None else _RecordingSocket(raw, sent)

    monkeypatch.setattr(gevent_private, "kernel_socket", recording)
    _exchange(GeventsioHandler, _small, b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
    if not gevent_private.SOCKET_FAST_PATH:
        pytest.skip("this gevent's sockets are not used directly")
    assert len(sent) == 2  # one per request: head and body together
    assert all(data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"ok") for data in sent)


def test_the_date_is_a_valid_http_date():
    raw = _exchange(GeventsioHandler, _small, b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
    dates = re.findall(rb"Date: ([^\r]*)\r\n", raw)
    assert len(dates) == 2
    assert all(
        re.fullmatch(rb"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", d)
        for d in dates
    )


#: The answers, by path, of the application a connection's requests go to in turn: the
#: same status and headers again (checked once, then taken as checked), and answers
#: that differ from the last by one value, by their kind (a list for a tuple, a str
#: subclass), or by a header no response may have.
class _Text(str):
    pass


SEQUENCE_ANSWERS = {
    "/ok": ("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")], b"ok"),
    "/ok3": ("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")], b"ok!"),
    "/created": ("201 Created", [("Content-Type", "text/plain"), ("Content-Length", "2")], b"ok"),
    "/listed": ("200 OK", [["Content-Type", "text/plain"], ["Content-Length", "2"]], b"ok"),
    "/subclass": (
        "200 OK",
        [("Content-Type", _Text("text/plain")), ("Content-Length", "2")],
        b"ok",
    ),
    "/no-content": ("204 No Content", [("Content-Length", "0")], b""),
    "/bad": ("200 OK", [("Content-Type", "text/plain\r\nX: y"), ("Content-Length", "2")], b"ok"),
}


#: More distinct answers than a connection keeps checked.
SEQUENCE_ANSWERS.update(
    {
        f"/len{n}": (
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", str(n))],
            b"x" * n,
        )
        for n in range(1, 12)
    }
)


def _sequence_app(environ, start_response):
    status, headers, body = SEQUENCE_ANSWERS[environ["PATH_INFO"]]
    start_response(status, headers)
    return [body]


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0 keep-alive"])
def test_repeated_answers_on_a_connection_are_pywsgis_bytes(version, monkeypatch):
    monkeypatch.setattr(gevent.get_hub(), "print_exception", lambda *args: None)
    paths = ["/ok", "/ok", "/ok3", "/ok3", "/ok", "/created", "/created", "/listed", "/listed"]
    paths += ["/ok", "/subclass", "/subclass", "/no-content", "/no-content", "/ok"]
    paths += [f"/len{n}" for n in range(1, 12)] + ["/ok", "/len1", "/len11", "/ok", "/bad"]
    head = (
        "GET {} HTTP/1.1\r\nHost: h\r\n\r\n"
        if version == "HTTP/1.1"
        else "GET {} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    )
    requests = "".join(head.format(path) for path in paths).encode()

    # (_exchange sends the requests twice: the connection ends at /bad's 500, the first time)
    expected = _exchange(pywsgi.WSGIHandler, _sequence_app, requests)
    actual = _exchange(GeventsioHandler, _sequence_app, requests)
    assert expected.count(b"HTTP/1.1 ") == len(paths)
    assert expected.endswith(b"Internal Server Error")
    assert _without_dates(actual) == _without_dates(expected)


def test_a_repeated_answer_takes_the_checked_head_and_few_are_kept():
    from geventsio.engine import gevent_private

    seen: list[tuple[object, int]] = []

    class Recording(GeventsioHandler):
        def start_response(self, status, headers, exc_info=None):
            write = super().start_response(status, headers, exc_info)
            started = self._started or {}
            seen.append((started.get((status, *headers)), len(started)))
            return write

    paths = ["/ok", "/ok3", "/ok"] + [f"/len{n}" for n in range(1, 12)] + ["/ok"]
    requests = "".join(f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n" for path in paths).encode()
    _exchange(Recording, _sequence_app, requests)
    assert len(seen) == 2 * len(paths)  # _exchange sends the requests twice
    assert seen[0][0] is seen[2][0] is not None  # "/ok" again: the same checked head
    assert all(size <= gevent_private._STARTED_KEPT for _, size in seen)


def _environ_app(environ, start_response):
    """Answers with the request's environ (its plain values) and body."""
    body = environ["wsgi.input"].read()
    plain = {
        key: value
        for key, value in environ.items()
        if isinstance(value, str | bool | int) and key not in ("REMOTE_PORT", "SERVER_PORT")
    }
    answer = repr(sorted(plain.items())).encode() + b"\n" + body
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
    return [answer]


def _polling_requests(count: int) -> list[bytes]:
    """A long-polling client's GETs and POSTs on one connection: the same fields each
    time (a POST's body of one size), a new ``t`` in every target, %-escapes in some."""
    requests = []
    for n in range(count):
        target = f"/socket.io/?EIO=4&transport=polling&t=P{n:04d}&sid=abc"
        if n % 5 == 4:
            target = target.replace("/socket.io/", "/%73ocket.io/")
        if n % 2:
            requests.append(
                f"POST {target} HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain;charset=UTF-8"
                f"\r\nContent-Length: 5\r\n\r\n4m{n:03d}"
            )
        else:
            requests.append(f"GET {target} HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n")
    return [request.encode() for request in requests]


def _one_at_a_time(handler_class: type, app, requests: list[bytes]) -> list[bytes]:
    """The answers to ``requests``, each sent on one kept-alive connection once the
    answer to the one before has arrived (as a long-polling client sends them)."""
    server = pywsgi.WSGIServer(("127.0.0.1", 0), app, handler_class=handler_class, log=None)
    server.start()
    answers = []
    try:
        with socket.create_connection(server.address, timeout=10) as client:
            reader = client.makefile("rb")
            for request in requests:
                client.sendall(request)
                with gevent.Timeout(10):
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        head += reader.readline()
                    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                    answers.append(_without_dates(head) + reader.read(length))
    finally:
        server.stop()
    return answers


def test_a_connections_repeated_requests_get_pywsgis_environs_and_answers():
    requests = _polling_requests(12)
    expected = _one_at_a_time(pywsgi.WSGIHandler, _environ_app, requests)
    actual = _one_at_a_time(GeventsioHandler, _environ_app, requests)
    assert expected[-1].endswith(b"4m011") and b"'PATH_INFO', '/socket.io/'" in expected[4]
    assert actual == expected


def test_repeated_requests_skip_pywsgis_reading_steps(monkeypatch):
    # The first GET and the first POST are read pywsgi's way; every later one, with
    # fields, method and version seen before, is served without those steps.
    read_lines: list[str] = []
    original = GeventsioHandler.read_requestline

    def recording(self):
        line = original(self)
        read_lines.append(line)
        return line

    monkeypatch.setattr(GeventsioHandler, "read_requestline", recording)
    answers = _one_at_a_time(GeventsioHandler, _environ_app, _polling_requests(10))
    assert len(answers) == 10 and answers[-1].endswith(b"4m009")
    # (an empty line, if any: the end of the connection, read as the client leaves)
    assert [line.split()[0] for line in read_lines if line] == ["GET", "POST"]


def test_a_changed_server_environ_reaches_the_next_request():
    seen: list[str | None] = []

    def app(environ, start_response):
        seen.append(environ.get("geventsio.test"))
        server.environ["geventsio.test"] = f"after {len(seen)}"
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = pywsgi.WSGIServer(("127.0.0.1", 0), app, handler_class=GeventsioHandler, log=None)
    server.start()
    try:
        with socket.create_connection(server.address, timeout=10) as client:
            for _ in range(3):
                client.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
                with gevent.Timeout(10):
                    received = b""
                    while not received.endswith(b"ok"):
                        received += client.recv(65536)
    finally:
        server.stop()
    assert seen == [None, "after 1", "after 2"]
