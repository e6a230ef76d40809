#!/usr/bin/env python3
"""The CPU the Prometheus metrics add to one echo, measured inside one process.

    python bench/metrics_inprocess.py            # ~30 s: 9 alternating rounds of 30,000 echoes
    python bench/metrics_inprocess.py --rounds 3 --echoes 5000   # a quick look

On a machine shared with other work, the load generator's figures (``bench/run.py
--only geventsio,metrics``) move by more than the 3 % this is about. Here no network
and no other process is involved: one Socket.IO connection on a WebSocket stand-in
that hands every message straight to the engine, the server's real decoding, worker,
handler, acknowledgement encoding and sending path, with and without
``WSGIApp(..., metrics_path=...)``. Each round measures both (``time.process_time``
per echo) in alternating order; the least disturbed round of each is compared
(interference only ever adds time). The network and the kernel's part of an echo (the
larger part: ~40 µs per echo against ~9 µs here) are left out, so the share printed is
an upper bound of what the metrics add to a real echo.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gevent

import geventsio
from geventsio._types import EngineSid
from geventsio.engine.dropping import Tier
from geventsio.engine.socket import EngineSocket
from geventsio.engine.websocket import WebSocketConnection
from geventsio.options import Transport
from geventsio.protocol.outgoing import OutgoingPacket

ECHO = '21["echo",{"text":"' + "x" * 80 + '"}]'


class CountingWebSocket(WebSocketConnection):
    """Hands the reader ``echoes`` echo events, then ends; counts what the server sends."""

    def __init__(self) -> None:
        self.sent = 0
        self.echoes = 0
        self.expected = 0

    def receive(self) -> str | bytes | None:
        if self.echoes <= 0:
            while self.sent < self.expected:  # every answer out: then the client leaves
                gevent.sleep(0)
            return None
        self.echoes -= 1
        if self.echoes % 64 == 0:  # let the worker run, as the reader's waits would
            gevent.sleep(0)
        return "4" + ECHO

    def send_packets(self, packets: Sequence[OutgoingPacket], tier: Tier = Tier.KEEP) -> bool:
        for packet in packets:
            packet.ws_frame()  # the encoding a real socket would do
        self.sent += len(packets)
        return True

    def make_room(self, packets: Sequence[OutgoingPacket], tier: Tier) -> bool:
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        pass

    def drain(self, timeout: float) -> None:
        pass

    @property
    def writable(self) -> bool:
        return True


def connected_session(metrics: bool) -> tuple[EngineSocket, CountingWebSocket]:
    sio = geventsio.Server()
    sio.on("echo", lambda socket, data: data)
    geventsio.WSGIApp(sio, metrics_path="/metrics" if metrics else None)
    engine = sio.engine
    session = EngineSocket(EngineSid("bench"), engine.options, {}, sio, engine, Transport.WEBSOCKET)
    websocket = CountingWebSocket()
    session.attach_websocket(websocket)
    engine.sessions[session.sid] = session
    sio.on_engine_connect(session)
    sio.on_engine_message(session, "0")
    while websocket.sent < 1:
        gevent.sleep(0)
    return session, websocket


def echo_cost(metrics: bool, echoes: int) -> float:
    """Microseconds of CPU per echo."""
    session, websocket = connected_session(metrics)
    websocket.echoes = echoes
    websocket.expected = websocket.sent + echoes
    start = time.process_time()
    session.run_websocket()  # reads every echo, waits for every answer, then ends
    spent = time.process_time() - start
    return spent / echoes * 1e6


def observer_work(repeat: int = 15, number: int = 100_000) -> float:
    """Microseconds the metrics observer spends on one echo (its three calls: the event
    in, the handler's duration, the acknowledgement out), in a tight loop: the figure
    least moved by a busy machine."""
    sio = geventsio.Server()
    sio.on("echo", lambda socket, data: data)
    observer = geventsio.WSGIApp(sio, metrics_path="/metrics").metrics.observer
    socket: Any = type("S", (), {"namespace": sio.of("/"), "handles": lambda self, e: False})()
    ack = [OutgoingPacket.message(ECHO.replace("21", "31", 1))]

    def one_echo() -> None:
        observer.message_received(None, ECHO)
        started = perf_counter()
        observer.event_handled(socket, "echo", perf_counter() - started)
        observer.packets_sent(None, ack)

    def nothing() -> None:
        pass

    work = min(timeit.repeat(one_echo, number=number, repeat=repeat))
    empty = min(timeit.repeat(nothing, number=number, repeat=repeat))
    return (work - empty) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--echoes", type=int, default=30_000)
    parser.add_argument(
        "--loop", type=int, default=100_000, help="calls per timing of the observer"
    )
    args = parser.parse_args()
    echo_cost(False, min(2000, args.echoes))  # warm up
    echo_cost(True, min(2000, args.echoes))
    off: list[float] = []
    on: list[float] = []
    for round_number in range(args.rounds):
        order = (False, True) if round_number % 2 == 0 else (True, False)
        for metrics in order:
            (on if metrics else off).append(echo_cost(metrics, args.echoes))
        print(f"round {round_number + 1}: off {off[-1]:.2f} µs/echo, on {on[-1]:.2f} µs/echo")
    ratio = min(on) / min(off)
    work = observer_work(number=args.loop)
    print(
        f"the observer's own work: {work:.2f} µs per echo; against the ~40 µs of server "
        f"CPU a real echo costs (bench/run.py's srv µs/op): {100 * work / 40:.1f}%"
    )
    print(
        f"least disturbed: off {min(off):.2f} µs/echo, on {min(on):.2f} µs/echo: metrics "
        f"add {100 * (ratio - 1):.1f}% of the server's own work per echo; the medians: "
        f"{statistics.median(off):.2f} / {statistics.median(on):.2f} µs"
    )


if __name__ == "__main__":
    main()
