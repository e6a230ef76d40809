"""The adapter interface: who is in which room, and how a broadcast reaches them.

An adapter belongs to one namespace. The in-memory adapter serves one process; a
cluster adapter (Redis) implements the same calls so that they also reach the sockets of
other processes. Sockets are named by :data:`SocketId`; the namespace gives the adapter
its local sockets through :class:`NamespaceView`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from mypy_extensions import mypyc_attr

from geventsio._types import Room, SocketId
from geventsio.protocol import socketio
from geventsio.protocol.outgoing import OutgoingPacket
from geventsio.protocol.serializers import Serializer


@dataclass(frozen=True, slots=True)
class BroadcastFlags:
    """Modifiers of one broadcast.

    :param volatile: drop the packet for a client that cannot take it right now.
    :param compress: False: transports that compress send it as it is (a long-polling
        answer made only of such packets is not compressed).
    :param local: reach this process's sockets only (no other node of a cluster).
    :param timeout: seconds to wait for acknowledgements (broadcasts with acks).
    """

    volatile: bool = False
    compress: bool = True
    local: bool = False
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class BroadcastOptions:
    """Which sockets a broadcast reaches: those in any of ``rooms`` (every socket when
    empty), minus those in any of ``except_rooms``."""

    rooms: frozenset[Room] = frozenset()
    except_rooms: frozenset[Room] = frozenset()
    flags: BroadcastFlags = field(default_factory=BroadcastFlags)


@dataclass(frozen=True, slots=True)
class SessionState:
    """What a disconnected socket leaves behind for its client to recover (connection
    state recovery: see :mod:`geventsio.adapters.recovery`).

    :param sid: the socket id.
    :param pid: the private session id its client presents to recover.
    :param rooms: its rooms (its own id among them).
    :param data: its ``socket.data``.
    """

    sid: SocketId
    pid: str
    rooms: frozenset[Room]
    data: Any


@dataclass(frozen=True, slots=True)
class RestoredSession:
    """A session found again, with the packets its client missed, in order."""

    state: SessionState
    missed: list[socketio.Packet]


class LocalSocket(Protocol):
    """What an adapter needs of a socket of this process."""

    id: SocketId

    def write_outgoing(
        self, packets: Sequence[OutgoingPacket], volatile: bool, source: socketio.Packet
    ) -> None:
        """Send encoded packets (the encoding of ``source``) to this socket's client."""

    def expect_ack(self, ack_id: int, on_ack: Callable[[list[Any]], None]) -> None:
        """Call ``on_ack`` with the arguments of the client's acknowledgement ``ack_id``."""

    def join(self, rooms: Room | Iterable[Room]) -> None:
        """Add the socket to rooms."""

    def leave(self, room: Room) -> None:
        """Remove the socket from a room."""

    def disconnect(self, close: bool = False) -> None:
        """Disconnect the socket (and the whole connection when ``close``)."""


class NamespaceView(Protocol):
    """What an adapter needs of its namespace."""

    @property
    def name(self) -> str:
        """The namespace's name."""

    @property
    def sockets(self) -> Mapping[SocketId, LocalSocket]:
        """The connected sockets of this process."""

    @property
    def serializer(self) -> Serializer:
        """The server's packet format (a broadcast is encoded once in it)."""

    def next_ack_id(self) -> int:
        """A fresh ack id, unique in this namespace (broadcasts with acks use one)."""

    def server_side_handler(self, event: str) -> Callable[..., Any] | None:
        """The handler of an event sent by another server (``server_side_emit``)."""


RoomsArgument = Room | str | Iterable[Room | str]
"""One room, or several: broadcast selectors take any number of these."""


def room_set(rooms: tuple[RoomsArgument, ...]) -> frozenset[Room]:
    """The set of room names in selector arguments (strings, or iterables of them)."""
    names: set[Room] = set()
    for item in rooms:
        if isinstance(item, str):
            names.add(Room(item))
        else:
            names.update(Room(room) for room in item)
    return frozenset(names)


