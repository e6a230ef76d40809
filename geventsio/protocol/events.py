"""The event names with a meaning of their own: the lifecycle events of the sockets at
either end (Node's reserved events) and the catch-all handler's name.

Neither side may send a reserved name as an event (socket.io-parser refuses them too);
the server and the client register their lifecycle handlers under these names.
"""

from __future__ import annotations

CONNECT = "connect"
CONNECT_ERROR = "connect_error"
DISCONNECT = "disconnect"
#: The server's hook that runs before a socket leaves its rooms.
DISCONNECTING = "disconnecting"
#: The handler called for events that have no handler of their own.
CATCH_ALL = "*"

#: Event names neither side may send.
RESERVED_EVENTS = frozenset(
    {CONNECT, CONNECT_ERROR, DISCONNECT, DISCONNECTING, "newListener", "removeListener"}
)
