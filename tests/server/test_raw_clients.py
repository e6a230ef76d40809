"""The Socket.IO server against hand-driven clients on real sockets: what no well-behaved
client does (never joining a namespace, never answering pings, vanishing mid-request,
sending garbage or oversized packets), and the exact bytes of the protocol."""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import orjson
import pytest

from geventsio import ConnectionRefused, NotConnected
from geventsio.protocol.engineio import PacketType, decode_payload
from tests.server.sio_support import RawSio, record
from tests.support import ConnectionEnded, build_request, elapsed, messages, wait_until


def placeholder(num: int) -> dict[str, object]:
    return {"_placeholder": True, "num": num}


def nest(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def ack_of(raw: RawSio, ack_id: int) -> object:
    """Read until the ACK ``ack_id`` arrives; return its arguments."""
    prefix = f"3{ack_id}"
    while True:
        message = raw.recv()
        if isinstance(message, str) and message.startswith(prefix + "["):
            return orjson.loads(message[len(prefix) :])


def echo_server(sio_server, **options):
    app = sio_server(**options)

    @app.sio.on("echo")
    def echo(socket, *args):
        return args

    return app


# -- the CONNECT exchange, on the wire -----------------------------------------------------


def test_events_emitted_while_connecting_follow_the_connect_acknowledgement(sio_server):
    app = sio_server()

    @app.sio.on("connect")
    def welcome(socket):
        socket.emit("welcome", "first")
        app.sio.emit("everyone", "second")  # a broadcast reaches the new socket too

    raw = app.raw()
    raw.send("0")
    connect = raw.recv()
    assert isinstance(connect, str) and connect.startswith('0{"sid":')
    assert raw.recv() == '2["welcome","first"]'
    assert raw.recv() == '2["everyone","second"]'


def test_a_refusal_is_a_connect_error_packet_and_the_connection_stays(sio_server):
    app = echo_server(sio_server)

    @app.sio.of("/admin").use
    def refuse(socket, auth):
        raise ConnectionRefused("unauthorised", {"hint": "send a token"})

    raw = app.raw()
    raw.send("0/admin,")
    assert raw.recv() == '4/admin,{"message":"unauthorised","data":{"hint":"send a token"}}'
    raw.connect("/")  # the same connection may still join another namespace
    raw.emit("echo", "still here", ack_id=7)
    assert ack_of(raw, 7) == ["still here"]
    assert not app.sio.of("/admin").sockets


# -- clients that misbehave ----------------------------------------------------------------


def test_a_connection_that_joins_no_namespace_is_closed_after_connect_timeout(sio_server):
    app = echo_server(sio_server, connect_timeout=0.3)
    started = time.monotonic()
    lazy_ws = app.raw()
    lazy_polling = app.live.polling()
    lazy_polling.handshake()
    active = app.raw()
    active.connect()

    assert lazy_ws.closed()
    # on long-polling, the waiting GET is answered with the CLOSE packet
    assert [p.type for p in lazy_polling.get()] == [PacketType.CLOSE]
    assert elapsed(started) >= 0.3
    app.live.wait_sessions(1)
    active.emit("echo", "on time", ack_id=1)
    assert ack_of(active, 1) == ["on time"]


def test_a_client_that_stops_answering_pings_is_disconnected(sio_server):
    app = sio_server(ping_interval=0.2, ping_timeout=0.2)
    life = record(app.sio.of("/"))
    started = time.monotonic()
    raw = app.raw()
    socket_id = raw.connect()

    assert life.reason_of(socket_id) == "ping timeout"
    assert elapsed(started) >= 0.4
    assert raw.closed()
    app.live.wait_sessions(0)


def test_a_polling_client_that_vanishes_during_its_get_is_a_transport_close(sio_server):
    app = sio_server()
    life = record(app.sio.of("/"))
    polling = app.live.polling()
    polling.handshake()
    polling.send("0")
    [connect] = messages(polling.get())
    socket_id = orjson.loads(connect[1:])["sid"]
    session = app.sio.engine.sessions[polling.sid]

    waiting_get = app.live.http()
    waiting_get.send(build_request("GET", polling.target(), waiting_get.host_header))
    wait_until(lambda: session.polling.get_active, 5, "the GET to be waiting")
    waiting_get.close()

    assert life.reason_of(socket_id) == "transport close"
    app.live.wait_sessions(0)


# Each is sent on its own connection, right after joining "/". (One test for them all: a
# WebSocket closed for a parse error keeps a 2 s close timer, see tests/engine.)
GARBAGE: dict[str, list[str | bytes]] = {
    "unknown socket.io type": ["9"],
    "not json": ['2["x"'],
    "event without a name": ["2[]"],
    "connect_error from a client": ['4{"message":"no"}'],
    "attachment with no binary packet": [b"\x00\x01"],
    "text while attachments are awaited": ['51-["x",{"_placeholder":true,"num":0}]', '2["y"]'],
}


def test_garbage_closes_that_connection_with_parse_error_only(sio_server, caplog):
    caplog.set_level(logging.INFO, logger="geventsio")
    app = echo_server(sio_server)
    life = record(app.sio.of("/"))
    bystander = app.raw()
    bystander.connect()
    sent: dict[str, tuple[RawSio, str]] = {}
    for kind, packets in GARBAGE.items():
        raw = app.raw()
        sent[kind] = (raw, raw.connect())
        for packet in packets:
            raw.send(packet)
    engine_level = app.raw()
    sent["engine-level garbage"] = (engine_level, engine_level.connect())
    engine_level.ws.send_text("x-not-an-engine-packet")

    for raw, _ in sent.values():
        assert raw.closed()
    reasons = {kind: life.reason_of(socket_id) for kind, (_, socket_id) in sent.items()}
    assert reasons == dict.fromkeys(sent, "parse error")
    # a misbehaving peer is logged at INFO, never reaches application code
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([r for r in caplog.records if r.name.startswith("geventsio")]) >= len(sent)
    bystander.emit("echo", "fine", ack_id=3)
    assert ack_of(bystander, 3) == ["fine"]
    app.live.wait_sessions(1)


def test_max_attachments_and_max_json_depth_are_enforced(sio_server, caplog):
    caplog.set_level(logging.INFO, logger="geventsio")
    app = echo_server(sio_server, max_attachments=2, max_json_depth=8)
    life = record(app.sio.of("/"))

    @app.sio.on("up")
    def up(socket, *files):
        return [len(f) for f in files]

    within, too_many, too_deep = app.raw(), app.raw(), app.raw()
    within.connect()
    too_many_id, too_deep_id = too_many.connect(), too_deep.connect()

    within.send("52-1" + orjson.dumps(["up", placeholder(0), placeholder(1)]).decode())
    within.send(b"one")
    within.send(b"three")
    assert ack_of(within, 1) == [[3, 5]]
    within.emit("echo", nest(7), ack_id=2)  # the payload array is level 1: 8 in all
    assert ack_of(within, 2) == [nest(7)]

    too_many.send("53-" + orjson.dumps(["up", *map(placeholder, range(3))]).decode())
    too_deep.emit("echo", nest(8), ack_id=1)

    assert too_many.closed() and too_deep.closed()
    assert life.reason_of(too_many_id) == life.reason_of(too_deep_id) == "parse error"
    assert "over 2 attachments" in caplog.text
    assert "deeper than 8 levels" in caplog.text
    within.emit("echo", "after", ack_id=3)
    assert ack_of(within, 3) == ["after"]


def test_a_client_cannot_fire_lifecycle_hooks(sio_server):
    app = echo_server(sio_server)
    life = record(app.sio.of("/"))
    forged = {}
    for event in ('["disconnect","forged reason"]', '["connect",{"token":"forged"}]'):
        raw = app.raw()
        forged[event] = (raw, raw.connect())
        raw.send("2" + event)
        raw.emit("echo", "probe", ack_id=9)

    for event, (raw, socket_id) in forged.items():
        with pytest.raises(ConnectionEnded):
            raw.recv()
        assert life.reason_of(socket_id) == "parse error", event
    assert len(life.connected) == 2


def test_a_gevent_timeout_in_a_handler_is_an_ordinary_handler_error(sio_server, caplog):
    app = echo_server(sio_server, ping_interval=0.3, ping_timeout=0.3)
    reported = []

    @app.sio.on("slow-io")
    def slow_io(socket):
        with gevent.Timeout(0.01):
            gevent.sleep(1)

    @app.sio.on_error
    def on_error(socket, exc):
        reported.append(type(exc).__name__)

    polling = app.live.polling()
    polling.handshake()
    polling.send("0")
    polling.get()
    polling.send('2["slow-io"]', '21["echo","after"]')  # one POST: queued together

    answers: list[str | bytes] = []
    deadline = time.monotonic() + 1.5
    while not any(str(m).startswith("31") for m in answers) and time.monotonic() < deadline:
        packets = polling.get()
        if any(p.type is PacketType.PING for p in packets):
            polling.send(decode_payload(b"3")[0])
        answers += messages(packets)

    assert '31["after"]' in answers
    assert reported == ["Timeout"]
    assert any(r.levelno >= logging.ERROR for r in caplog.records)


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_a_call_waiting_for_a_client_that_leaves_fails_at_once(sio_server, timeout):
    app = sio_server()
    outcome: list[object] = []

    @app.sio.on("ask")
    def ask(socket):
        try:
            outcome.append(socket.call("question", timeout=timeout))
        except NotConnected as exc:
            outcome.append(exc)

    life = record(app.sio)
    raw = app.raw()
    socket_id = raw.connect()
    raw.emit("ask")
    message = raw.recv()
    assert isinstance(message, str) and message.endswith('["question"]'), message
    started = time.monotonic()
    raw.ws.close()  # leaves without answering: nothing can answer the call any more
    assert life.reason_of(socket_id) == "transport close"
    assert elapsed(started) < 5.0  # not the call's timeout (nor forever)
    assert len(outcome) == 1 and isinstance(outcome[0], NotConnected)


def test_a_websocket_is_read_by_a_parked_greenlet_of_the_server(sio_server):
    """A WebSocket's reader runs in one of the server's parked greenlets, as the
    connections' work does (no new greenlet, nor Python stack, per connection): the next
    connection's reader is a greenlet that served the previous connection."""
    app = sio_server()
    readers: list[Any] = []
    work: list[Any] = []
    app.sio.engine.on("connection", lambda session: readers.append(gevent.getcurrent()))
    app.sio.on("connect", lambda socket: work.append(gevent.getcurrent()))
    app.sio.on("disconnect", lambda socket, reason: work.append(gevent.getcurrent()))
    for count in (1, 2):
        raw = app.raw()
        raw.connect()
        raw.ws.close()
        wait_until(lambda count=count: len(work) == 2 * count and not app.sio.connections)
        gevent.sleep(0)  # the disconnect handler's greenlet parks
    assert readers[1] in {readers[0], work[0], work[1]}
