"""Connection state recovery: what a socket leaves behind, and the packets it may miss.

Theory of operation (the Node reference's rules, ``SessionAwareAdapter``). With recovery
on, every broadcast EVENT that asks for no acknowledgement and is not volatile gets an
*offset* appended as its last argument, and is kept, with the rooms it was sent to, for
``max_disconnection_duration``. The client remembers the last offset it received. A
socket that disconnects for a reason the client recovers from (transport close or error,
ping timeout, server shutdown) leaves a :class:`SessionState`: its id, a private session
id (``pid``, sent only to its own client in the CONNECT acknowledgement), its rooms and
its ``data``. When a client connects again with that ``pid`` and an offset, the adapter
hands back the state and every kept packet after that offset whose rooms the session
was in, and the socket resumes with the same id.

Invariants of :class:`RecoveryLog` (the in-memory store):

* Offsets (96 bits) and pids (120 bits) are random (``secrets``), so they cannot be
  guessed; an unknown pid, an unknown offset or an expired session gives ``None`` (a
  fresh session), never another session's packets.
* A session can be restored once: looking it up removes it.
* Nothing is kept once the window has passed: expired packets go on every append and on
  a periodic prune (at least every quarter of the window, at most every 15 s), expired
  sessions on the prune and on lookup. At most ``max_buffered_packets`` are kept.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import gevent

from geventsio._types import DisconnectReason, Room
from geventsio.adapters.base import BroadcastOptions, NamespaceView
from geventsio.adapters.base import RestoredSession as RestoredSession
from geventsio.adapters.base import SessionState as SessionState
from geventsio.adapters.memory import InMemoryAdapter
from geventsio.options import RecoveryOptions
from geventsio.protocol import socketio

#: The reasons after which a socket's state is kept (Node's RECOVERABLE_DISCONNECT_REASONS).
RECOVERABLE_REASONS = frozenset(
    {
        DisconnectReason.TRANSPORT_ERROR,
        DisconnectReason.TRANSPORT_CLOSE,
        DisconnectReason.FORCED_CLOSE,
        DisconnectReason.PING_TIMEOUT,
        DisconnectReason.SERVER_SHUTTING_DOWN,
        DisconnectReason.FORCED_SERVER_CLOSE,
    }
)


def new_private_id() -> str:
    """A fresh private session id: 120 random bits, URL-safe."""
    return secrets.token_urlsafe(15)


class OffsetSource:
    """Random offsets, 96 bits each (16 URL-safe characters), drawn from the OS in
    batches: one ``os.urandom`` call and one base64 encoding per :data:`BATCH`."""

    BATCH = 512
    _SIZE = 12  # bytes: a multiple of 3, so each offset is 16 characters, no padding

    def __init__(self) -> None:
        self._pool: list[str] = []

    def next(self) -> str:
        """A fresh offset."""
        pool = self._pool
        if not pool:
            text = base64.urlsafe_b64encode(secrets.token_bytes(self._SIZE * self.BATCH)).decode()
            width = self._SIZE * 4 // 3
            pool.extend(text[i : i + width] for i in range(0, len(text), width))
        return pool.pop()


def is_recoverable(packet: socketio.Packet, options: BroadcastOptions) -> bool:
    """Whether a broadcast is kept for recovery: an EVENT without an ack id, not volatile
    (an acknowledgement callback cannot be restored elsewhere, as in Node)."""
    return (
        packet.type is socketio.PacketType.EVENT
        and packet.id is None
        and not options.flags.volatile
    )


def with_offset(packet: socketio.Packet, offset: str) -> socketio.Packet:
    """The packet with ``offset`` appended to its arguments (what the client tracks)."""
    return socketio.Packet(packet.type, packet.namespace, [*packet.data, offset], packet.id)


def reaches(rooms: Iterable[Room], options: BroadcastOptions) -> bool:
    """Whether a broadcast with ``options`` reached a socket in ``rooms``."""
    room_set = rooms if isinstance(rooms, frozenset) else frozenset(rooms)
    included = not options.rooms or not options.rooms.isdisjoint(room_set)
    return included and options.except_rooms.isdisjoint(room_set)


class _Kept:
    """One kept packet."""

    __slots__ = ("at", "offset", "options", "packet")

    def __init__(
        self, offset: str, packet: socketio.Packet, options: BroadcastOptions, at: float
    ) -> None:
        self.offset = offset
        self.packet = packet
        self.options = options
        self.at = at


class RecoveryLog:
    """Sessions and recoverable packets of one namespace, in memory.

    Packets are kept in broadcast order; a restore finds its offset by a scan (restores
    are rare, broadcasts are not: no index to keep up on every packet).

    :param options: the recovery options (window and count bound).
    :param clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self, options: RecoveryOptions, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.options = options
        self._clock = clock
        self._packets: deque[_Kept] = deque()
        self._sessions: dict[str, tuple[SessionState, float]] = {}
        self._offsets = OffsetSource()

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def session_count(self) -> int:
        """How many disconnected sessions are kept."""
        return len(self._sessions)

    def append(self, packet: socketio.Packet, options: BroadcastOptions) -> socketio.Packet:
        """Keep a recoverable packet; returns it with its offset appended to its
        arguments (in place, as Node does: the broadcast owns its data list)."""
        now = self._clock()
        packets = self._packets
        threshold = now - self.options.max_disconnection_duration
        while packets and packets[0].at < threshold:
            packets.popleft()
        if len(packets) >= self.options.max_buffered_packets:
            packets.popleft()
        offset = self._offsets.next()
        packet.data.append(offset)
        packets.append(_Kept(offset, packet, options, now))
        return packet

    def persist(self, state: SessionState) -> None:
        """Keep a disconnected socket's state."""
        self._sessions[state.pid] = (state, self._clock())

    def restore(self, pid: str, offset: str) -> RestoredSession | None:
        """The session ``pid`` with the packets after ``offset`` that reached it, or None
        (unknown or expired session, unknown or expired offset). A session is restored
        at most once."""
        found = self._sessions.pop(pid, None)
        if found is None:
            return None
        state, disconnected_at = found
        if disconnected_at + self.options.max_disconnection_duration < self._clock():
            return None
        packets = iter(self._packets)
        for kept in packets:
            if kept.offset == offset:
                break
        else:
            return None
        missed = [kept.packet for kept in packets if reaches(state.rooms, kept.options)]
        return RestoredSession(state, missed)

    def prune(self) -> None:
        """Forget the packets and sessions older than the window."""
        threshold = self._clock() - self.options.max_disconnection_duration
        packets = self._packets
        while packets and packets[0].at < threshold:
            packets.popleft()
        expired = [pid for pid, (_, at) in self._sessions.items() if at < threshold]
        for pid in expired:
            del self._sessions[pid]


