"""Connection state recovery with the real socket.io-client 4.8, in memory.

The client reaches the server through a TCP proxy that the test cuts: the transport is
lost, the server keeps running and broadcasting. ``tests/js/recovery_client.mjs``
reconnects by itself and reports what it saw; it answers each ``tick`` with ``seen``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

import geventsio
from tests.server.sio_support import SioApp, SioServerFactory, Step
from tests.support import wait_until
from tests.support.node import node_result, start_node
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.e2e


@pytest.fixture
def sio_server(serve_app) -> SioServerFactory:
    return SioServerFactory(serve_app)


@dataclass
class Seen:
    """What the server saw of its clients."""

    sockets: list[geventsio.Socket] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    middleware_runs: int = 0


def recovering_app(sio_server: SioServerFactory, **recovery: Any) -> tuple[SioApp, Seen]:
    """A server with recovery on; a new socket joins "news" and gets data ``{"name"}``."""
    app = sio_server(connection_state_recovery=recovery or True)
    seen = Seen()

    @app.sio.use
    def count(socket: geventsio.Socket, auth: Any) -> None:
        seen.middleware_runs += 1

    @app.sio.on("connect")
    def connect(socket: geventsio.Socket) -> None:
        seen.sockets.append(socket)
        if not socket.recovered:
            socket.join("news")
            socket.data["name"] = "ada"

    @app.sio.on("seen")
    def on_seen(socket: geventsio.Socket, n: int) -> None:
        seen.ticks.append(n)

    @app.sio.on("disconnect")
    def disconnect(socket: geventsio.Socket, reason: str) -> None:
        seen.reasons.append(str(reason))

    return app, seen


def start_client(
    proxies: list[CuttableProxy], app: SioApp, **opts: Any
) -> tuple[Any, CuttableProxy]:
    proxy = CuttableProxy((app.live.host, app.live.port))
    proxies.append(proxy)
    client = start_node(
        "recovery_client.mjs", proxy.url, json.dumps({"transports": ["websocket"], **opts})
    )
    return client, proxy


def connected_and_ticked(app: SioApp, seen: Seen) -> geventsio.Socket:
    """Wait for the first connection, broadcast tick 0 and wait until it arrived (from
    then on the client holds an offset)."""
    wait_until(lambda: seen.sockets, 10, "the client connects")
    app.sio.to("news").emit("tick", 0)
    wait_until(lambda: 0 in seen.ticks, 5, "tick 0 arrives")
    return seen.sockets[0]


def cut(proxy: CuttableProxy, seen: Seen) -> None:
    proxy.cut()
    wait_until(lambda: seen.reasons, 5, "the server sees the transport close")
    assert seen.reasons == ["transport close"]


def ticks_of(report: dict[str, Any]) -> list[int]:
    return [event[1] for event in report["events"] if event[0] == "tick"]


def test_a_cut_transport_recovers_id_rooms_data_and_missed_packets_once_in_order(
    sio_server, proxies
):
    app, seen = recovering_app(sio_server)
    client, proxy = start_client(proxies, app)
    first = connected_and_ticked(app, seen)
    for n in range(1, 4):  # in flight when the transport goes
        app.sio.to("news").emit("tick", n)
    cut(proxy, seen)
    for n in range(4, 7):
        app.sio.to("news").emit("tick", n)
    app.sio.to("elsewhere").emit("tick", -1)  # never this client's
    app.sio.volatile.emit("tick", -2)  # volatile: not kept
    proxy.resume()

    wait_until(lambda: len(seen.sockets) == 2, 10, "the client comes back")
    again = seen.sockets[1]
    assert again.recovered
    assert again.id == first.id
    assert again.rooms == {first.id, "news"}
    assert again.data == {"name": "ada"}
    again.emit("tick", 7)  # a direct emit is kept and numbered too
    app.sio.emit("end")
    report = node_result(client, 20)

    assert report["ok"], report
    assert ticks_of(report) == list(range(8))
    assert report["connects"] == [
        {"id": first.id, "recovered": False},
        {"id": first.id, "recovered": True},
    ]
    offsets = [event[-1] for event in report["events"]]
    assert all(isinstance(offset, str) and len(offset) >= 16 for offset in offsets)
    assert len(set(offsets)) == len(offsets)
    assert seen.middleware_runs == 1  # skip_middlewares (default True)


def test_recovery_is_refused_after_max_disconnection_duration(sio_server, proxies):
    app, seen = recovering_app(sio_server, max_disconnection_duration=0.4)
    client, proxy = start_client(proxies, app)
    first = connected_and_ticked(app, seen)
    cut(proxy, seen)
    log = app.sio.of("/").adapter.log
    wait_until(
        lambda: log.session_count == 0 and len(log) == 0, 5, "the window passes, all forgotten"
    )
    proxy.resume()

    wait_until(lambda: len(seen.sockets) == 2, 10, "the client comes back")
    again = seen.sockets[1]
    assert not again.recovered
    assert again.id != first.id
    app.sio.emit("end")
    report = node_result(client, 20)
    assert [c["recovered"] for c in report["connects"]] == [False, False]
    assert seen.middleware_runs == 2


@pytest.mark.parametrize("skip", [True, False])
def test_skip_middlewares_is_respected(sio_server, proxies, skip):
    app, seen = recovering_app(sio_server, skip_middlewares=skip)
    client, proxy = start_client(proxies, app)
    connected_and_ticked(app, seen)
    cut(proxy, seen)
    proxy.resume()
    wait_until(lambda: len(seen.sockets) == 2, 10, "the client comes back")
    assert seen.sockets[1].recovered
    app.sio.emit("end")
    assert node_result(client, 20)["ok"]
    assert seen.middleware_runs == (1 if skip else 2)


def test_a_forged_pid_or_offset_gets_a_fresh_session(sio_server, proxies):
    app, seen = recovering_app(sio_server)
    client, proxy = start_client(proxies, app)
    victim = connected_and_ticked(app, seen)
    app.sio.to("news").emit("secret", "for the victim")
    cut(proxy, seen)
    log = app.sio.of("/").adapter.log
    offset = log._packets[0].offset  # a real offset, older than the secret
    pid = victim._pid
    assert pid is not None

    report = app.plan(
        Step.connect("guess", auth={"pid": "A" * 20, "offset": offset}),
        Step.connect("bad-offset", auth={"pid": pid, "offset": "B" * 20}),
        Step.connect("late", auth={"pid": pid, "offset": offset}),
        Step.connect("odd", auth={"pid": 7, "offset": ["x"]}),
    )
    for name in ("guess", "bad-offset", "late", "odd"):
        client_report = report["clients"][name]
        assert client_report["ids"] and victim.id not in client_report["ids"], name
        assert not any(e[0] == "secret" for e in client_report["events"]), name
    assert not any(s.recovered for s in seen.sockets)
    # The victim's session was consumed by the forged attempt: it starts afresh too.
    proxy.resume()
    wait_until(lambda: len(seen.sockets) == 6, 10, "the victim comes back")
    assert not seen.sockets[-1].recovered
    app.sio.emit("end")
    assert node_result(client, 20)["ok"]


def test_the_python_client_recovers_too(sio_server, proxies):
    app, seen = recovering_app(sio_server)
    proxy = CuttableProxy((app.live.host, app.live.port))
    proxies.append(proxy)
    client = geventsio.Client(
        reconnection_delay=0.05, reconnection_delay_max=0.2, randomization_factor=0
    )
    ticks: list[list[Any]] = []

    @client.on("tick")
    def tick(n: int, *rest: Any) -> None:
        ticks.append([n, *rest])
        client.emit("seen", n)

    try:
        client.connect(proxy.url, transports=["websocket"], wait_timeout=10)
        first = connected_and_ticked(app, seen)
        assert not client.recovered()
        cut(proxy, seen)
        for n in range(1, 4):
            app.sio.to("news").emit("tick", n)
        proxy.resume()
        wait_until(lambda: len(seen.sockets) == 2, 10, "the client comes back")
        wait_until(lambda: 3 in seen.ticks, 5, "the missed ticks arrive")
        assert seen.sockets[1].recovered and seen.sockets[1].id == first.id
        assert client.recovered() and client.sid() == first.id
        assert [t[0] for t in ticks] == [0, 1, 2, 3]
        assert all(isinstance(t[-1], str) for t in ticks)  # the offsets, as in JS
    finally:
        client.disconnect()
