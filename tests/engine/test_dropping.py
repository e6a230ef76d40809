"""What slow_consumer_policy="drop" drops: the pure choice, then sessions on the wire."""

from __future__ import annotations

import logging

import gevent
import pytest

from geventsio._types import DisconnectReason
from geventsio.engine.dropping import Tier, choose_victims
from geventsio.options import SlowConsumerPolicy
from geventsio.protocol.outgoing import OutgoingPacket
from tests.support import assert_still_serving, eio_target, messages, wait_until

V, B, K = Tier.VOLATILE, Tier.BROADCAST, Tier.KEEP


@pytest.mark.parametrize(
    ("tiers", "excess", "tier", "victims"),
    [
        ([B, V, B, V], 1, K, [1]),  # volatile first, the oldest
        ([B, V, B, V], 15, K, [1, 3]),  # both volatile ones cover it
        ([B, V, B, V], 25, K, [0, 1, 3]),  # then the oldest broadcast
        ([B, V, B, V], 25, B, [0, 1, 3]),  # a broadcast may push out broadcasts
        ([B, V, B, V], 25, V, None),  # a volatile packet only volatile ones
        ([K, K, B], 15, K, None),  # acks and control packets never go
        ([K, B, K, B], 20, K, [1, 3]),
        ([K], 0, B, []),  # nothing to free
    ],
)
def test_victims_in_order(tiers, excess, tier, victims):
    assert choose_victims(tiers, [10] * len(tiers), excess, tier) == victims


def opened(server):
    client = server.polling()
    client.handshake()
    return client, server.handler.socket(client.sid)


def broadcast(socket, text: str) -> None:
    socket.send_packets((OutgoingPacket.message(text),), Tier.BROADCAST)


def drop_server(eio_server, limit: int = 10_000):
    return eio_server(max_buffer_size=limit, slow_consumer_policy=SlowConsumerPolicy.DROP)


def test_polling_drops_the_oldest_broadcasts_and_keeps_the_rest(eio_server, caplog):
    server = drop_server(eio_server)
    client, socket = opened(server)
    socket.send("reply-1")
    for i in range(10):
        broadcast(socket, f"{i}" * 2000)
    socket.send("reply-2")
    assert socket.connected
    # 10,000 bytes hold the two replies and the newest four broadcasts.
    assert messages(client.get()) == ["reply-1", *[f"{i}" * 2000 for i in range(6, 10)], "reply-2"]
    warnings = [r for r in caplog.records if "dropping" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    client.close()
    assert_still_serving(server)


def test_a_packet_that_may_not_be_dropped_closes_a_full_session(eio_server, caplog):
    server = drop_server(eio_server)
    client, socket = opened(server)
    for i in range(4):
        socket.send(f"{i}" * 2000)  # kept: no broadcast to drop for them
    assert socket.connected
    socket.send("x" * 2000)
    server.wait_sessions(0)
    assert server.handler.closed[client.sid] is DisconnectReason.TRANSPORT_ERROR
    assert "closing it" in caplog.text
    assert_still_serving(server)


@pytest.mark.parametrize("policy", [SlowConsumerPolicy.DROP, "drop"])
def test_the_drop_policy_keeps_a_session_fed_broadcasts(eio_server, policy):
    server = eio_server(max_buffer_size=10_000, slow_consumer_policy=policy)
    client, socket = opened(server)
    for i in range(100):
        broadcast(socket, f"{i % 10}" * 2000)
    assert socket.connected
    assert len(messages(client.get())) == 4
    client.close()


def test_websocket_drops_broadcasts_but_delivers_every_reply_in_order(eio_server):
    limit = 64 * 1024
    server = drop_server(eio_server, limit)
    ws = server.websocket(eio_target(server.path, "websocket"), rcvbuf=4096)
    session = wait_until(lambda: server.handler.connected)[0]
    assert ws.recv().startswith("0{")  # the OPEN packet
    sent = 0
    while session.websocket._writer.buffered < limit // 2 and sent < 20_000:
        broadcast(session, "b" * 8192)  # until the kernel's buffers are full
        sent += 1
        gevent.sleep(0)
    replies = [f"4reply-{n}" for n in range(50)]
    for n in range(50):
        session.send(f"reply-{n}")
        for _ in range(4):
            broadcast(session, "b" * 8192)
        assert session.websocket._writer.buffered <= limit
    assert session.connected
    received = []
    while len([m for m in received if m.startswith("4reply")]) < 50:
        received.append(ws.recv(timeout=10))
    assert [m for m in received if m.startswith("4reply")] == replies
    before_last_reply = sent + 49 * 4
    assert len([m for m in received if m.startswith("4b")]) < before_last_reply  # dropped
    ws.close()
    assert_still_serving(server)
