"""Two engines of one cluster in this process, each on its own live server: the requests
of one's sessions sent to the other reach their owner -- over an abstract unix socket
(LocalCluster, one host) or TCP found in Redis (RedisCluster, several hosts)."""

from __future__ import annotations

import gzip
import socket
import uuid
from collections.abc import Iterator

import orjson
import pytest

from geventsio.cluster import LocalCluster, Member
from geventsio.cluster.redis import RedisCluster
from geventsio.cluster.sid import owner_tag
from geventsio.engine.server import EngineServer
from geventsio.options import EngineOptions
from geventsio.protocol import engineio_v3
from geventsio.protocol.engineio import Packet, PacketType
from geventsio.wsgi import WSGIApp
from tests.support import (
    HandshakeRefused,
    LiveServer,
    PollingClient,
    RecordingEcho,
    messages,
    payload,
    upgrade,
)

OCTET = [("Content-Type", engineio_v3.BINARY_CONTENT_TYPE)]


def member(kind: str, group: str, redis_url: str) -> tuple[LiveServer, Member]:
    handler = RecordingEcho()
    engine = EngineServer(handler, EngineOptions(max_payload=1000, allow_eio3=True))
    cluster: Member = (
        LocalCluster(engine, group)
        if kind == "local"
        else RedisCluster(engine, redis_url, key=f"test-cluster-{group}")
    )
    cluster.start()
    return LiveServer(WSGIApp(engine), engine=engine, handler=handler), cluster


@pytest.fixture(params=["local", "redis"])
def pair(
    request: pytest.FixtureRequest, redis_url: str
) -> Iterator[tuple[tuple[LiveServer, Member], tuple[LiveServer, Member]]]:
    group = uuid.uuid4().hex[:12]
    a, b = member(request.param, group, redis_url), member(request.param, group, redis_url)
    try:
        yield a, b
    finally:
        for server, cluster in (a, b):
            assert server.engine is not None
            server.engine.close_all(drain_timeout=0)  # no GET will collect what is left
            server.stop()
            cluster.stop()


def on(server: LiveServer, sid: str) -> PollingClient:
    """A polling client for ``sid`` that talks to ``server``."""
    client = server.polling()
    client.sid = sid
    return client


def test_a_session_is_served_through_any_member(pair) -> None:
    (a, cluster_a), (b, _) = pair
    opener = a.polling()
    opener.handshake()
    assert owner_tag(opener.sid) == cluster_a.tag
    elsewhere = on(b, opener.sid)

    elsewhere.send("hello", b"\x01\x02")
    assert a.handler.messages_of(opener.sid) == ["hello", b"\x01\x02"]
    assert messages(elsewhere.get()) == ["hello", b"\x01\x02"]  # the echo, from a
    assert b.session_count == 0


def test_a_long_poll_through_another_member_gets_what_the_owner_sends(pair) -> None:
    (a, _), (b, _) = pair
    opener = a.polling()
    opener.handshake()
    waiting = on(b, opener.sid).spawn_get()
    a.wait_sessions(1)
    a.handler.socket(opener.sid)  # the session is a's
    opener.send("ping me")
    response = waiting.get(timeout=10)
    assert response.status == 200
    assert b"ping me" in response.body


def test_a_compressed_answer_through_another_member_keeps_its_encoding(pair) -> None:
    (a, _), (b, _) = pair
    opener = a.polling()
    opener.handshake()
    a.handler.socket(opener.sid).send("x" * 5000)
    forwarded = b.polling(headers=[("Accept-Encoding", "gzip")])
    forwarded.sid = opener.sid
    response = forwarded.get_response()
    assert response.status == 200
    assert response.header("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in response.header_values("Vary")
    assert gzip.decompress(response.body) == b"4" + b"x" * 5000


def test_a_body_over_max_payload_is_refused_before_forwarding(pair) -> None:
    (a, _), (b, _) = pair
    opener = a.polling()
    opener.handshake()
    response = on(b, opener.sid).post_raw(payload("x" * 2000))
    assert response.status == 413
    assert a.handler.messages_of(opener.sid) == []


def test_a_request_for_a_gone_owner_is_answered_code_1_at_once(pair) -> None:
    (a, cluster_a), (b, _) = pair
    opener = a.polling()
    opener.handshake()
    cluster_a.stop()  # as if a's process were gone: nothing listens on its socket

    response = on(b, opener.sid).get_response()  # within the client's timeout
    assert response.status == 400
    assert response.json() == {"code": 1, "message": "Session ID unknown"}
    opener.send(Packet(PacketType.CLOSE))


@pytest.mark.parametrize(
    "forged", ["{random}.{tag}x", "x{random}.{tag}", "{random}.a/b", "{random}."]
)
def test_a_forged_sid_reaches_no_session(pair, forged: str) -> None:
    (a, _), (b, _) = pair
    opener = a.polling()
    opener.handshake()
    random_part, _, tag = opener.sid.rpartition(".")
    sid = forged.format(random=random_part, tag=tag)

    response = on(b, sid).get_response()
    assert response.status == 400
    assert response.json() == {"code": 1, "message": "Session ID unknown"}
    assert a.handler.messages_of(opener.sid) == []


def test_an_upgrade_through_another_member_is_spliced_to_the_owner(pair) -> None:
    (a, _), (b, _) = pair
    opener = a.polling()
    opener.handshake()
    ws = upgrade(on(b, opener.sid))  # the probe and its answer go through b

    ws.send_text("4over the splice")
    assert ws.recv(timeout=10) == "4over the splice"  # echoed by a, the owner
    assert a.handler.messages_of(opener.sid) == ["over the splice"]
    assert a.handler.socket(opener.sid).websocket is not None
    assert b.session_count == 0
    ws.close()
    a.wait_sessions(0)


def test_an_upgrade_for_a_gone_owner_is_refused_with_code_1(pair) -> None:
    (a, cluster_a), (b, _) = pair
    opener = a.polling()
    opener.handshake()
    cluster_a.stop()
    with pytest.raises(HandshakeRefused) as refused:
        upgrade(on(b, opener.sid))
    assert refused.value.response.status == 400
    assert refused.value.response.json() == {"code": 1, "message": "Session ID unknown"}
    opener.send(Packet(PacketType.CLOSE))


def test_a_members_listener_opens_no_session(pair) -> None:
    (a, cluster_a), _ = pair
    address = cluster_a.address_of(cluster_a.tag)
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(address)
        sock.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert a.session_count == 0


def test_engine_io_v3_binary_payloads_are_relayed_with_their_content_type(pair) -> None:
    # socket.io-client 2.x in a browser: binary POSTs and GET answers are
    # application/octet-stream, which forwarding must keep both ways.
    (a, _), (b, _) = pair
    opener = a.polling(query={"EIO": "3"})
    [open_packet] = engineio_v3.decode_string_payload(opener.get_response().body)
    sid = orjson.loads(open_packet.data)["sid"]
    elsewhere = on(b, sid)
    elsewhere.query = {"EIO": "3"}
    body = engineio_v3.encode_binary_payload([Packet(PacketType.MESSAGE, b"\x00\xff")])
    with b.http() as http:
        posted = http.request("POST", elsewhere.target(), body=body, headers=OCTET)
    assert (posted.status, posted.body) == (200, b"ok")
    assert a.handler.messages_of(sid) == [b"\x00\xff"]
    answer = elsewhere.get_response()
    assert answer.header("content-type") == engineio_v3.BINARY_CONTENT_TYPE
    assert answer.body == body
    assert b.session_count == 0
