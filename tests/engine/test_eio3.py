"""Engine.IO v3 (``allow_eio3``) on raw HTTP and WebSocket: the handshake, payloads,
binary both ways, the heartbeat in v3's direction, the upgrade; and the refusal with
Node's code 5 when the option is off."""

from __future__ import annotations

import time

import gevent
import orjson
import pytest

from geventsio._types import DisconnectReason
from geventsio.protocol import engineio_v3 as v3
from geventsio.protocol.engineio import Packet, PacketType
from tests.support import eio_target, wait_until

M = PacketType.MESSAGE
OCTET = [("Content-Type", "application/octet-stream")]


def v3_polling(server, **query: str):
    client = server.polling(query={"EIO": "3", **query})
    response = client.get_response()
    assert response.status == 200, response.body
    [open_packet] = v3.decode_string_payload(response.body)
    data = orjson.loads(open_packet.data)
    client.sid = data["sid"]
    return client, response, data


def v3_get(client) -> list[Packet]:
    response = client.get_response()
    assert response.status == 200, response.body
    if response.header("content-type") == v3.BINARY_CONTENT_TYPE:
        return v3.decode_binary_payload(response.body)
    return v3.decode_string_payload(response.body)


def v3_post(client, *packets: Packet, binary: bool = False) -> None:
    if binary:
        with client.server.http() as http:
            body = v3.encode_binary_payload(packets)
            response = http.request("POST", client.target(), body=body, headers=OCTET)
    else:
        response = client.post_raw(v3.encode_string_payload(packets))
    assert (response.status, response.body) == (200, b"ok"), response


def v3_close(client) -> None:
    v3_post(client, Packet(PacketType.CLOSE))
    client.get_response()
    client.drop()


def test_without_the_option_a_v3_client_gets_nodes_code_5(eio_server):
    server = eio_server()
    for transport in ("polling", "websocket"):
        with server.http() as http:
            response = http.get(eio_target(server.path, transport, EIO="3"))
        assert response.status == 400
        assert response.json() == {"code": 5, "message": "Unsupported protocol version"}
    assert server.session_count == 0


@pytest.mark.parametrize("version", ["", "2", "5", "four"])
def test_with_the_option_only_eio_3_and_4_are_served(eio_server, version):
    server = eio_server(allow_eio3=True)
    with server.http() as http:
        response = http.get(eio_target(server.path, EIO=version))
    assert response.status == 400
    assert response.json()["code"] == 5


def test_the_handshake_is_a_length_prefixed_open_packet(eio_server):
    server = eio_server(allow_eio3=True, ping_interval=0.3, ping_timeout=0.25)
    client, response, data = v3_polling(server)
    assert response.header("content-type") == "text/plain; charset=UTF-8"
    text = response.body.decode()
    length, _, packet = text.partition(":")
    assert int(length) == len(packet) and packet.startswith("0{")
    assert data["upgrades"] == ["websocket"]
    assert (data["pingInterval"], data["pingTimeout"]) == (300, 250)
    assert server.handler.socket(client.sid).protocol == 3
    v3_close(client)


def test_text_messages_both_ways_on_polling(eio_server):
    server = eio_server(allow_eio3=True)
    client, _, _ = v3_polling(server)
    v3_post(client, Packet(M, "héllo 😀"), Packet(M, "two"))
    assert v3_get(client) == [Packet(M, "héllo 😀"), Packet(M, "two")]
    v3_close(client)


def test_binary_both_ways_on_polling_as_a_binary_payload(eio_server):
    server = eio_server(allow_eio3=True)
    client, _, _ = v3_polling(server)
    v3_post(client, Packet(M, "text"), Packet(M, b"\x00\xff\x01"), binary=True)
    response = client.get_response()
    assert response.header("content-type") == v3.BINARY_CONTENT_TYPE
    assert response.body == v3.encode_binary_payload(
        [Packet(M, "text"), Packet(M, b"\x00\xff\x01")]
    )
    v3_close(client)


def test_binary_on_polling_as_base64_for_a_b64_client(eio_server):
    server = eio_server(allow_eio3=True)
    client, _, _ = v3_polling(server, b64="1")
    v3_post(client, Packet(M, b"\x01\x02\x03"))
    response = client.get_response()
    assert response.header("content-type") == "text/plain; charset=UTF-8"
    assert response.body == b"6:b4AQID"
    v3_close(client)


