"""geventsio's handler writes the same response bytes as pywsgi's (but the Date value),
in one ``send()`` for a small body.

Each WSGI application below is served by both handlers on a real TCP connection, with a
second request on the same connection so that a wrong length or framing would show.
"""

from __future__ import annotations

import re
import socket

import gevent
import pytest
from gevent import pywsgi

from geventsio.serving.handler import GeventsioHandler


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


APPS = {
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


@pytest.mark.parametrize("name", sorted(APPS))
def test_the_response_bytes_are_pywsgis(name):
    request = b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n"
    expected = _exchange(pywsgi.WSGIHandler, APPS[name], request)
    actual = _exchange(GeventsioHandler, APPS[name], request)
    assert expected.count(b"HTTP/1.1 ") == 2
    assert _without_dates(actual) == _without_dates(expected)


def test_a_head_response_is_the_head_alone():
    raw = _exchange(GeventsioHandler, _small, b"HEAD /first HTTP/1.1\r\nHost: h\r\n\r\n")
    heads = raw.split(b"\r\n\r\n")
    assert len(heads) == 3 and heads[2] == b""  # two heads, nothing after either
    assert all(b"Content-Length: 2" in head for head in heads[:2])


def test_a_small_response_leaves_in_one_send(monkeypatch):
    sent: list[bytes] = []
    original = GeventsioHandler._sendall

    def recording(self, data):
        sent.append(bytes(data))
        original(self, data)

    monkeypatch.setattr(GeventsioHandler, "_sendall", recording)
    _exchange(GeventsioHandler, _small, b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
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
