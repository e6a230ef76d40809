"""Long-polling: GET and POST on a live server, with hostile and vanishing clients."""

from __future__ import annotations

import socket
import time

import gevent
import pytest

from geventsio._types import DisconnectReason
from geventsio.protocol.engineio import Packet, PacketType, decode_payload
from tests.support import (
    assert_still_serving,
    build_request,
    chunk,
    elapsed,
    messages,
    payload,
    wait_until,
)


def opened(server, **kwargs):
    client = server.polling(**kwargs)
    client.handshake()
    return client, server.handler.socket(client.sid)


def wait_get_pending(socket) -> None:
    wait_until(lambda: socket.polling.get_active, 5.0, "a GET waiting on the server")


def assert_sid_unknown(server, client) -> None:
    response = server.http().get(client.target())
    assert response.status == 400
    assert response.json() == {"code": 1, "message": "Session ID unknown"}


# -- delivery ---------------------------------------------------------------------------


def test_get_returns_as_soon_as_a_packet_is_queued(echo_server):
    client, socket = opened(echo_server)
    get = client.spawn_get()
    wait_get_pending(socket)
    start = time.monotonic()
    socket.send("now")
    response = get.get(timeout=5)
    assert elapsed(start) < 1.0
    assert (response.status, response.body) == (200, b"4now")
    client.close()
    assert_still_serving(echo_server)


def test_queued_packets_leave_in_one_batch_in_order(echo_server):
    client, socket = opened(echo_server)
    socket.send("a")
    socket.send(b"\x00\xff")
    socket.send("é✓")
    response = client.get_response()
    assert response.body == "4a\x1ebAP8=\x1e4é✓".encode()
    client.close()
    assert_still_serving(echo_server)


def test_binary_travels_as_base64_both_ways(echo_server):
    client, _ = opened(echo_server)
    response = client.post_raw(b"bAQID\x1e4text\x1eb")
    assert (response.status, response.body) == (200, b"ok")
    assert echo_server.handler.messages_of(client.sid) == [b"\x01\x02\x03", "text", b""]
    assert client.get_response().body == b"bAQID\x1e4text\x1eb"
    client.close()
    assert_still_serving(echo_server)


def test_a_large_batch_is_delivered_whole(echo_server):
    client, _ = opened(echo_server)
    sent = [f"m{i}" for i in range(1000)]
    client.send(*sent)
    received = []
    while len(received) < len(sent):
        received += messages(client.get())
    assert received == sent
    client.close()
    assert_still_serving(echo_server)


# -- concurrency and closing ------------------------------------------------------------


def test_concurrent_gets_close_the_session(echo_server):
    client, socket = opened(echo_server)
    first = client.spawn_get()
    wait_get_pending(socket)

    second = echo_server.http().get(client.target())
    assert second.status == 400
    assert second.json()["code"] == 3
    response = first.get(timeout=5)
    assert (response.status, response.body) == (200, b"1")
    echo_server.wait_sessions(0)
    assert echo_server.handler.closed[client.sid] is DisconnectReason.TRANSPORT_ERROR
    assert_sid_unknown(echo_server, client)
    assert_still_serving(echo_server)


def test_concurrent_posts_close_the_session(echo_server):
    client, socket = opened(echo_server)
    slow = echo_server.http()
    slow.send(
        build_request("POST", client.target(), slow.host_header, body=b"4par", content_length=10)
    )
    wait_until(lambda: socket.polling.post_active, 5.0, "a POST reading its body")

    second = echo_server.http().post(client.target(), "4second")
    assert second.status == 400
    echo_server.wait_sessions(0)
    assert echo_server.handler.messages_of(client.sid) == []
    assert_still_serving(echo_server)


def test_client_close_ends_the_pending_get_with_noop(echo_server):
    client, socket = opened(echo_server)
    get = client.spawn_get()
    wait_get_pending(socket)
    client.send(Packet(PacketType.CLOSE))
    assert get.get(timeout=5).body == b"6"
    echo_server.wait_sessions(0)
    assert echo_server.handler.closed[client.sid] is DisconnectReason.TRANSPORT_CLOSE
    assert_still_serving(echo_server)


