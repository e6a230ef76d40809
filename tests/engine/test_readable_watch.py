"""A long-poll waits for its client's socket with the socket's own read watcher
(gevent_private.watch_readable): woken when the client sends or hangs up, and when the
socket is closed under it, and the socket reads as usual afterwards."""

from __future__ import annotations

import os

import gevent
import gevent.event
import gevent.socket
import pytest

from geventsio.engine.gevent_private import SOCKET_FAST_PATH, watch_readable

pytestmark = pytest.mark.skipif(not SOCKET_FAST_PATH, reason="gevent's socket internals differ")


@pytest.fixture
def tcp_pair():
    """A connected pair of gevent TCP sockets on 127.0.0.1 (server side first)."""
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = gevent.socket.create_connection(listener.getsockname(), timeout=5)
    server, _ = listener.accept()
    listener.close()
    yield server, client
    server.close()
    client.close()


def test_data_from_the_client_wakes_the_wait_and_the_socket_reads_as_before(tcp_pair):
    server, client = tcp_pair
    woken = gevent.event.Event()
    watcher = watch_readable(server, woken)
    assert watcher is not None
    assert not woken.wait(0.05)  # nothing sent: not readable
    client.sendall(b"more")
    assert woken.wait(5)
    watcher.stop()
    server.settimeout(5)
    assert server.recv(16) == b"more"  # gevent's own wait on the same watcher works


def test_a_hang_up_wakes_the_wait(tcp_pair):
    server, client = tcp_pair
    woken = gevent.event.Event()
    watcher = watch_readable(server, woken)
    client.close()
    assert woken.wait(5)
    watcher.stop()


def test_a_socket_closed_under_the_wait_wakes_it_and_releases_its_descriptor(tcp_pair):
    server, _ = tcp_pair
    fd = server.fileno()
    woken = gevent.event.Event()
    watcher = watch_readable(server, woken)
    errors: list[object] = []
    hub = gevent.get_hub()
    original_handle_error = hub.handle_error
    hub.handle_error = lambda *args: errors.append(args)  # an error in a hub callback
    try:
        server.close()  # gevent throws into the watcher's callback owner, later
        assert woken.wait(5)
        watcher.stop()  # already closed by gevent: stopping it again is harmless
        gevent.sleep(0)  # the close's last callbacks
    finally:
        hub.handle_error = original_handle_error
    assert errors == []
    with pytest.raises(OSError):
        os.fstat(fd)  # the descriptor is closed: nothing held it open


def test_a_socket_another_greenlet_waits_on_is_left_alone(tcp_pair):
    server, client = tcp_pair
    server.settimeout(5)
    reader = gevent.spawn(server.recv, 16)
    gevent.sleep(0)  # the reader waits on the socket's watcher
    assert watch_readable(server, gevent.event.Event()) is None
    client.sendall(b"x")
    assert reader.get(timeout=5) == b"x"


def test_a_standard_library_socket_is_not_watched_this_way():
    from gevent import monkey

    stdlib_socket = monkey.get_original("socket", "socket")  # the tests run patched
    with stdlib_socket() as plain:
        assert watch_readable(plain, gevent.event.Event()) is None
