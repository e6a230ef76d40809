"""TCP settings for client connections."""

from __future__ import annotations

import socket
from typing import Any


def set_nodelay(sock: Any) -> None:
    """Switch Nagle's algorithm off on a TCP socket (other sockets are left alone).

    Without it a reply written in two pieces (HTTP headers then body, a frame header then
    its payload) waits ~40 ms for the peer's delayed ACK.
    """
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass
