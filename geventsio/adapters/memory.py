"""The in-memory adapter: rooms and broadcasts within one process.

Two maps, kept in step: room → socket ids and socket id → rooms. A broadcast computes
its recipients from them, encodes its packet once, and hands the same encoded packets to
every recipient.

Every socket is in a room of its own (its id), and most sockets are in no other room: a
one-member entry is a 1-tuple, which costs a fifth of a one-element set (about 340 bytes
less per connection); it becomes a set when a second member comes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mypy_extensions import mypyc_attr

from geventsio._types import Room, SocketId
from geventsio.adapters.base import (
    Adapter,
    BroadcastOptions,
    LocalSocket,
    NamespaceView,
)
from geventsio.protocol import socketio
from geventsio.protocol.outgoing import encode_for_engine

#: The members of one entry: a 1-tuple while there is one, a set from two.
Members = tuple[Any] | set[Any]


def _add(table: dict[Any, Members], key: Any, member: Any) -> None:
    """Add ``member`` to ``table[key]`` (created when missing)."""
    members = table.get(key)
    if members is None:
        table[key] = (member,)
    elif isinstance(members, tuple):
        if members[0] != member:
            table[key] = {members[0], member}
    else:
        members.add(member)


def _discard(table: dict[Any, Members], key: Any, member: Any) -> None:
    """Remove ``member`` from ``table[key]``; the entry goes once it is empty."""
    members = table.get(key)
    if members is None:
        return
    if isinstance(members, tuple):
        if members[0] == member:
            del table[key]
        return
    members.discard(member)
    if not members:
        del table[key]


# Applications and other adapters subclass it (a compiled build allows that only so).
@mypyc_attr(allow_interpreted_subclasses=True)
class InMemoryAdapter(Adapter):
    """Rooms and broadcasting for the sockets of this process."""

    def __init__(self, namespace: NamespaceView) -> None:
        super().__init__(namespace)
        self._rooms: dict[Room, Members] = {}
        self._socket_rooms: dict[SocketId, Members] = {}

    # -- rooms ------------------------------------------------------------------------

    def add_all(self, socket_id: SocketId, rooms: Iterable[Room]) -> None:
        for room in rooms:
            _add(self._socket_rooms, socket_id, room)
            _add(self._rooms, room, socket_id)

    def delete(self, socket_id: SocketId, room: Room) -> None:
        _discard(self._socket_rooms, socket_id, room)
        _discard(self._rooms, room, socket_id)

    def delete_all(self, socket_id: SocketId) -> None:
        for room in self._socket_rooms.pop(socket_id, ()):
            _discard(self._rooms, room, socket_id)

    def socket_rooms(self, socket_id: SocketId) -> frozenset[Room]:
        return frozenset(self._socket_rooms.get(socket_id, ()))

    def rooms(self) -> frozenset[Room]:
        return frozenset(self._rooms)

    def room_members(self, room: Room) -> frozenset[SocketId]:
        """The local socket ids in a room."""
        return frozenset(self._rooms.get(room, ()))

    # -- selection --------------------------------------------------------------------

    def select(self, options: BroadcastOptions) -> list[LocalSocket]:
        """The local sockets a broadcast with these options reaches, each once."""
        sockets = self.namespace.sockets
        excluded: set[SocketId] = set()
        for room in options.except_rooms:
            excluded.update(self._rooms.get(room, ()))
        if options.rooms:
            ids: set[SocketId] = set()
            for room in options.rooms:
                ids.update(self._rooms.get(room, ()))
            candidates: Iterable[SocketId] = ids
        else:
            candidates = list(sockets)
        selected = []
        for socket_id in candidates:
            if socket_id in excluded:
                continue
            socket = sockets.get(socket_id)
            if socket is not None:
                selected.append(socket)
        return selected

    # -- broadcasting -----------------------------------------------------------------

    def broadcast(self, packet: socketio.Packet, options: BroadcastOptions) -> None:
        recipients = self.select(options)
        if not recipients:
            return
        encoded = encode_for_engine(packet, options.flags.compress, self.namespace.serializer)
        volatile = options.flags.volatile
        for socket in recipients:
            socket.write_outgoing(encoded, volatile, packet)

    def broadcast_with_ack(
        self,
        packet: socketio.Packet,
        options: BroadcastOptions,
        on_client_count: Callable[[int], None],
        on_ack: Callable[[list[Any]], None],
    ) -> int:
        assert packet.id is not None
        recipients = self.select(options)
        encoded = (
            encode_for_engine(packet, options.flags.compress, self.namespace.serializer)
            if recipients
            else []
        )
        for socket in recipients:
            socket.expect_ack(packet.id, on_ack)
            socket.write_outgoing(encoded, options.flags.volatile, packet)
        on_client_count(len(recipients))
        return 1

    # -- utilities --------------------------------------------------------------------

    def fetch_sockets(self, options: BroadcastOptions) -> list[Any]:
        return list(self.select(options))

    def add_sockets(self, options: BroadcastOptions, rooms: Iterable[Room]) -> None:
        rooms = list(rooms)
        for socket in self.select(options):
            socket.join(rooms)

    def del_sockets(self, options: BroadcastOptions, rooms: Iterable[Room]) -> None:
        rooms = list(rooms)
        for socket in self.select(options):
            for room in rooms:
                socket.leave(room)

    def disconnect_sockets(self, options: BroadcastOptions, close: bool) -> None:
        for socket in self.select(options):
            socket.disconnect(close)
