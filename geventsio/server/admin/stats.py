"""The server stats the Admin UI charts: the ``server_stats`` event, every 2 seconds."""

from __future__ import annotations

import os
import socket as stdlib_socket
import time
from typing import TYPE_CHECKING, Any

from geventsio.options import Transport

if TYPE_CHECKING:
    from geventsio.server.server import Server

_STARTED = time.monotonic()


class EventBuffer:
    """Counts by (second, type, sub-type) until the next stats report takes them (the
    UI's "aggregated events": connections, disconnections by reason, packets and bytes
    in and out)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, str, str | None], int] = {}

    def push(self, kind: str, sub_kind: str | None = None, count: int = 1) -> None:
        """Count ``count`` more of ``kind`` in the current second."""
        key = (int(time.time()) * 1000, kind, sub_kind)
        self._counts[key] = self._counts.get(key, 0) + count

    def take(self) -> list[dict[str, Any]]:
        """Every count since the last call, as the UI reads them; the buffer empties."""
        counts, self._counts = self._counts, {}
        values = []
        for (timestamp, kind, sub_kind), count in counts.items():
            value: dict[str, Any] = {"timestamp": timestamp, "type": kind, "count": count}
            if sub_kind is not None:
                value["subType"] = sub_kind
            values.append(value)
        return values


def default_server_id() -> str:
    """The host name and process id: each process of a cluster is a server of its own."""
    return f"{stdlib_socket.gethostname()}#{os.getpid()}"


def server_stats(server: Server, server_id: str, events: EventBuffer) -> dict[str, Any]:
    """The payload of one ``server_stats`` event."""
    sessions = list(server.engine.sessions.values())
    return {
        "serverId": server_id,
        "hostname": stdlib_socket.gethostname(),
        "pid": os.getpid(),
        "uptime": time.monotonic() - _STARTED,
        "clientsCount": len(sessions),
        "pollingClientsCount": sum(1 for s in sessions if s.transport is Transport.POLLING),
        "aggregatedEvents": events.take(),
        "namespaces": [
            {"name": namespace.name, "socketsCount": len(namespace.sockets)}
            for namespace in server.all_namespaces()
        ],
    }
