"""Compressed long-polling answers (``http_compression``), on a live server."""

from __future__ import annotations

import gzip
import zlib

import pytest

from geventsio.engine.http import preferred_coding
from geventsio.protocol.outgoing import OutgoingPacket
from tests.support import assert_still_serving

LARGE = "x" * 2000  # over the 1 KiB threshold once framed, and very compressible


def opened(server, accept_encoding: str | None):
    headers = [("Accept-Encoding", accept_encoding)] if accept_encoding is not None else []
    client = server.polling(headers=headers)
    client.handshake()
    return client, server.handler.socket(client.sid)


def test_gzip_above_the_threshold(echo_server):
    client, socket = opened(echo_server, "gzip, deflate, br")
    socket.send(LARGE)
    response = client.get_response()
    assert response.status == 200
    assert response.header("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in response.header_values("Vary")
    assert int(response.header("Content-Length")) == len(response.body) < 200
    assert gzip.decompress(response.body) == ("4" + LARGE).encode()
    client.close()
    assert_still_serving(echo_server)


def test_deflate_when_the_client_prefers_it(echo_server):
    client, socket = opened(echo_server, "gzip;q=0.5, deflate")
    socket.send(LARGE)
    response = client.get_response()
    assert response.header("Content-Encoding") == "deflate"
    assert zlib.decompress(response.body) == ("4" + LARGE).encode()
    client.close()


def test_a_batch_is_compressed_whole(echo_server):
    client, socket = opened(echo_server, "gzip")
    for i in range(100):
        socket.send(f"message {i:02}")  # each small, together over the threshold
    response = client.get_response()
    assert response.header("Content-Encoding") == "gzip"
    sent = "\x1e".join(f"4message {i:02}" for i in range(100))
    assert gzip.decompress(response.body) == sent.encode()
    client.close()


def test_nothing_compressed_below_the_threshold(echo_server):
    client, socket = opened(echo_server, "gzip")
    socket.send("y" * 1022)  # 1023 bytes with its type: one short of the threshold
    response = client.get_response()
    assert response.header("Content-Encoding") is None
    assert response.header_values("Vary") == []
    assert response.body == ("4" + "y" * 1022).encode()
    socket.send("y" * 1023)  # exactly the threshold: compressed, as in Node
    response = client.get_response()
    assert response.header("Content-Encoding") == "gzip"
    client.close()


@pytest.mark.parametrize("accept_encoding", [None, "", "identity", "br", "gzip;q=0, deflate;q=0"])
def test_nothing_compressed_without_an_accepted_coding(echo_server, accept_encoding):
    client, socket = opened(echo_server, accept_encoding)
    socket.send(LARGE)
    response = client.get_response()
    assert response.header("Content-Encoding") is None
    assert response.header_values("Vary") == ["Accept-Encoding"]
    assert response.body == ("4" + LARGE).encode()
    client.close()


def test_switched_off(eio_server):
    server = eio_server(http_compression=False)
    client, socket = opened(server, "gzip")
    socket.send(LARGE)
    response = client.get_response()
    assert response.header("Content-Encoding") is None
    assert response.body == ("4" + LARGE).encode()
    client.close()


def test_another_threshold(eio_server):
    server = eio_server(compression_threshold=10)
    client, socket = opened(server, "deflate")
    socket.send("z" * 20)
    response = client.get_response()
    assert response.header("Content-Encoding") == "deflate"
    assert zlib.decompress(response.body) == ("4" + "z" * 20).encode()
    client.close()


def test_packets_that_refuse_compression_are_sent_as_they_are(echo_server):
    client, socket = opened(echo_server, "gzip")
    socket.send_packets((OutgoingPacket.message(LARGE, compress=False),))
    response = client.get_response()
    assert response.header("Content-Encoding") is None
    assert response.body == ("4" + LARGE).encode()
    client.close()


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("deflate, gzip", "gzip"),
        ("GZIP;Q=0.1, deflate;q=0.2", "deflate"),
        ("*", "gzip"),
        ("*;q=0.5, gzip;q=0", "deflate"),
        ("gzip;q=0", None),
        ("gzip;q=bad", None),
        ("br, zstd", None),
        ("", None),
        (" gzip ; q=1.0 ,", "gzip"),
    ],
)
def test_preferred_coding(header, coding):
    assert preferred_coding(header) == coding
