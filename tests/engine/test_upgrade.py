"""Upgrading a polling session to WebSocket, and everything that can go wrong on the way."""

from __future__ import annotations

import time

import pytest

from geventsio.options import Transport
from tests.support import (
    HandshakeRefused,
    assert_still_serving,
    eio_target,
    elapsed,
    messages,
    upgrade,
    wait_until,
)
from tests.support.ws import ConnectionEnded


def opened(server, **kwargs):
    client = server.polling(**kwargs)
    client.handshake()
    return client, server.handler.socket(client.sid)


def wait_get_pending(socket) -> None:
    wait_until(lambda: socket.polling.get_active, 5.0, "a GET waiting on the server")


def ws_for(server, client, **query):
    return server.websocket(eio_target(server.path, "websocket", client.sid, **query))


def assert_still_polling(server, client) -> None:
    """The session goes on over long-polling: a message goes out and comes back."""
    client.send("still polling")
    received = []
    while not received:
        received = messages(client.get())
    assert received == ["still polling"]


@pytest.mark.parametrize("gevent_websocket", [False, True], ids=["geventsio", "gevent-ws"])
def test_upgrade_from_polling(eio_server, gevent_websocket):
    server = eio_server(gevent_websocket=gevent_websocket)
    client, socket = opened(server)
    pending = client.spawn_get()
    wait_get_pending(socket)

    ws = ws_for(server, client)
    ws.send_text("2probe")
    assert ws.recv() == "3probe"
    assert pending.get(timeout=5).body == b"6"
    socket.send("sent during the upgrade")
    ws.send_text("5")
    assert ws.recv() == "4sent during the upgrade"
    wait_until(lambda: socket.transport is Transport.WEBSOCKET)

    ws.send_text("4over websocket")
    assert ws.recv() == "4over websocket"
    ws.send_binary(b"\x01\x02")
    assert ws.recv() == b"\x01\x02"
    late_get = server.http().get(client.target())
    assert late_get.status == 400
    late_post = server.http().post(client.target(), "4late")
    assert late_post.status == 400
    assert server.session_count == 1
    ws.send_text("4after the refused polls")
    assert ws.recv() == "4after the refused polls"
    ws.close()
    assert_still_serving(server)


def test_a_second_websocket_for_an_upgraded_session_is_closed(echo_server):
    client, _ = opened(echo_server)
    first = upgrade(client)
    first.send_text("4one")
    assert first.recv() == "4one"

    second = ws_for(echo_server, client)
    close = second.wait_closed()
    assert close is not None and close.code == 1008
    first.send_text("4still me")
    assert first.recv() == "4still me"
    assert echo_server.session_count == 1
    first.close()
    assert_still_serving(echo_server)


def test_a_second_websocket_during_an_upgrade_is_closed(echo_server):
    client, socket = opened(echo_server)
    first = ws_for(echo_server, client)
    wait_until(lambda: socket.upgrading)
    second = ws_for(echo_server, client)
    close = second.wait_closed()
    assert close is not None and close.code == 1008
    first.send_text("2probe")
    assert first.recv() == "3probe"
    first.send_text("5")
    first.send_text("4upgraded")
    assert first.recv() == "4upgraded"
    first.close()
    assert_still_serving(echo_server)


def test_a_client_vanishing_mid_upgrade_keeps_polling(echo_server):
    client, socket = opened(echo_server)
    ws = ws_for(echo_server, client)
    ws.send_text("2probe")
    assert ws.recv() == "3probe"
    ws.abort()
    wait_until(lambda: not socket.upgrading, 5.0, "the upgrade abandoned")
    assert socket.transport is Transport.POLLING
    assert_still_polling(echo_server, client)
    assert echo_server.session_count == 1
    client.close()
    assert_still_serving(echo_server)


@pytest.mark.parametrize("probed", [False, True], ids=["before-probe", "after-probe"])
def test_upgrade_timeout_closes_the_websocket_and_keeps_polling(eio_server, probed):
    server = eio_server(upgrade_timeout=0.2)
    client, socket = opened(server)
    ws = ws_for(server, client)
    start = time.monotonic()
    if probed:
        ws.send_text("2probe")
        assert ws.recv() == "3probe"
    ws.wait_eof()
    assert elapsed(start) < 2.5
    assert ws.close_received is not None
    assert socket.transport is Transport.POLLING
    assert_still_polling(server, client)
    client.close()
    assert_still_serving(server)


@pytest.mark.parametrize("first", ["5", "4hello", "2ping"])
def test_anything_but_the_probe_abandons_the_upgrade(echo_server, first):
    client, socket = opened(echo_server)
    ws = ws_for(echo_server, client)
    ws.send_text(first)
    with pytest.raises(ConnectionEnded):
        ws.recv()
    wait_until(lambda: not socket.upgrading)
    assert socket.transport is Transport.POLLING
    assert_still_polling(echo_server, client)
    client.close()
    assert_still_serving(echo_server)


def test_an_upgrade_with_another_protocol_version_is_refused(echo_server):
    client, _ = opened(echo_server)
    with pytest.raises(HandshakeRefused) as refused:
        ws_for(echo_server, client, EIO="3")
    assert refused.value.response.status == 400
    assert refused.value.response.json()["code"] == 5
    assert_still_polling(echo_server, client)
    client.close()
    assert_still_serving(echo_server)


def test_an_upgrade_for_an_unknown_sid_is_refused(echo_server):
    with pytest.raises(HandshakeRefused) as refused:
        echo_server.websocket(eio_target(echo_server.path, "websocket", "no-such-session"))
    assert refused.value.response.status == 400
    assert refused.value.response.json() == {"code": 1, "message": "Session ID unknown"}
    assert_still_serving(echo_server)


def test_upgrades_can_be_disabled(eio_server):
    server = eio_server(allow_upgrades=False)
    client, _ = opened(server)
    with pytest.raises(HandshakeRefused) as refused:
        ws_for(server, client)
    assert refused.value.response.status == 400
    assert refused.value.response.json()["code"] == 3
    assert_still_polling(server, client)
    client.close()
    assert_still_serving(server)


def test_an_upgrade_from_a_refused_origin_is_403(echo_server):
    own = [("Origin", f"http://127.0.0.1:{echo_server.port}")]
    client, _ = opened(echo_server, headers=own)
    with pytest.raises(HandshakeRefused) as refused:
        echo_server.websocket(
            eio_target(echo_server.path, "websocket", client.sid),
            headers=[("Origin", "http://evil.example")],
        )
    assert refused.value.response.status == 403
    assert refused.value.response.json()["code"] == 4
    assert_still_polling(echo_server, client)
    client.close()
    assert_still_serving(echo_server)


def test_every_get_between_probe_and_upgrade_is_answered_at_once(echo_server):
    # A client may handle the first NOOP and start another GET before it sends "5"; that
    # GET must not wait for packets (the Node reference repeats its NOOP for this).
    client, socket = opened(echo_server)
    ws = ws_for(echo_server, client)
    ws.send_text("2probe")
    assert ws.recv() == "3probe"
    assert client.get_response().body == b"6"
    started = time.monotonic()
    assert client.get_response().body == b"6"
    assert client.get_response().body == b"6"
    assert elapsed(started) < 2.0  # not held until a ping (25 s) or the upgrade timeout
    ws.send_text("5")
    wait_until(lambda: socket.transport is Transport.WEBSOCKET)
    ws.send_text("4after")
    assert ws.recv() == "4after"
