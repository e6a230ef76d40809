"""Typed identifiers shared across layers.

Engine.IO session ids and Socket.IO socket ids are both strings on the wire, but they
name different things; ``NewType`` keeps them apart in signatures.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

#: The id of one Engine.IO session (one physical connection, any transport).
EngineSid = NewType("EngineSid", str)

#: The id of one Socket.IO socket (one namespace on one Engine.IO session).
SocketId = NewType("SocketId", str)

#: A room name. Every socket is also in the room named after its own id.
Room = NewType("Room", str)


class DisconnectReason(StrEnum):
    """Why a connection or a namespace socket ended, with the Node reference's strings."""

    #: The client disconnected the namespace (``socket.disconnect()`` in the client).
    CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"
    #: The server disconnected the namespace (``socket.disconnect()`` on the server).
    SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"
    #: The client closed the connection (or the TCP connection was lost).
    TRANSPORT_CLOSE = "transport close"
    #: The connection failed (an I/O error, a slow consumer over its buffer).
    TRANSPORT_ERROR = "transport error"
    #: The client did not answer a ping in time.
    PING_TIMEOUT = "ping timeout"
    #: The server is stopping.
    SERVER_SHUTTING_DOWN = "server shutting down"
    #: The client sent something the protocol does not allow.
    PARSE_ERROR = "parse error"
    #: The server closed the whole connection (``socket.disconnect(close=True)``).
    FORCED_CLOSE = "forced close"
    #: The client never joined a namespace within the connect timeout.
    FORCED_SERVER_CLOSE = "forced server close"
