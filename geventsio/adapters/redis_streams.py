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

Limits: ``fetch_sockets``, broadcasts with acknowledgements and ``server_side_emit``
reach this server only (the Node adapter sends those through pub/sub, which this one
does not join); one stream for every namespace (``streamCount`` 1). After a Redis
restart without persistence the stream and the sessions are gone: clients get fresh
sessions, and broadcasts flow again as soon as Redis answers.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import gevent
import redis
from gevent.event import Event
from redis.backoff import NoBackoff
from redis.retry import Retry

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
from geventsio.adapters.redis_link import Backoff, connection_pool
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
    EMITTER_UID,
    MalformedMessage,
    options_from_wire,
    options_to_wire,
    rooms_from_wire,
)
from geventsio.protocol.socketio import Packet, PacketType

logger = logging.getLogger("geventsio.adapters.redis_streams")

#: The most XRANGE calls one restore makes (as Node's adapter), each of ``read_count``.
MAX_RESTORE_READS = 100
#: The longest private session id looked up.
MAX_PID_LENGTH = 64


@dataclass(frozen=True)
class StreamsOptions:
    """Options of the Redis Streams adapter (Node's names in snake case, times in s).

    :param stream_name: the stream.
    :param max_len: the stream's approximate cap (``MAXLEN ~``): older entries go, and
        a client whose offset went with them gets a fresh session.
    :param read_count: entries per ``XREAD``/``XRANGE`` call.
    :param block_time: seconds one ``XREAD`` waits for entries.
    :param session_key_prefix: the prefix of the session keys.
    :param heartbeat_interval: seconds without a message after which a heartbeat is sent.
    :param heartbeat_timeout: seconds without a message after which a server is gone.
    """

    stream_name: str = "socket.io"
    max_len: int = 10_000
    read_count: int = 100
    block_time: float = 5.0
    session_key_prefix: str = "sio:session:"
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 10.0


