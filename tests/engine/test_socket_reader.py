"""The handler's request reader (gevent_private.socket_reader): what ``makefile("rb")``
reads, also when it waits for the socket before reading."""

from __future__ import annotations

import socket as stdlib_socket

import gevent
import gevent.socket
import pytest

from geventsio.engine.gevent_private import SOCKET_FAST_PATH, socket_reader


@pytest.fixture
def pair():
    left, right = gevent.socket.socketpair()
    yield left, right
    left.close()
    right.close()


@pytest.mark.parametrize("reader_of", [socket_reader, lambda s, n: s.makefile("rb", n)])
def test_it_reads_what_makefile_reads(pair, reader_of):
    left, right = pair
    reader = reader_of(left, 16)
    right.sendall(b"GET / HTTP/1.1\r\n" + b"x" * 40 + b"\r\n")  # there before the read
    assert reader.readline() == b"GET / HTTP/1.1\r\n"
    assert reader.readline() == b"x" * 40 + b"\r\n"  # past the buffer: read on at once
    gevent.spawn_later(0.01, right.sendall, b"later\r\n")  # not there yet: waited for
    with gevent.Timeout(5):
        assert reader.readline() == b"later\r\n"
    right.shutdown(stdlib_socket.SHUT_WR)
    with gevent.Timeout(5):
        assert reader.read() == b""
    reader.close()


@pytest.mark.skipif(not SOCKET_FAST_PATH, reason="gevent's socket internals differ")
def test_a_non_blocking_read_does_not_wait(pair):
    left, _ = pair
    ours, theirs = socket_reader(left, 16), left.makefile("rb", 16)
    left.settimeout(0.0)  # as takeover.read_ahead does
    with gevent.Timeout(5):
        assert ours.read1(16) == theirs.read1(16) == b""  # nothing there, no wait
    ours.close()
    theirs.close()


@pytest.mark.skipif(not SOCKET_FAST_PATH, reason="gevent's socket internals differ")
def test_a_timed_out_wait_fails_as_a_timed_out_recv(pair):
    left, right = pair
    reader = socket_reader(left, 16)
    left.settimeout(0.01)
    with gevent.Timeout(5), pytest.raises(stdlib_socket.timeout):
        reader.readline()
    right.sendall(b"late\r\n")
    left.settimeout(None)
    with pytest.raises(OSError, match="timed out object"):
        reader.readline()
    reader.close()


def test_the_socket_closes_with_its_reader(pair):
    left, right = pair
    reader = socket_reader(left, 16)
    left.close()  # the reader still holds it, as makefile()'s does
    right.sendall(b"still open\r\n")
    with gevent.Timeout(5):
        assert reader.readline() == b"still open\r\n"
    reader.close()
    assert left.fileno() == -1
