"""The engine's Node-style hooks: connection_error, initial_headers/headers, generate_id,
and the session events (socket.conn in Socket.IO)."""

from __future__ import annotations

import itertools
import logging

import pytest

from geventsio.engine.observer import EngineError
from geventsio.protocol import websocket_handshake as handshake
from geventsio.protocol.engineio import Packet, PacketType
from tests.support import HandshakeRefused, eio_target, open_websocket, upgrade, wait_until


def refusals(server) -> list[EngineError]:
    errors: list[EngineError] = []
    server.engine.on("connection_error", errors.append)
    return errors


@pytest.mark.parametrize(
    ("target", "method", "code", "context"),
    [
        ("/socket.io/?EIO=4&transport=carrier-pigeon", "GET", 0, {"transport": "carrier-pigeon"}),
        ("/socket.io/?EIO=4&transport=polling&sid=nope", "GET", 1, {"sid": "nope"}),
        ("/socket.io/?EIO=4&transport=polling", "POST", 2, {"method": "POST"}),
        ("/socket.io/?EIO=3&transport=polling", "GET", 5, {"protocol": "3"}),
    ],
)
def test_connection_error_carries_the_request_code_message_and_context(
    eio_server, target, method, code, context
):
    server = eio_server()
    errors = refusals(server)
    response = server.http().request(method, target)
    assert response.json()["code"] == code
    [error] = errors
    assert (error.code, error.message, dict(error.context)) == (
        code,
        response.json()["message"],
        context,
    )
    assert error.environ["REQUEST_METHOD"] == method
    assert error.environ["PATH_INFO"] == "/socket.io/"


def test_connection_error_for_a_request_allow_request_refuses(eio_server):
    server = eio_server(allow_request=lambda environ: False)
    errors = refusals(server)
    response = server.http().get(eio_target(server.path))
    assert response.status == 403
    [error] = errors
    assert error.code == 4
    assert error.context == {"message": "allow_request refused the request"}


def test_a_listener_that_raises_is_logged_and_the_others_still_run(eio_server, caplog):
    server = eio_server()

    @server.engine.on("connection_error")
    def broken(error: EngineError) -> None:
        raise RuntimeError("listener bug")

    errors = refusals(server)
    with caplog.at_level(logging.ERROR, "geventsio.engine.events"):
        response = server.http().get("/socket.io/?EIO=4&transport=nope")
    assert response.status == 400
    assert [e.code for e in errors] == [0]
    assert "listener bug" in caplog.text


def test_an_unknown_event_name_is_refused_at_once(eio_server):
    server = eio_server()
    with pytest.raises(ValueError, match="no 'connect' event"):
        server.engine.on("connect", print)


def test_initial_headers_on_the_handshake_and_headers_on_every_answer(eio_server):
    server = eio_server()
    server.engine.on("initial_headers", lambda headers, environ: headers.update({"X-Init": "1"}))
    server.engine.on(
        "headers", lambda headers, environ: headers.update({"X-Method": environ["REQUEST_METHOD"]})
    )
    client = server.polling()
    client.handshake()
    first = client.handshake_response
    assert (first.header("x-init"), first.header("x-method")) == ("1", "GET")

    post = client.post_raw(b"4hello")
    get = client.get_response()
    assert (post.header("x-init"), post.header("x-method")) == (None, "POST")
    assert (get.header("x-init"), get.header("x-method")) == (None, "GET")

    refused = server.http().get("/socket.io/?EIO=4&transport=nope")
    assert refused.status == 400
    assert refused.header("x-method") is None  # errors are written as Node writes them
    client.close()


def _websocket_head(server, target: str):
    http = server.http()
    key = handshake.new_client_key()
    http.send(handshake.client_handshake_request(http.host_header, target, key, []))
    return http.read_head()


def test_headers_on_the_websocket_handshake_direct_and_upgrade(eio_server):
    server = eio_server()
    server.engine.on("initial_headers", lambda headers, environ: headers.update({"X-Init": "1"}))
    server.engine.on("headers", lambda headers, environ: headers.update({"X-Every": "yes"}))
    direct = _websocket_head(server, eio_target(server.path, "websocket"))
    assert direct.status == 101
    assert (direct.header("x-init"), direct.header("x-every")) == ("1", "yes")

    client = server.polling()
    client.handshake()
    upgrading = _websocket_head(server, eio_target(server.path, "websocket", client.sid))
    assert upgrading.status == 101
    assert (upgrading.header("x-init"), upgrading.header("x-every")) == (None, "yes")


def test_generate_id_names_the_sessions(eio_server):
    numbers = itertools.count(1)
    seen = []

    def generate_id(environ) -> str:
        seen.append(environ["QUERY_STRING"])
        return f"custom-{next(numbers)}"

    server = eio_server(generate_id=generate_id)
    client = server.polling()
    assert client.handshake()["sid"] == "custom-1"
    client.send("over polling")
    ws, opened = open_websocket(server)
    assert opened["sid"] == "custom-2"
    assert all("EIO=4" in query for query in seen)
    ws.close()
    client.close()


@pytest.mark.parametrize("bad", ["raises", "", "taken"])
def test_generate_id_that_fails_refuses_the_handshake(eio_server, bad):
    def generate_id(environ) -> str:
        if bad == "raises":
            raise RuntimeError("no ids left")
        return "" if bad == "" else "taken"

    server = eio_server(generate_id=generate_id)
    errors = refusals(server)
    if bad == "taken":
        first = server.polling()
        first.handshake()
    polling = server.http().get(eio_target(server.path))
    with pytest.raises(HandshakeRefused) as websocket:
        server.websocket(eio_target(server.path, "websocket"))
    for response in (polling, websocket.value.response):
        assert response.status == 400
        assert response.json() == {"code": 3, "message": "Bad request"}
    assert [e.context["name"] for e in errors] == ["ID_GENERATION_ERROR"] * 2
    if bad == "taken":
        first.close()


def test_session_events_packet_create_upgrade_drain_heartbeat_close(eio_server):
    server = eio_server(ping_interval=0.2, ping_timeout=2)
    seen: list[tuple[str, object]] = []

    @server.engine.on("connection")
    def watch(session) -> None:
        for name in ("packet", "packet_create", "upgrade", "heartbeat", "close"):
            session.on(name, lambda *args, name=name: seen.append((name, *args)))
        session.on("drain", lambda: seen.append(("drain",)))

    client = server.polling()
    client.handshake()
    client.send("ping me")
    assert client.get()[0].data == "ping me"
    assert ("packet", Packet(PacketType.MESSAGE, "ping me")) in seen
    assert ("packet_create", Packet(PacketType.MESSAGE, "ping me")) in seen
    assert ("drain",) in seen  # the GET took the buffer

    ws = upgrade(client)
    wait_until(lambda: ("upgrade", "websocket") in seen)
    seen.clear()
    ws.send_text("4over ws")
    assert ws.recv() == "4over ws"
    wait_until(lambda: ("drain",) in seen)
    assert ws.recv() == "2"  # a ping: the client answers, the server hears a heartbeat
    ws.send_text("3")
    wait_until(lambda: ("heartbeat",) in seen)
    assert ("packet", Packet(PacketType.PONG, "")) in seen
    ws.send_text("1")
    wait_until(lambda: any(event[0] == "close" for event in seen))
    assert ("close", "transport close") in seen