class StreamLink:
    """One process's link to the stream: a command connection pool and the reader
    greenlet, shared by the namespaces' adapters.

    :param url: the Redis URL.
    :param options: the adapter options.
    """

    def __init__(self, url: str, options: StreamsOptions) -> None:
        self.options = options
        self.uid = secrets.token_hex(8)
        commands = connection_pool(url)
        # A pooled connection found dead (Redis restarted) is replaced once, at once.
        commands.connection_kwargs["retry"] = Retry(NoBackoff(), 1)
        self.commands = redis.Redis(connection_pool=commands)
        self._blocking = redis.Redis(
            connection_pool=connection_pool(url, socket_timeout=options.block_time + 5)
        )
        self.adapters: dict[str, RedisStreamsAdapter] = {}
        #: The id of the last entry the reader handed out.
        self.position = "0-0"
        self._started = Event()
        self._greenlets: list[gevent.Greenlet[Any, Any]] = []

    def add(self, adapter: RedisStreamsAdapter) -> None:
        """Hand the entries of ``adapter``'s namespace to it (starts the reader)."""
        self.adapters[adapter.namespace.name] = adapter
        if not self._greenlets:
            self._greenlets = [gevent.spawn(self._read), gevent.spawn(self._beat)]
            self._started.wait(self.options.block_time)

    def remove(self, adapter: RedisStreamsAdapter) -> None:
        """Stop handing entries to ``adapter``; after the last one, stop the greenlets and
        close the connections (a later :meth:`add` opens them again)."""
        if self.adapters.get(adapter.namespace.name) is adapter:
            del self.adapters[adapter.namespace.name]
        if not self.adapters:
            greenlets, self._greenlets = self._greenlets, []
            gevent.killall(greenlets, timeout=5)
            self._started.clear()
            self.commands.connection_pool.disconnect()
            self._blocking.connection_pool.disconnect()

    def xadd(self, fields: dict[str, str]) -> str:
        """Append an entry; returns its id.

        :raises redis.RedisError: Redis cannot be reached.
        """
        entry_id: Any = self.commands.xadd(
            self.options.stream_name,
            dict(fields),  # type: ignore[arg-type]
            maxlen=self.options.max_len,
            approximate=True,
        )
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def xrange(self, start: str, end: str = "+") -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Entries from ``start`` to ``end`` (both included), ``read_count`` at most."""
        found: Any = self.commands.xrange(
            self.options.stream_name, start, end, count=self.options.read_count
        )
        return list(found)

    # -- the reader ----------------------------------------------------------------------

    def _read(self) -> None:
        backoff = Backoff(0.05, 2.0, random.Random())
        offset: str | None = None
        while True:
            try:
                if offset is None:
                    offset = self._last_id()
                    self.position = offset
                    self._started.set()
                for entry_id, fields in self._next_batch(offset):
                    offset = entry_id.decode()
                    self._hand_out(offset, fields)
                backoff.reset()
            except redis.RedisError as exc:
                self._started.set()
                delay = backoff.next_delay()
                logger.warning("reading the stream failed (%s); again in %.2g s", exc, delay)
                gevent.sleep(delay)

    def _last_id(self) -> str:
        last: Any = self._blocking.xrevrange(self.options.stream_name, "+", "-", count=1)
        return last[0][0].decode() if last else "0-0"

    def _next_batch(self, offset: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
        reply: Any = self._blocking.xread(
            {self.options.stream_name: offset},
            count=self.options.read_count,
            block=round(self.options.block_time * 1000),
        )
        return list(reply[0][1]) if reply else []

    def _hand_out(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        if entry_key(entry_id) > entry_key(self.position):
            self.position = entry_id  # before the recipients are selected
        try:
            entry = decode_entry(entry_id, fields)
        except MalformedMessage as exc:
            logger.info("stream entry %s ignored: %s", entry_id, exc)
            return
        if entry is None:
            return
        adapter = self.adapters.get(entry.namespace)
        if adapter is not None:
            adapter.on_entry(entry)

    def _beat(self) -> None:
        interval = self.options.heartbeat_interval
        while True:
            gevent.sleep(interval / 2)
            for adapter in list(self.adapters.values()):
                adapter.heartbeat_if_quiet()


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
        #: Servers heard from (uid → monotonic time), for ``server_count``.
        self.nodes: dict[str, float] = {}
        self._in_flight = 0
        self._idle = Event()
        self._idle.set()
        self._last_own = "0-0"
        self._last_publish = 0.0
        self._handlers: dict[int, Callable[[Entry], None]] = {
            MessageType.INITIAL_HEARTBEAT: self._on_initial_heartbeat,
            MessageType.HEARTBEAT: lambda entry: None,
            MessageType.ADAPTER_CLOSE: self._on_adapter_close,
            MessageType.BROADCAST: self._on_broadcast,
            MessageType.SOCKETS_JOIN: self._on_sockets_join,
            MessageType.SOCKETS_LEAVE: self._on_sockets_leave,
            MessageType.DISCONNECT_SOCKETS: self._on_disconnect_sockets,
        }
        link.add(self)
        self._publish(MessageType.INITIAL_HEARTBEAT)

    def __repr__(self) -> str:
        return f"<RedisStreamsAdapter {self.namespace.name} uid={self.uid}>"

    def server_count(self) -> int:
        """This server and those heard from within ``heartbeat_timeout``."""
        threshold = time.monotonic() - self.options.heartbeat_timeout
        return 1 + sum(1 for seen in self.nodes.values() if seen >= threshold)

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

    # -- the other servers' entries (reader greenlet) ----------------------------------------

    def on_entry(self, entry: Entry) -> None:
        """An entry of this namespace from the stream."""
        if entry.uid == self.uid:
            return
        if entry.uid and entry.uid != EMITTER_UID:
            self.nodes[entry.uid] = time.monotonic()
        handler = self._handlers.get(entry.type)
        if handler is None:
            return
        try:
            handler(entry)
        except MalformedMessage as exc:
            logger.info("stream entry %s ignored: %s", entry.id, exc)

    def _on_adapter_close(self, entry: Entry) -> None:
        self.nodes.pop(entry.uid, None)

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
    return factory


__all__ = ["RedisStreamsAdapter", "StreamLink", "StreamsOptions", "redis_streams_adapter"]
