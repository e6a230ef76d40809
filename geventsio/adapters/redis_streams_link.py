"""The Redis Streams adapter's options and its per-process link: the command connections,
the reader greenlet that hands the stream's entries to the namespaces' adapters, and the
heartbeat greenlet (see :mod:`geventsio.adapters.redis_streams`)."""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent
import redis
from gevent.event import Event
from redis.backoff import NoBackoff
from redis.retry import Retry

from geventsio.adapters.redis_link import RedisLink, connection_pool, reconnect_delay
from geventsio.adapters.redis_streams_wire import decode_entry, entry_key
from geventsio.adapters.redis_wire import MalformedMessage
from geventsio.backoff import Backoff

if TYPE_CHECKING:
    from geventsio.adapters.redis_streams import RedisStreamsAdapter

logger = logging.getLogger("geventsio.adapters.redis_streams")


@dataclass(frozen=True)
class StreamsOptions:
    """Options of the Redis Streams adapter (Node's names in snake case, times in s).

    :param stream_name: the stream.
    :param max_len: the stream's approximate cap (``MAXLEN ~``): older entries go, and
        a client whose offset went with them gets a fresh session.
    :param read_count: entries per ``XREAD``/``XRANGE`` call.
    :param block_time: seconds one ``XREAD`` waits for entries.
    :param session_key_prefix: the prefix of the session keys.
    :param heartbeat_interval: seconds without a message after which a heartbeat is sent
        (for the adapter's later versions, which count servers by their heartbeats).
    :param channel_prefix: the prefix of the pub/sub channels of requests and answers.
    :param requests_timeout: seconds to wait for the other servers' answers.
    """

    stream_name: str = "socket.io"
    max_len: int = 10_000
    read_count: int = 100
    block_time: float = 5.0
    session_key_prefix: str = "sio:session:"
    heartbeat_interval: float = 5.0
    channel_prefix: str = "socket.io"
    requests_timeout: float = 5.0


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
        #: Requests and answers between servers (pub/sub), started with the first adapter.
        self.pubsub = RedisLink(url)
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
        backoff, rng = Backoff(0.05, 2.0, jitter=0), random.Random()
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
                delay = reconnect_delay(backoff, rng)
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