@pytest.mark.parametrize("get_waiting", [True, False])
def test_server_close_is_told_to_the_client(echo_server, get_waiting):
    client, socket = opened(echo_server)
    socket.send("last words")
    get = None
    if get_waiting:
        assert messages(client.get()) == ["last words"]
        get = client.spawn_get()
        wait_get_pending(socket)
    socket.close()
    response = get.get(timeout=5) if get else client.get_response()
    packets = decode_payload(response.body)
    assert packets[-1].type is PacketType.CLOSE
    assert messages(packets) == ([] if get_waiting else ["last words"])
    echo_server.wait_sessions(0)
    assert echo_server.handler.closed[client.sid] is DisconnectReason.FORCED_CLOSE
    assert_sid_unknown(echo_server, client)
    assert_still_serving(echo_server)


def test_a_client_dropping_its_get_is_noticed_at_once(eio_server):
    server = eio_server(ping_interval=20, ping_timeout=20)
    client, socket = opened(server)
    http = server.http()
    http.send(build_request("GET", client.target(), http.host_header))
    wait_get_pending(socket)

    start = time.monotonic()
    http.close()
    server.wait_sessions(0, timeout=2.0)
    assert elapsed(start) < 2.0
    assert server.handler.closed[client.sid] is DisconnectReason.TRANSPORT_CLOSE
    assert_still_serving(server)


# -- heartbeat --------------------------------------------------------------------------


def test_a_client_that_never_pongs_is_closed_after_interval_plus_timeout(eio_server):
    server = eio_server(ping_interval=0.2, ping_timeout=0.2)
    start = time.monotonic()
    client, _ = opened(server)
    server.wait_sessions(0, timeout=3.0)
    assert 0.35 <= elapsed(start) < 2.0
    assert server.handler.closed[client.sid] is DisconnectReason.PING_TIMEOUT
    assert_sid_unknown(server, client)
    assert_still_serving(server)


def test_a_client_that_pongs_stays(eio_server):
    server = eio_server(ping_interval=0.1, ping_timeout=0.3)
    client, _ = opened(server)
    start = time.monotonic()
    pings = 0
    while elapsed(start) < 1.0:
        packets = client.get()
        if any(p.type is PacketType.PING for p in packets):
            pings += 1
            client.send(Packet(PacketType.PONG))
    assert pings >= 4
    assert server.session_count == 1
    client.close()
    assert_still_serving(server)


def test_pings_and_pongs_on_a_connection_per_request(eio_server):
    # As the official test suite's fetch() calls: every request on a new connection that
    # the client closes after the answer (the suite's interval, 300 ms; its timeout, 200
    # ms, doubled for a loaded machine: a reverted change failed here up to 400 ms).
    server = eio_server(ping_interval=0.3, ping_timeout=0.4)
    client, _ = opened(server)
    close = [("Connection", "close")]
    for _ in range(3):
        get = server.http()
        assert get.get(client.target(), headers=close).body == b"2"
        get.close()
        post = server.http()
        assert post.post(client.target(), "3", headers=close).body == b"ok"
        post.close()
    assert server.session_count == 1
    assert client.sid not in server.handler.closed
    client.close()
    assert_still_serving(server)


def test_a_ping_from_the_client_closes_the_session(echo_server):
    client, socket = opened(echo_server)
    get = client.spawn_get()
    wait_get_pending(socket)
    response = client.post_raw(payload(Packet(PacketType.PING), "4after"))
    assert (response.status, response.body) == (200, b"ok")
    assert get.get(timeout=5).body == b"1"
    echo_server.wait_sessions(0)
    assert echo_server.handler.closed[client.sid] is DisconnectReason.TRANSPORT_ERROR
    assert echo_server.handler.messages_of(client.sid) == []
    assert_sid_unknown(echo_server, client)
    assert_still_serving(echo_server)


def test_a_polling_client_that_never_polls_is_closed_at_its_buffer_limit(eio_server, caplog):
    limit = 64 * 1024
    server = eio_server(max_buffer_size=limit)
    client, socket = opened(server)
    sent = 0
    while socket.connected and sent < 1000:
        socket.send("z" * 4096)
        sent += 1
        assert socket.polling.size <= limit
        gevent.sleep(0)
    assert not socket.connected, "the buffer never overflowed"
    server.wait_sessions(0)
    assert server.handler.closed[client.sid] is DisconnectReason.TRANSPORT_ERROR
    assert "client is not reading" in caplog.text
    assert_still_serving(server)


# -- hostile bodies ---------------------------------------------------------------------


