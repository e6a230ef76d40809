"""What the Socket.IO server tells an observer, on top of the engine's events.

The server holds at most one observer (``Server.observer``, shared with its engine);
:meth:`Server.add_observer <geventsio.Server.add_observer>` combines several. The same
rules hold as for :class:`~geventsio.engine.observer.EngineObserver`: every method runs
where the thing happens and must neither block nor raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geventsio._types import DisconnectReason, Room
from geventsio.engine.observer import ENGINE_HOOKS, EngineObserver, Observers, fan_out

if TYPE_CHECKING:
    from geventsio.server.connection import Connection
    from geventsio.server.socket import Socket


class Observer(EngineObserver):
    """Told of the server's events. Every method does nothing here: override what you need."""

    def socket_connected(self, socket: Socket) -> None:
        """A socket's CONNECT was acknowledged (its rooms were reported just before)."""

    def socket_disconnected(self, socket: Socket, reason: DisconnectReason) -> None:
        """A connected socket left (its rooms were reported left just before)."""

    def room_joined(self, socket: Socket, room: Room) -> None:
        """A connected socket joined a room it was not in."""

    def room_left(self, socket: Socket, room: Room) -> None:
        """A connected socket left a room it was in."""

    def event_handled(self, socket: Socket, event: str, seconds: float) -> None:
        """An incoming event went through its handler (or found none) in ``seconds``."""

    def reading_paused(self, connection: Connection) -> None:
        """A connection's reader was paused: its handlers are behind (back-pressure)."""

    def server_closing(self) -> None:
        """The server is shutting down (:meth:`~geventsio.Server.shutdown`)."""


SERVER_HOOKS = (
    *ENGINE_HOOKS,
    "socket_connected",
    "socket_disconnected",
    "room_joined",
    "room_left",
    "event_handled",
    "reading_paused",
    "server_closing",
)


@fan_out(SERVER_HOOKS)
class ServerObservers(Observers, Observer):
    """Several observers, each told everything in turn."""
