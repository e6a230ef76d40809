"""Back-pressure: a client that sends faster than its handlers run is read no further once
``max_queued_events`` of its packets wait, and nothing it sent is lost or reordered.

The handlers here wait on a gate the test opens; every wait is bounded, so a failing
test ends with an assertion, not a hang.
"""

from __future__ import annotations

import logging
import socket as stdlib_socket
import time
from typing import Any

import gevent
import orjson
import pytest
from gevent.event import Event

import geventsio
from geventsio import AckTimeout
from geventsio.server import connection as connection_module
from geventsio.server.connection import Connection
from tests.build import replaces_a_method_of
from tests.server.sio_support import RawSio, SioApp, record
from tests.support import elapsed, wait_until

# Watches the queue by replacing Connection.run_soon on one connection.
WATCHES_RUN_SOON = replaces_a_method_of(connection_module)

BOUND = 10
GATE_TIMEOUT = 10.0


class Worker:
    """The ``work`` handler: holds every event while its gate is closed, then records the
    event's number; also records the queue length at each ``run_soon`` of the watched
    connections (the exact peak, since only ``run_soon`` adds to the queue)."""

    def __init__(self, app: SioApp) -> None:
        self.gate = Event()
        #: Events the handler may take while the gate is closed (see :meth:`allow`).
        self.allowed = 0
        self._allowance = Event()
        self.done: list[int] = []
        self.peaks: list[int] = []
        app.sio.on("work", self.work)
        app.sio.on("echo", lambda socket, *args: args)

    def allow(self, count: int) -> None:
        """Let ``count`` more events through while the gate stays closed."""
        self.allowed += count
        self._allowance.set()

    def work(self, socket: geventsio.Socket, number: int, padding: str = "") -> None:
        while not self.gate.is_set() and self.allowed == 0:
            self._allowance.clear()
            if not gevent.wait([self.gate, self._allowance], timeout=GATE_TIMEOUT, count=1):
                break
        if not self.gate.is_set() and self.allowed:
            self.allowed -= 1
        self.done.append(number)
        gevent.sleep(0)  # let the reader refill the queue between events

    def watch(self, monkeypatch: pytest.MonkeyPatch, connection: Connection) -> Connection:
        """Record the queue length after each ``run_soon`` of ``connection``."""
        run_soon = connection.run_soon

        def recording_run_soon(function: Any, *args: Any) -> None:
            run_soon(function, *args)
            self.peaks.append(connection.queued)

        monkeypatch.setattr(connection, "run_soon", recording_run_soon)
        return connection

    def wait_done(self, count: int) -> None:
        wait_until(lambda: len(self.done) >= count, 10, f"{count} events handled")


def ack_of(raw: RawSio, ack_id: int) -> object:
    """Read until the ACK ``ack_id`` arrives; return its arguments."""
    prefix = f"3{ack_id}"
    while True:
        message = raw.recv()
        if isinstance(message, str) and message.startswith(prefix + "["):
            return orjson.loads(message[len(prefix) :])


def assert_prompt_echo(app: SioApp) -> None:
    """Another client of the same server is answered at once."""
    other = app.raw()
    other.connect()
    started = time.monotonic()
    other.emit("echo", "prompt", ack_id=1)
    assert ack_of(other, 1) == ["prompt"]
    assert elapsed(started) < 1.0
    other.ws.close()


def paused(connection: Connection) -> Connection:
    """Wait until the reader is paused with a full queue (the running event aside: the
    worker may have taken the first one before or after the queue filled)."""
    wait_until(lambda: connection.paused, 5, "the connection's reader to pause")
    assert BOUND - 1 <= connection.queued <= BOUND
    return connection


def test_the_option_is_a_positive_count_and_defaults_to_1000() -> None:
    assert geventsio.Server().max_queued_events == 1000
    for wrong in (0, -1):
        with pytest.raises(ValueError, match="max_queued_events"):
            geventsio.Server(max_queued_events=wrong)