# Applications and other adapters subclass it (a compiled build allows that only so).
@mypyc_attr(allow_interpreted_subclasses=True)
class Adapter(ABC):
    """Rooms and broadcasting for one namespace.

    :param namespace: the namespace this adapter serves.
    """

    #: Whether it keeps sessions and packets for connection state recovery.
    keeps_sessions: ClassVar[bool] = False

    def __init__(self, namespace: NamespaceView) -> None:
        self.namespace = namespace

    # -- rooms ------------------------------------------------------------------------

    @abstractmethod
    def add_all(self, socket_id: SocketId, rooms: Iterable[Room]) -> None:
        """Add a local socket to rooms."""

    @abstractmethod
    def delete(self, socket_id: SocketId, room: Room) -> None:
        """Remove a local socket from one room."""

    @abstractmethod
    def delete_all(self, socket_id: SocketId) -> None:
        """Remove a local socket from every room (it disconnected)."""

    @abstractmethod
    def socket_rooms(self, socket_id: SocketId) -> frozenset[Room]:
        """The rooms of a local socket."""

    @abstractmethod
    def rooms(self) -> frozenset[Room]:
        """Every room that has a local socket in it."""

    # -- broadcasting -----------------------------------------------------------------

    @abstractmethod
    def broadcast(self, packet: socketio.Packet, options: BroadcastOptions) -> None:
        """Send a packet to every socket the options select, each exactly once."""

    @abstractmethod
    def broadcast_with_ack(
        self,
        packet: socketio.Packet,
        options: BroadcastOptions,
        on_client_count: Callable[[int], None],
        on_ack: Callable[[list[Any]], None],
    ) -> int:
        """Broadcast a packet that carries an ack id (``packet.id``).

        :param on_client_count: called once per server reached (this one included) with
            the number of its sockets the packet was sent to.
        :param on_ack: called with the arguments of each acknowledgement.
        :returns: how many calls of ``on_client_count`` to expect (1 for one process).
        """

    # -- utilities across the whole server ----------------------------------------------

    def server_count(self) -> int:
        """How many servers serve this namespace, this one included (Node's
        ``adapter.serverCount()``): 1 unless the adapter links servers."""
        return 1

    @abstractmethod
    def fetch_sockets(self, options: BroadcastOptions) -> list[Any]:
        """The sockets the options select (local ``Socket`` objects, or remote views)."""

    @abstractmethod
    def add_sockets(self, options: BroadcastOptions, rooms: Iterable[Room]) -> None:
        """Make the selected sockets join rooms."""

    @abstractmethod
    def del_sockets(self, options: BroadcastOptions, rooms: Iterable[Room]) -> None:
        """Make the selected sockets leave rooms."""

    @abstractmethod
    def disconnect_sockets(self, options: BroadcastOptions, close: bool) -> None:
        """Disconnect the selected sockets."""

    def server_side_emit(
        self,
        event: str,
        args: list[Any],
        on_reply: Callable[[list[Any]], None] | None = None,
        timeout: float | None = None,
    ) -> int:
        """Send an event to the other servers of a cluster; returns how many were reached.

        A single process has no other servers: nothing is sent, and ``on_reply`` (when
        given) is not called.
        """
        return 0

    def server_side_call(self, event: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """Send an event to the other servers and wait for their replies (none here)."""
        return []

    # -- connection state recovery ------------------------------------------------------

    def persist_session(self, state: SessionState) -> None:
        """Keep a disconnected socket's state for its client to recover (connection
        state recovery; an adapter without storage keeps nothing)."""
        return None

    def restore_session(self, pid: str, offset: str) -> RestoredSession | None:
        """The state left under private session id ``pid`` and the packets after
        ``offset`` that reached it, or None: the client gets a fresh session."""
        return None

    def close(self) -> None:
        """Release what the adapter holds (connections to a cluster)."""
        return None
