"""Emitting from real OS threads in the (monkey-patched) test process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gevent import monkey
from gevent.event import Event

import geventsio
from geventsio.testing import InMemoryHost, Packet, PacketType

#: The real ``_thread`` function: threads it starts are not greenlets.
start_os_thread: Callable[..., Any] = monkey.get_original("_thread", "start_new_thread")


def emit_from_os_threads(
    server: geventsio.Server, emit: Callable[..., None], threads: int, each: int
) -> list[tuple[int, int]]:
    """Connect an in-memory client to ``server``, then call ``emit("n", thread, i)``
    ``each`` times from each of ``threads`` OS threads; returns what the client received,
    as ``(thread, i)``, in arrival order (waits at most 30 s for all of it)."""
    received: list[tuple[int, int]] = []
    done = Event()

    def on_packet(packet: Packet) -> None:
        if packet.type is PacketType.EVENT and packet.data[0] == "n":
            received.append((packet.data[1], packet.data[2]))
            if len(received) == threads * each:
                done.set()

    session = InMemoryHost(server).open({"QUERY_STRING": "EIO=4"}, on_packet)
    session.send(Packet(PacketType.CONNECT, "/"))
    session.settle(10)

    def work(thread: int) -> None:
        for i in range(each):
            emit("n", thread, i)

    for thread in range(threads):
        start_os_thread(work, (thread,))
    assert done.wait(30), f"{len(received)} of {threads * each} emits arrived"
    return received