def test_the_client_pings_and_the_server_answers_with_a_pong(eio_server):
    server = eio_server(allow_eio3=True, ping_interval=0.3, ping_timeout=0.3)
    client, _, _ = v3_polling(server)
    started = time.monotonic()
    heartbeats: list[float] = []
    server.handler.socket(client.sid).on("heartbeat", lambda: heartbeats.append(1))
    for _ in range(4):  # 4 intervals: past interval + timeout, kept up by the pings
        gevent.sleep(0.3)  # the client's ping interval, not a synchronisation
        v3_post(client, Packet(PacketType.PING))
        assert v3_get(client) == [Packet(PacketType.PONG)]
    assert time.monotonic() - started > 0.6
    assert len(heartbeats) == 4
    assert server.session_count == 1
    v3_close(client)


def test_a_silent_client_is_dropped_after_interval_plus_timeout(eio_server):
    server = eio_server(allow_eio3=True, ping_interval=0.3, ping_timeout=0.2)
    started = time.monotonic()
    client, _, _ = v3_polling(server)
    # The server never pings a v3 client: its GETs come back with a NOOP at most...
    wait_until(lambda: client.sid in server.handler.closed, 5, "the ping timeout")
    assert time.monotonic() - started >= 0.5
    assert server.handler.closed[client.sid] is DisconnectReason.PING_TIMEOUT
    client.drop()


def test_a_pong_from_a_v3_client_is_the_wrong_direction(eio_server):
    server = eio_server(allow_eio3=True)
    client, _, _ = v3_polling(server)
    v3_post(client, Packet(PacketType.PONG))
    wait_until(lambda: client.sid in server.handler.closed, 5, "the close")
    assert server.handler.closed[client.sid] is DisconnectReason.TRANSPORT_ERROR
    client.drop()


def test_a_malformed_v3_payload_is_a_parse_error(eio_server):
    server = eio_server(allow_eio3=True)
    client, _, _ = v3_polling(server)
    assert client.post_raw(b"5:4ab").status == 400
    assert server.handler.closed[client.sid] is DisconnectReason.PARSE_ERROR
    client.drop()


def open_v3_websocket(server, **query: str):
    ws = server.websocket(eio_target(server.path, "websocket", EIO="3", **query))
    first = ws.recv()
    assert isinstance(first, str) and first.startswith("0{")
    return ws, orjson.loads(first[1:])


@pytest.mark.parametrize("b64", [False, True])
def test_websocket_binary_messages_carry_their_type_byte(eio_server, b64):
    server = eio_server(allow_eio3=True)
    ws, data = open_v3_websocket(server, **({"b64": "1"} if b64 else {}))
    assert data["upgrades"] == []
    ws.send_binary(b"\x04\x00\xff")
    assert ws.recv() == ("b4AP8=" if b64 else b"\x04\x00\xff")
    ws.send_text("b4AQID")
    assert ws.recv() == ("b4AQID" if b64 else b"\x04\x01\x02\x03")
    ws.send_text("4text")
    assert ws.recv() == "4text"
    ws.send_text("2")
    assert ws.recv() == "3"
    assert server.handler.messages_of(data["sid"]) == [b"\x00\xff", b"\x01\x02\x03", "text"]
    ws.close()


def test_a_binary_websocket_message_that_is_no_message_closes(eio_server):
    server = eio_server(allow_eio3=True)
    ws, data = open_v3_websocket(server)
    ws.send_binary(b"\x02probe")
    wait_until(lambda: data["sid"] in server.handler.closed, 5, "the close")
    assert server.handler.closed[data["sid"]] is DisconnectReason.TRANSPORT_ERROR
    ws.abort()


def test_upgrade_to_websocket_keeps_the_v3_forms(eio_server):
    server = eio_server(allow_eio3=True)
    client, _, _ = v3_polling(server)
    ws = server.websocket(eio_target(server.path, "websocket", client.sid, EIO="3"))
    ws.send_text("2probe")
    assert ws.recv() == "3probe"
    ws.send_text("5")
    wait_until(lambda: server.handler.socket(client.sid).transport.value == "websocket", 5, "up")
    ws.send_binary(b"\x04\xca\xfe")
    assert ws.recv() == b"\x04\xca\xfe"
    ws.send_text("2")
    assert ws.recv() == "3"
    ws.close()
    client.drop()


def test_an_upgrade_with_b64_in_its_query_gets_binary_as_base64(eio_server):
    """The upgrade request's own query says whether its WebSocket takes binary."""
    server = eio_server(allow_eio3=True)
    client, _, _ = v3_polling(server)
    ws = server.websocket(eio_target(server.path, "websocket", client.sid, EIO="3", b64="1"))
    ws.send_text("2probe")
    assert ws.recv() == "3probe"
    ws.send_text("5")
    wait_until(lambda: server.handler.socket(client.sid).transport.value == "websocket", 5, "up")
    ws.send_binary(b"\x04\xca\xfe")
    assert ws.recv() == "b4yv4="
    ws.close()
    client.drop()
