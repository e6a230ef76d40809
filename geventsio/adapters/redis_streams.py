"""The Redis Streams adapter: broadcasts across servers and connection state recovery that
works on any server, wire-compatible with ``@socket.io/redis-streams-adapter``.

Every cluster message is an entry of one Redis stream (see
:mod:`geventsio.adapters.redis_streams_wire`), appended with ``XADD ... MAXLEN ~ N``. Each
process reads the stream in one greenlet (``XREAD BLOCK``) and hands each entry to the
adapter of its namespace; an adapter ignores its own entries, as its broadcasts reach
its own sockets at once. A broadcast entry's id is the packet's recovery offset, so a
client may recover on any server: the session (id, rooms, data) is kept in Redis under
``sio:session:<pid>`` for ``max_disconnection_duration``, and the missed packets are read
back from the stream with ``XRANGE``.

Exactly once, in order, when a socket resumes (theory of operation). Entries reach this
process's sockets on two paths: the reader's, for other servers' entries, and the
emitter's, for our own (delivered right after ``XADD`` answers). Each path keeps a mark:
the reader's *position* (the last entry it has handed out) and our *last own* entry
(every own entry up to it has been delivered; none is in flight). A socket that resumes
joins its rooms without yielding after its missed packets were chosen, and they are
exactly the entries after its offset that its rooms select and that either path has
already handed out: foreign ones up to the position, own ones up to the last own mark.
Every later entry reaches it on its path. Marks are moved before the recipients are
selected, never after.

What needs answers (``fetch_sockets``, broadcasts with acknowledgements,
``server_side_emit``) goes through pub/sub, as Node's adapter sends it (see
:mod:`geventsio.adapters.redis_streams_requests`). Limits: one stream for every
namespace (``streamCount`` 1), no sharded pub/sub. After a Redis
restart without persistence the stream and the sessions are gone: clients get fresh
sessions, and broadcasts flow again as soon as Redis answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import redis
from gevent.event import Event

from geventsio._types import Room
from geventsio.adapters.base import BroadcastOptions, NamespaceView
from geventsio.adapters.memory import InMemoryAdapter
from geventsio.adapters.recovery import (
    RestoredSession,
    SessionState,
    is_recoverable,
    reaches,
    with_offset,
)
from geventsio.adapters.redis_remote import RemoteSocket
from geventsio.adapters.redis_streams_link import StreamLink, StreamsOptions
from geventsio.adapters.redis_streams_requests import ClusterRequests
from geventsio.adapters.redis_streams_wire import (
    ENTRY_ID,
    Entry,
    MessageType,
    broadcast_parts,
    decode_entry,
    decode_session,
    encode_fields,
    encode_session,
    entry_key,
    is_volatile,
    next_id,
)
from geventsio.adapters.redis_wire import (
    MalformedMessage,
    options_from_wire,
    options_to_wire,
    rooms_from_wire,
)
from geventsio.exceptions import AckTimeout
from geventsio.protocol.socketio import Packet, PacketType

logger = logging.getLogger("geventsio.adapters.redis_streams")

#: The most XRANGE calls one restore makes (as Node's adapter), each of ``read_count``.
MAX_RESTORE_READS = 100
#: The longest private session id looked up.
MAX_PID_LENGTH = 64


class RedisStreamsAdapter(InMemoryAdapter):
    """Rooms, broadcasts and recovery of one namespace across servers on a Redis stream.

    :param namespace: the namespace.
    :param link: the process's :class:`StreamLink`.
    """

    keeps_sessions = True

    def __init__(self, namespace: NamespaceView, link: StreamLink) -> None:
        super().__init__(namespace)
        self.link = link
        self.uid = link.uid
        self.options = link.options
        self.recovery = getattr(namespace, "recovery", None)
        self._in_flight = 0
        self._idle = Event()
        self._idle.set()
        self._last_own = "0-0"
        self._last_publish = 0.0
        self._handlers: dict[int, Callable[[Entry], None]] = {
            MessageType.INITIAL_HEARTBEAT: self._on_initial_heartbeat,
            MessageType.BROADCAST: self._on_broadcast,
            MessageType.SOCKETS_JOIN: self._on_sockets_join,
            MessageType.SOCKETS_LEAVE: self._on_sockets_leave,
            MessageType.DISCONNECT_SOCKETS: self._on_disconnect_sockets,
        }
        link.add(self)
        self.requests = ClusterRequests(
            self, link.pubsub, self.options.channel_prefix, self.options.requests_timeout
        )
        self._publish(MessageType.INITIAL_HEARTBEAT)

    def __repr__(self) -> str:
        return f"<RedisStreamsAdapter {self.namespace.name} uid={self.uid}>"

    def _others(self) -> int:
        return self.requests.others()

    def server_count(self) -> int:
        """This server and the others that serve the namespace."""
        return 1 + self._others()

    # -- publishing ------------------------------------------------------------------------

    def _publish(self, kind: MessageType, data: Any = None) -> str | None:
        """Append a message; returns its entry id, or None when Redis failed (logged)."""
        fields = encode_fields(self.uid, self.namespace.name, kind, data)
        self._last_publish = time.monotonic()
        try:
            return self.link.xadd(fields)
        except redis.RedisError as exc:
            logger.warning("%s: publishing %s failed: %s", self.namespace.name, kind.name, exc)
            return None

    def heartbeat_if_quiet(self) -> None:
        """Send a heartbeat when nothing was published for ``heartbeat_interval``."""
        if time.monotonic() - self._last_publish >= self.options.heartbeat_interval:
            self._publish(MessageType.HEARTBEAT)

    def broadcast(self, packet: Packet, options: BroadcastOptions) -> None:
        if options.flags.local:
            super().broadcast(packet, options)
            return
        data = {"packet": {"type": 2, "data": packet.data}, "opts": options_to_wire(options)}
        self._in_flight += 1
        self._idle.clear()
        entry_id = None
        try:
            entry_id = self._publish(MessageType.BROADCAST, data)
        finally:
            self._in_flight -= 1
            if entry_id is not None and entry_key(entry_id) > entry_key(self._last_own):
                self._last_own = entry_id  # before the recipients are selected
            if not self._in_flight:
                self._idle.set()
        if entry_id is not None and self.recovery is not None and is_recoverable(packet, options):
            packet = with_offset(packet, entry_id)
        super().broadcast(packet, options)

    def _publish_selection(self, kind: MessageType, options: BroadcastOptions, **data: Any) -> None:
        if not options.flags.local:
            self._publish(kind, {"opts": options_to_wire(options), **data})

    def add_sockets(self, options: BroadcastOptions, rooms: Iterable[Room]) -> None:
        rooms = sorted(rooms)
        self._publish_selection(MessageType.SOCKETS_JOIN, options, rooms=rooms)
        super().add_sockets(options, rooms)

    def del_sockets(self, options: BroadcastOptions, rooms: Iterable[Room]) -> None:
        rooms = sorted(rooms)
        self._publish_selection(MessageType.SOCKETS_LEAVE, options, rooms=rooms)
        super().del_sockets(options, rooms)

    def disconnect_sockets(self, options: BroadcastOptions, close: bool) -> None:
        self._publish_selection(MessageType.DISCONNECT_SOCKETS, options, close=close)
        super().disconnect_sockets(options, close)

    # -- across the cluster, with answers (pub/sub) -----------------------------------------

    def _next_ack_id(self) -> int:
        return self.namespace.next_ack_id()

    def broadcast_with_ack(
        self,
        packet: Packet,
        options: BroadcastOptions,
        on_client_count: Callable[[int], None],
        on_ack: Callable[[list[Any]], None],
    ) -> int:
        others = 0 if options.flags.local else self._others()
        if others > 0:
            self.requests.broadcast_with_ack(packet, options, on_client_count, on_ack)
        super().broadcast_with_ack(packet, options, on_client_count, on_ack)
        return 1 + others

    def fetch_sockets(self, options: BroadcastOptions) -> list[Any]:
        """This server's sockets, then views of the other servers' (``RemoteSocket``).

        :raises AckTimeout: some servers did not answer within ``requests_timeout``.
        """
        found = super().fetch_sockets(options)
        others = 0 if options.flags.local else self._others()
        if others <= 0:
            return found
        try:
            remote: list[RemoteSocket] = self.requests.fetch_sockets(options, others)
        except AckTimeout as error:
            error.responses = found + error.responses  # type: ignore[attr-defined]
            raise
        return found + remote

    def server_side_emit(
        self,
        event: str,
        args: list[Any],
        on_reply: Callable[[list[Any]], None] | None = None,
        timeout: float | None = None,
    ) -> int:
        others = self._others()
        if others <= 0:
            if on_reply is not None:
                gevent.spawn(on_reply, [])
            return 0
        self.requests.server_side_emit([event, *args], others, on_reply, timeout)
        return others

    def server_side_call(self, event: str, *args: Any, timeout: float | None = None) -> list[Any]:
        others = self._others()
        if others <= 0:
            return []
        wait = timeout if timeout is not None else self.options.requests_timeout
        gather = self.requests.gather(
            MessageType.SERVER_SIDE_EMIT, others, wait, packet=[event, *args]
        )
        replies = [answer.get("packet") for answer in gather.answers]
        if len(replies) < others:
            error = AckTimeout(f"server_side_call: {len(replies)} of {others} server(s) replied")
            error.responses = replies  # type: ignore[attr-defined]
            raise error
        return replies

    # -- the other servers' entries (reader greenlet) ----------------------------------------

    def on_entry(self, entry: Entry) -> None:
        """An entry of this namespace from the stream."""
        if entry.uid == self.uid:
            return
        handler = self._handlers.get(entry.type)
        if handler is None:
            return
        try:
            handler(entry)
        except MalformedMessage as exc:
            logger.info("stream entry %s ignored: %s", entry.id, exc)

    def _on_initial_heartbeat(self, entry: Entry) -> None:
        self._publish(MessageType.HEARTBEAT)

    def _on_broadcast(self, entry: Entry) -> None:
        if isinstance(entry.data, dict) and "requestId" in entry.data:
            return  # with acks: sent through pub/sub by Node, not kept in the stream
        args, raw_options = broadcast_parts(entry)
        options = options_from_wire(raw_options)
        packet = Packet(PacketType.EVENT, self.namespace.name, args)
        if self.recovery is not None and not is_volatile(raw_options):
            packet = with_offset(packet, entry.id)
        super().broadcast(packet, options)

    def _selection(self, entry: Entry) -> BroadcastOptions:
        if not isinstance(entry.data, dict):
            raise MalformedMessage("message without data")
        return options_from_wire(entry.data.get("opts"))

    def _on_sockets_join(self, entry: Entry) -> None:
        super().add_sockets(self._selection(entry), rooms_from_wire(entry.data.get("rooms")))

    def _on_sockets_leave(self, entry: Entry) -> None:
        super().del_sockets(self._selection(entry), rooms_from_wire(entry.data.get("rooms")))

    def _on_disconnect_sockets(self, entry: Entry) -> None:
        super().disconnect_sockets(self._selection(entry), entry.data.get("close") is True)

    # -- connection state recovery -----------------------------------------------------------

    def persist_session(self, state: SessionState) -> None:
        if self.recovery is None:
            return
        key = self.options.session_key_prefix + state.pid
        window = round(self.recovery.max_disconnection_duration * 1000)
        try:
            self.link.commands.set(key, encode_session(state), px=window)
        except redis.RedisError as exc:
            logger.warning("%s: keeping session %s failed: %s", self.namespace.name, state.sid, exc)

    def restore_session(self, pid: str, offset: str) -> RestoredSession | None:
        if not ENTRY_ID.match(offset) or not pid or len(pid) > MAX_PID_LENGTH:
            return None
        try:
            return self._restore(pid, offset)
        except redis.RedisError as exc:
            logger.warning("%s: restoring a session failed: %s", self.namespace.name, exc)
            return None

    def _restore(self, pid: str, offset: str) -> RestoredSession | None:
        key = self.options.session_key_prefix + pid
        pipe: Any = self.link.commands.pipeline(transaction=True)
        pipe.get(key)
        pipe.delete(key)  # GETDEL as two commands: Redis before 6.2 has no GETDEL
        raw, _ = pipe.execute()
        if raw is None or not self.link.xrange(offset, offset):
            return None
        try:
            state = decode_session(raw)
        except MalformedMessage as exc:
            logger.info("session %s ignored: %s", pid, exc)
            return None
        entries = self._entries_after(offset)
        if entries is None:
            return None
        return RestoredSession(state, self._missed(state, entries))

    def _entries_after(self, offset: str) -> list[Entry] | None:
        """Every entry of this namespace after ``offset`` that a path has handed out;
        None when more than ``MAX_RESTORE_READS`` reads would be needed."""
        deadline = time.monotonic() + self.options.block_time
        while entry_key(self.link.position) < entry_key(offset):
            # The offset came from another server: let the reader pass it first, or it
            # would hand out again what the client already has.
            if time.monotonic() > deadline:
                return None
            gevent.sleep(0.005)
        entries: list[Entry] = []
        read_up_to = offset
        for _ in range(MAX_RESTORE_READS):
            self._idle.wait()  # no own broadcast between XADD and delivery
            target = max(entry_key(self.link.position), entry_key(self._last_own))
            if entry_key(read_up_to) >= target and not self._in_flight:
                return entries  # nothing handed out is unread: no yield from here on
            batch = self.link.xrange(next_id(read_up_to))
            if not batch:
                # Handed out but trimmed away, or not yet visible: read again.
                continue
            for entry_id, fields in batch:
                read_up_to = entry_id.decode()
                try:
                    entry = decode_entry(read_up_to, fields)
                except MalformedMessage:
                    continue
                if entry is not None and entry.namespace == self.namespace.name:
                    entries.append(entry)
        return None

    def _missed(self, state: SessionState, entries: list[Entry]) -> list[Packet]:
        position, last_own = entry_key(self.link.position), entry_key(self._last_own)
        missed = []
        for entry in entries:
            if entry.type != MessageType.BROADCAST:
                continue
            mark = last_own if entry.uid == self.uid else position
            if entry_key(entry.id) > mark:
                continue  # its path hands it out after the socket joined
            try:
                args, raw_options = broadcast_parts(entry)
                options = options_from_wire(raw_options)
            except MalformedMessage:
                continue
            if is_volatile(raw_options) or not reaches(state.rooms, options):
                continue
            packet = Packet(PacketType.EVENT, self.namespace.name, args)
            missed.append(with_offset(packet, entry.id))
        return missed

    def close(self) -> None:
        self._publish(MessageType.ADAPTER_CLOSE)
        self.requests.close()
        self.link.remove(self)
        super().close()


def redis_streams_adapter(
    url: str = "redis://127.0.0.1:6379/0", **options: Any
) -> Callable[[NamespaceView], RedisStreamsAdapter]:
    """The adapter factory of one server: ``Server(adapter=redis_streams_adapter(url),
    connection_state_recovery=True)``.

    :param url: the Redis URL.
    :param options: :class:`StreamsOptions` fields.
    """
    link = StreamLink(url, StreamsOptions(**options))

    def factory(namespace: NamespaceView) -> RedisStreamsAdapter:
        return RedisStreamsAdapter(namespace, link)

    factory.link = link  # type: ignore[attr-defined]
    factory.redis_url = url  # type: ignore[attr-defined]  # see RedisAdapterFactory
    factory.key = link.options.stream_name  # type: ignore[attr-defined]
    return factory


__all__ = ["RedisStreamsAdapter", "StreamLink", "StreamsOptions", "redis_streams_adapter"]