def prune_interval(options: RecoveryOptions) -> float:
    """Seconds between two prunes: a quarter of the window, at most 15 s."""
    return min(options.max_disconnection_duration / 4, 15.0)


class SessionAwareAdapter(InMemoryAdapter):
    """The in-memory adapter with connection state recovery (the server uses it in place
    of :class:`InMemoryAdapter` when ``connection_state_recovery`` is on).

    :param namespace: the namespace this adapter serves.
    :param options: the recovery options (default: the namespace's).
    """

    keeps_sessions = True

    def __init__(self, namespace: NamespaceView, options: RecoveryOptions | None = None) -> None:
        super().__init__(namespace)
        options = options or getattr(namespace, "recovery", None) or RecoveryOptions()
        self.log = RecoveryLog(options)
        interval = prune_interval(options)
        self._pruner: Any = gevent.get_hub().loop.timer(interval, interval)
        self._pruner.ref = False  # never keeps the process alive
        self._pruner.start(self.log.prune)

    def broadcast(self, packet: socketio.Packet, options: BroadcastOptions) -> None:
        if is_recoverable(packet, options):
            packet = self.log.append(packet, options)
        super().broadcast(packet, options)

    def persist_session(self, state: SessionState) -> None:
        self.log.persist(state)

    def restore_session(self, pid: str, offset: str) -> RestoredSession | None:
        return self.log.restore(pid, offset)

    def close(self) -> None:
        self._pruner.close()
        super().close()
