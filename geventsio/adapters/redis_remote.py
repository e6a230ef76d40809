"""Sockets of other servers in a Redis cluster, as ``fetch_sockets()`` reports them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import gevent
from gevent.event import AsyncResult

from geventsio._types import Room, SocketId
from geventsio.adapters import redis_wire as wire
from geventsio.adapters.base import Adapter, BroadcastFlags, BroadcastOptions
from geventsio.adapters.redis_wire import MalformedMessage
from geventsio.exceptions import AckTimeout, LocalProtocolError
from geventsio.protocol.socketio import Packet, PacketType


class RemoteSocket:
    """A socket of another server, as a cluster adapter's ``fetch_sockets`` reports it.

    Its attributes are a snapshot; its methods act through the adapter (and so through
    Redis) on the real socket.

    :ivar id: the socket id.
    :ivar handshake: the handshake details (a dict: ``headers``, ``query``, ``auth``,
        ``address``, ``time``, ``issued``, ``url``, ``secure``, ``xdomain``).
    :ivar rooms: the rooms it was in.
    :ivar data: its ``socket.data``.
    """

    __slots__ = ("_adapter", "data", "handshake", "id", "rooms")

    def __init__(self, adapter: Adapter, details: Any) -> None:
        if not isinstance(details, dict) or not isinstance(details.get("id"), str):
            raise MalformedMessage("remote socket without an id")
        handshake = details.get("handshake")
        self._adapter = adapter
        self.id = SocketId(details["id"])
        self.handshake: dict[str, Any] = handshake if isinstance(handshake, dict) else {}
        self.rooms = wire.rooms_from_wire(details.get("rooms"))
        self.data: Any = details.get("data")

    def __repr__(self) -> str:
        return f"<RemoteSocket {self.id} {self._adapter.namespace.name}>"

    def _only_me(self, timeout: float | None = None) -> BroadcastOptions:
        return BroadcastOptions(
            rooms=frozenset({Room(self.id)}), flags=BroadcastFlags(timeout=timeout)
        )

    def emit(self, event: str, *args: Any) -> None:
        """Send an event to this socket's client."""
        if not isinstance(event, str):
            raise LocalProtocolError(f"an event name must be a string, not {event!r}")
        packet = Packet(PacketType.EVENT, self._adapter.namespace.name, [event, *args])
        self._adapter.broadcast(packet, self._only_me())

    def call(self, event: str, *args: Any, timeout: float = 5.0) -> Any:
        """Send an event and wait for the client's acknowledgement (its first argument).

        :raises AckTimeout: no acknowledgement within ``timeout`` seconds.
        """
        adapter = self._adapter
        packet = Packet(
            PacketType.EVENT,
            adapter.namespace.name,
            [event, *args],
            adapter.namespace.next_ack_id(),
        )
        result: AsyncResult[Any] = AsyncResult()
        adapter.broadcast_with_ack(
            packet, self._only_me(timeout), lambda count: None, lambda args: result.set(args[0])
        )
        try:
            return result.get(timeout=timeout)
        except gevent.Timeout:
            raise AckTimeout(f"no ack for {event!r} from remote socket {self.id}") from None

    def join(self, rooms: Room | str | Iterable[Room | str]) -> None:
        """Make the socket join one room or several."""
        names = [rooms] if isinstance(rooms, str) else list(rooms)
        self._adapter.add_sockets(self._only_me(), [Room(name) for name in names])

    def leave(self, room: Room | str) -> None:
        """Make the socket leave a room."""
        self._adapter.del_sockets(self._only_me(), [Room(room)])

    def disconnect(self, close: bool = False) -> None:
        """Disconnect the socket (and its whole connection when ``close``)."""
        self._adapter.disconnect_sockets(self._only_me(), close)