def test_oversize_post_by_content_length_is_413_and_closes(eio_server):
    server = eio_server(max_payload=1000)
    client, _ = opened(server)
    response = client.post_raw(b"4" + b"x" * 1000)
    assert response.status == 413
    assert response.json()["code"] == 3
    server.wait_sessions(0)
    assert server.handler.messages == []
    assert server.handler.closed[client.sid] is DisconnectReason.TRANSPORT_ERROR
    assert_still_serving(server)


def test_oversize_declared_body_is_refused_before_it_is_sent(eio_server):
    server = eio_server(max_payload=1_000_000)
    client, _ = opened(server)
    http = server.http()
    start = time.monotonic()
    http.send_request("POST", client.target(), body=b"4", content_length=100_000_000)
    response = http.read_response()
    assert elapsed(start) < 1.0
    assert response.status == 413
    server.wait_sessions(0)
    assert_still_serving(server)


def test_oversize_chunked_post_is_413_and_closes(eio_server):
    server = eio_server(max_payload=1000)
    client, _ = opened(server)
    http = server.http()
    head = build_request("POST", client.target(), http.host_header, chunked=True)
    http.send(head[: -len(b"0\r\n\r\n")])
    for _ in range(5):
        http.send(chunk(b"4" + b"y" * 299))
    http.send(chunk(b""))
    response = http.read_response()
    assert response.status == 413
    server.wait_sessions(0)
    assert server.handler.messages == []
    assert_still_serving(server)


def test_chunked_post_under_the_limit_is_delivered(eio_server):
    server = eio_server(max_payload=1000)
    client, _ = opened(server)
    response = server.http().request("POST", client.target(), body=payload("chunked"), chunked=True)
    assert (response.status, response.body) == (200, b"ok")
    assert messages(client.get()) == ["chunked"]
    client.close()
    assert_still_serving(server)


@pytest.mark.parametrize(
    "body",
    [b"9hello", b"", b"b!!!", b"4\xff\xfe", b"4ok\x1e", b"4ok\x1e7bad", b"\x1e", b"0{}"],
    ids=[
        "unknown-type",
        "empty",
        "bad-base64",
        "bad-utf8",
        "empty-segment",
        "bad-after-good",
        "separator-only",
        "open-from-client",
    ],
)
def test_malformed_post_is_400_and_closes(echo_server, body):
    client, _ = opened(echo_server)
    response = client.post_raw(body)
    assert response.status == 400
    assert response.json()["code"] == 3
    echo_server.wait_sessions(0)
    assert echo_server.handler.closed[client.sid] is DisconnectReason.PARSE_ERROR
    assert_sid_unknown(echo_server, client)
    assert_still_serving(echo_server)


def test_client_close_without_a_waiting_get_forgets_the_session_at_once(eio_server):
    server = eio_server(ping_interval=20, ping_timeout=20)
    client, _ = opened(server)
    client.send(Packet(PacketType.CLOSE))
    assert server.handler.closed[client.sid] is DisconnectReason.TRANSPORT_CLOSE
    server.wait_sessions(0, timeout=2.0)


# -- the waiting GET --------------------------------------------------------------------


def test_a_waiting_get_wakes_at_its_deadline_with_no_packets():
    from geventsio.engine.polling import PollingBuffer, _wait

    buffer = PollingBuffer()
    with gevent.Timeout(5):
        assert _wait(buffer, None, 0.01) is True
    assert buffer.packets == []


def test_a_waiting_get_wakes_at_a_push_and_leaves_no_watcher_behind():
    from geventsio.engine.polling import PollingBuffer, _wait
    from geventsio.protocol.outgoing import OutgoingPacket

    buffer = PollingBuffer()
    left, right = socket.socketpair()
    try:
        gevent.spawn_later(0.01, buffer.push, [OutgoingPacket(Packet(PacketType.NOOP))], None)
        with gevent.Timeout(5):
            assert _wait(buffer, left, 60.0) is True
        assert len(buffer.take()) == 1
        right.close()  # the closed watcher no longer wakes the buffer's event
        gevent.sleep(0.05)
        assert not buffer.waiter.is_set()
    finally:
        left.close()
        right.close()


def test_a_waiting_get_sees_its_client_hang_up():
    from geventsio.engine.polling import PollingBuffer, _wait

    left, right = socket.socketpair()
    try:
        gevent.spawn_later(0.01, right.close)
        with gevent.Timeout(5):
            assert _wait(PollingBuffer(), left, 60.0) is False
    finally:
        left.close()
