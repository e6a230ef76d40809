"""The minimal HTTP/1.1 client: URLs, bodies, keep-alive, and a server's misbehaviour."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gevent.event
import gevent.server
import pytest

from geventsio import RemoteProtocolError
from geventsio.client.http import HTTPConnection, ServerAddress, parse_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com", ServerAddress(False, "example.com", 80)),
        ("https://example.com/", ServerAddress(True, "example.com", 443)),
        ("ws://127.0.0.1:3000", ServerAddress(False, "127.0.0.1", 3000)),
        ("wss://[::1]:8443?token=a%20b", ServerAddress(True, "::1", 8443, (("token", "a b"),))),
    ],
)
def test_parse_url(url: str, expected: ServerAddress) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    ("address", "host_header"),
    [
        (ServerAddress(False, "example.com", 80), "example.com"),
        (ServerAddress(True, "example.com", 80), "example.com:80"),
        (ServerAddress(True, "::1", 443), "[::1]"),
        (ServerAddress(False, "::1", 8080), "[::1]:8080"),
    ],
)
def test_host_header(address: ServerAddress, host_header: str) -> None:
    assert address.host_header == host_header


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com", "scheme"),
        ("http://", "no host"),
        ("http://example.com:99999", "out of range"),
        ("http://example.com/chat", "namespaces="),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_url(url)


class CannedServer:
    """A TCP server answering each request with the next canned response. A ``None``
    right after a response makes it hang up at once; a response without a length ends
    its connection; with no response left, it holds the connection open. Records the
    requests and counts the connections."""

    def __init__(self, responses: list[bytes | None]) -> None:
        self.responses = responses
        self.requests: list[bytes] = []
        self.connections = 0
        self.done = gevent.event.Event()
        self.hung_up = gevent.event.Event()
        self.server = gevent.server.StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()

    def _handle(self, sock: Any, _address: Any) -> None:
        self.connections += 1
        reader = sock.makefile("rb")
        with sock, reader:
            while self.responses:
                request = _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                response = self.responses.pop(0)
                assert response is not None
                sock.sendall(response)
                if self.responses and self.responses[0] is None:
                    self.responses.pop(0)
                    sock.close()
                    self.hung_up.set()
                    return
                if b"length" not in response.lower() and b"chunked" not in response.lower():
                    return
            self.done.wait()

    @property
    def address(self) -> ServerAddress:
        return ServerAddress(False, "127.0.0.1", self.server.server_port)


def _read_request(reader: Any) -> bytes | None:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        if not line:
            return None
        head += line
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + reader.read(length)


@pytest.fixture
def canned() -> Iterator[Callable[[list[bytes | None]], CannedServer]]:
    servers: list[CannedServer] = []

    def start(responses: list[bytes | None]) -> CannedServer:
        servers.append(CannedServer(responses))
        return servers[-1]

    yield start
    for server in servers:
        server.done.set()
        server.server.stop(timeout=1)


def test_content_length_and_keep_alive(canned: Any) -> None:
    server = canned([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"] * 2)
    connection = HTTPConnection(server.address, None, 1000)
    try:
        for _ in range(2):
            response = connection.request("POST", "/x?y=1", [("A", "b")], b"body", 5)
            assert (response.status, response.body) == (200, b"ok")
    finally:
        connection.close()
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nA: b\r\nContent-Length: 4\r\n\r\nbody" in server.requests[0]


def test_chunked_body(canned: Any) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    )
    server = canned([chunked])
    connection = HTTPConnection(server.address, None, 1000)
    try:
        assert connection.request("GET", "/", [], None, 5).body == b"abcde"
    finally:
        connection.close()


def test_connection_close_and_body_to_eof(canned: Any) -> None:
    server = canned(
        [b'HTTP/1.0 400 Bad\r\n\r\n{"code":1}', b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]
    )
    connection = HTTPConnection(server.address, None, 1000)
    try:
        first = connection.request("GET", "/", [], None, 5)
        assert (first.status, first.body) == (400, b'{"code":1}')
        assert connection.request("GET", "/", [], None, 5).status == 200
    finally:
        connection.close()
    assert server.connections == 2


def test_an_idle_connection_closed_by_the_server_is_replaced(canned: Any) -> None:
    server = canned(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            None,
            b"HTTP/1.1 204 No\r\nContent-Length: 0\r\n\r\n",
        ]
    )
    connection = HTTPConnection(server.address, None, 1000)
    try:
        assert connection.request("GET", "/", [], None, 5).status == 200
        # the server hung up the idle connection (the None): a new one is opened
        assert server.hung_up.wait(5)
        assert connection.request("GET", "/", [], None, 5).status == 204
    finally:
        connection.close()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (b"SMTP ready\r\n\r\n", "not an HTTP/1.x response"),
        (b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", "over 1000"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    ],
)
def test_malformed_responses(canned: Any, response: bytes, error: str) -> None:
    server = canned([response])
    connection = HTTPConnection(server.address, None, 1000)
    try:
        with pytest.raises(RemoteProtocolError, match=error):
            connection.request("GET", "/", [], None, 5)
    finally:
        connection.close()


def test_a_response_that_never_ends_times_out(canned: Any) -> None:
    server = canned([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"])
    connection = HTTPConnection(server.address, None, 1000)
    try:
        with pytest.raises(TimeoutError):
            connection.request("GET", "/", [], None, 0.2)
    finally:
        connection.close()