@WATCHES_RUN_SOON
def test_a_websocket_flood_stops_being_read_and_is_handled_in_order(
    sio_server, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG, logger="geventsio.server.connection")
    app = sio_server(max_queued_events=BOUND)
    worker = Worker(app)
    # Small socket buffers (accepted sockets inherit the listener's): TCP holds the
    # sender after ~100 kB, far less than the flood.
    listener = app.live.wsgi_server.socket
    listener.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, 16384)
    raw = app.raw()
    raw.connect()
    raw.ws.http.sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, 16384)
    connection = worker.watch(monkeypatch, app.sio.connections[raw.engine_sid])
    count, padding = 500, "x" * 4000  # 2 MB

    def flood() -> None:
        for number in range(count):
            raw.emit("work", number, padding)

    sender = gevent.spawn(flood)
    paused(connection)
    queued = connection.queued
    sender.join(0.3)  # not synchronisation: the sender must stay stuck, whatever the wait
    assert not sender.dead, "the whole flood was read while the handler was blocked"
    assert connection.queued == queued
    assert_prompt_echo(app)

    # Enough events handled for the reader to resume at half, not for it to stay
    # resumed: it refills the queue and pauses again.
    worker.allow(BOUND // 2 + 1)
    wait_until(lambda: connection.pauses >= 2 and connection.paused, 10, "a second pause")
    worker.gate.set()
    sender.join(GATE_TIMEOUT)
    assert sender.successful()
    worker.wait_done(count)
    assert worker.done == list(range(count))
    assert max(worker.peaks) == BOUND
    assert not connection.paused
    assert connection.pauses > 1  # the reader resumed at half and paused again
    logged = [r for r in caplog.records if "reading paused" in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.INFO] + [logging.DEBUG] * (connection.pauses - 1)


@WATCHES_RUN_SOON
def test_a_polling_post_is_answered_once_its_packets_are_queued(sio_server, monkeypatch):
    app = sio_server(max_queued_events=BOUND)
    worker = Worker(app)
    polling = app.live.polling()
    polling.handshake()
    polling.send("0")
    polling.get()  # the CONNECT acknowledgement
    connection = worker.watch(monkeypatch, app.sio.connections[polling.sid])
    count = 100

    post = gevent.spawn(polling.send, *[f'2["work",{n}]' for n in range(count)])
    paused(connection)
    assert not post.dead  # the POST is held: the client sends nothing more meanwhile
    assert_prompt_echo(app)

    worker.gate.set()
    post.join(GATE_TIMEOUT)
    assert post.successful()  # 200 ok, once the last packet was queued
    worker.wait_done(count)
    assert worker.done == list(range(count))
    assert max(worker.peaks) == BOUND
    assert connection.pauses > 1


def test_a_paused_connection_the_client_closes_ends_cleanly(sio_server):
    app = sio_server(max_queued_events=BOUND)
    worker = Worker(app)
    life = record(app.sio.of("/"))
    raw = app.raw()
    socket_id = raw.connect()
    connection = app.sio.connections[raw.engine_sid]
    for number in range(3 * BOUND):
        raw.emit("work", number)
    paused(connection)

    raw.ws.abort()
    worker.gate.set()
    assert life.reason_of(socket_id) == "transport close"
    app.live.wait_sessions(0)
    assert not connection.paused
    assert worker.done == list(range(len(worker.done)))  # what was read, in order


def test_closing_a_paused_connection_releases_its_reader_at_once(sio_server):
    app = sio_server(max_queued_events=BOUND)
    worker = Worker(app)
    life = record(app.sio.of("/"))
    raw = app.raw()
    socket_id = raw.connect()
    connection = app.sio.connections[raw.engine_sid]
    for number in range(3 * BOUND):
        raw.emit("work", number)
    paused(connection)

    connection.close()
    # the handler is still blocked: only the close can have released the reader
    wait_until(lambda: not connection.paused, 5, "the reader to be released")
    assert raw.closed()
    app.live.wait_sessions(0)
    worker.gate.set()
    assert life.reason_of(socket_id) == "forced close"
    # what was queued (and the event running) still ran, in order, before the disconnect
    assert worker.done == list(range(len(worker.done)))
    assert BOUND <= len(worker.done) <= BOUND + 1


def call_scenario(
    app: SioApp, worker: Worker, flood: int, timeout: float
) -> tuple[RawSio, Connection, list[object]]:
    """A client sends ``ask`` (whose handler waits for the gate, then calls the client
    back) and ``flood`` work events; returns once the reader is paused."""
    answers: list[object] = []

    @app.sio.on("ask")
    def ask(socket: geventsio.Socket) -> None:
        worker.gate.wait(GATE_TIMEOUT)
        try:
            answers.append(socket.call("question", timeout=timeout))
        except AckTimeout:
            answers.append("timed out")

    raw = app.raw()
    raw.connect()
    connection = app.sio.connections[raw.engine_sid]
    raw.emit("ask")
    for number in range(flood):
        raw.emit("work", number)
    paused(connection)
    return raw, connection, answers


def answer_question(raw: RawSio, answer: str) -> None:
    """Read the server's ``question`` event and acknowledge it."""
    message = raw.recv()
    assert isinstance(message, str) and message.endswith('["question"]'), message
    ack_id = message[1 : message.index("[")]
    raw.send(f"3{ack_id}" + orjson.dumps([answer]).decode())


def test_a_handler_in_call_gets_its_answer_through_a_paused_reader(sio_server):
    app = sio_server(max_queued_events=BOUND)
    worker = Worker(app)
    flood = BOUND + BOUND // 2  # the answer comes after these: the reader must read on
    raw, _, answers = call_scenario(app, worker, flood, timeout=5.0)

    started = time.monotonic()
    worker.gate.set()
    answer_question(raw, "yes")
    worker.wait_done(flood)
    assert answers == ["yes"]
    assert elapsed(started) < 2.0  # not the call's timeout
    assert worker.done == list(range(flood))


@WATCHES_RUN_SOON
def test_a_client_that_floods_past_twice_the_bound_before_answering_times_call_out(
    sio_server, monkeypatch
):
    app = sio_server(max_queued_events=BOUND)
    worker = Worker(app)
    flood = 3 * BOUND
    raw, connection, answers = call_scenario(app, worker, flood, timeout=0.3)
    worker.watch(monkeypatch, connection)

    worker.gate.set()
    answer_question(raw, "too late")  # behind BOUND unread events: read after the timeout
    worker.wait_done(flood)
    assert answers == ["timed out"]
    assert worker.done == list(range(flood))
    assert max(worker.peaks) == 2 * BOUND  # the bound is raised, never lifted


def test_a_paused_connection_is_pinged_again_not_closed_for_its_unread_pong(sio_server):
    app = sio_server(max_queued_events=BOUND, ping_interval=0.2, ping_timeout=0.2)
    worker = Worker(app)
    life = record(app.sio.of("/"))
    raw = app.raw()
    raw.connect()
    connection = app.sio.connections[raw.engine_sid]
    for number in range(2 * BOUND):
        raw.emit("work", number)
    paused(connection)

    def answer_pings(count: int) -> None:
        """Answer ``count`` pings as a client does (the pongs queue behind the flood
        while the reader is paused)."""
        pings = 0
        while pings < count:
            if raw.ws.recv(2.0) == "2":
                pings += 1
                raw.ws.send_text("3")

    answer_pings(4)  # about ping_timeout apart: a closed session would end the WebSocket
    assert connection.paused
    worker.gate.set()
    worker.wait_done(2 * BOUND)
    answer_pings(4)  # and the heartbeat goes on as usual once reading resumed
    assert worker.done == list(range(2 * BOUND))
    assert life.disconnects == []


def test_async_handlers_are_capped_per_connection_with_the_same_back_pressure(sio_server):
    app = sio_server(async_handlers=True, max_concurrent_handlers=BOUND)
    worker = Worker(app)
    running: list[int] = []
    peak: list[int] = [0]

    def work(socket: geventsio.Socket, number: int) -> None:
        running.append(number)
        peak[0] = max(peak[0], len(running))
        try:
            worker.work(socket, number)
        finally:
            running.remove(number)

    app.sio.on("work", work)
    raw = app.raw()
    raw.connect()
    connection = app.sio.connections[raw.engine_sid]
    count = 20 * BOUND
    for number in range(count):  # small frames: the kernel's buffers take them all
        raw.emit("work", number)

    wait_until(lambda: connection.paused, 5, "the connection's reader to pause")
    assert connection.handlers_running == BOUND
    assert_prompt_echo(app)  # other clients unaffected

    worker.gate.set()
    worker.wait_done(count)
    assert sorted(worker.done) == list(range(count))  # nothing lost (order not kept)
    assert peak[0] == BOUND
    wait_until(lambda: connection.handlers_running == 0, 5, "every handler returned")
    assert not connection.paused and connection.pauses >= 1
    raw.ws.close()
