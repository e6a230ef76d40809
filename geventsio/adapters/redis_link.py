"""One server's link to Redis: a connection pool, one subscriber and one publisher.

Theory of operation. A :class:`RedisLink` belongs to one server (every namespace adapter
of that server shares it) and owns three things:

* a connection pool (redis-py), used for the few commands that need an answer at once
  (``PUBSUB NUMSUB``);
* the subscriber greenlet, on a connection of its own: it subscribes to what every
  registered namespace needs and hands each message to that namespace's listener. When
  the connection fails it logs once, marks the link *down*, and reconnects with
  exponential backoff (and jitter); once subscribed again it marks the link *up* and
  logs once. Idle, it pings Redis every ``heartbeat`` seconds and gives the connection
  up when nothing at all came back for two heartbeats (a Redis that vanished without
  closing the TCP connection);
* the publisher greenlet, on a connection of its own: :meth:`RedisLink.publish` queues
  and returns at once, and the publisher sends whatever is queued as one pipeline, in
  order.

While the link is down, :meth:`RedisLink.publish` drops the message (the caller has
already delivered to its own sockets) and counts it; the queue is emptied when the link
goes down. Nothing is retried later: a message that could not be published is lost.

Every socket is a gevent socket (:class:`GeventConnection`), so all of this cooperates
with other greenlets whether or not the process is monkey-patched. ``rediss://`` uses
redis-py's SSL connection, which cooperates only in a monkey-patched process.
"""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
import socket as std_socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import gevent
import gevent.event
import gevent.lock
import redis
from gevent import monkey
from gevent import socket as gsocket
from redis.backoff import NoBackoff
from redis.connection import Connection, UnixDomainSocketConnection
from redis.retry import Retry

from geventsio.backoff import Backoff
from geventsio.exceptions import GeventsioError

logger = logging.getLogger("geventsio.adapters.redis")

#: Messages the publisher sends in one pipeline at most.
_BATCH = 512


class RedisUnavailable(GeventsioError):
    """Redis cannot be reached: what needs an answer from the cluster cannot be done."""


class GeventConnection(Connection):
    """redis-py's TCP connection on a gevent socket (cooperative without monkey-patching)."""

    def _connect(self) -> Any:
        sock = gsocket.create_connection(
            (self.host, self.port), timeout=self.socket_connect_timeout
        )
        try:
            sock.setsockopt(std_socket.IPPROTO_TCP, std_socket.TCP_NODELAY, 1)
            if self.socket_keepalive:
                sock.setsockopt(std_socket.SOL_SOCKET, std_socket.SO_KEEPALIVE, 1)
                for option, value in self.socket_keepalive_options.items():
                    sock.setsockopt(std_socket.IPPROTO_TCP, option, value)
            sock.settimeout(self.socket_timeout)
        except OSError:
            sock.close()
            raise
        return sock


class GeventUnixConnection(UnixDomainSocketConnection):
    """redis-py's Unix socket connection on a gevent socket."""

    def _connect(self) -> Any:
        sock = gsocket.socket(std_socket.AF_UNIX, std_socket.SOCK_STREAM)
        try:
            sock.settimeout(self.socket_connect_timeout)
            sock.connect(self.path)
            sock.settimeout(self.socket_timeout)
        except OSError:
            sock.close()
            raise
        return sock


def connection_pool(
    url: str, *, connect_timeout: float = 2.0, socket_timeout: float = 5.0
) -> redis.ConnectionPool:
    """A redis-py pool for ``url`` (``redis://``, ``rediss://`` or ``unix://``) whose
    connections are gevent sockets, speak RESP2 and never retry (nor sleep) on their own.
    """
    scheme = urlsplit(url).scheme
    options: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "protocol": 2,  # pub/sub replies as plain arrays
    }
    if scheme == "unix":
        options["connection_class"] = GeventUnixConnection
    elif scheme == "redis":
        options["connection_class"] = GeventConnection
        options["socket_keepalive"] = True
    elif scheme == "rediss" and not monkey.is_module_patched("ssl"):
        logger.warning(
            "rediss:// uses blocking sockets unless the process is monkey-patched "
            "(gevent.monkey.patch_all()): the Redis adapter would stall the server"
        )
    pool = redis.ConnectionPool.from_url(url, **options)
    if str(pool.connection_kwargs.get("protocol")) != "2":
        raise ValueError("the Redis adapter speaks RESP2: remove protocol= from the URL")
    return pool


class LinkListener(Protocol):
    """What a namespace adapter gives the link to receive messages."""

    def on_broadcast_message(self, channel: bytes, data: bytes) -> None:
        """A message on the namespace's broadcast pattern."""

    def on_channel_message(self, channel: bytes, data: bytes) -> None:
        """A message on one of the namespace's request or response channels."""

    def on_subscribed(self, channel: bytes) -> None:
        """Redis confirmed a subscription to ``channel``."""

    def on_link_down(self) -> None:
        """The subscription was lost (until :meth:`on_subscribed` again)."""


class DropLog:
    """Logs dropped messages at WARNING, once per kind per ``interval`` seconds."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last: dict[str, tuple[float, int]] = {}
        #: Messages dropped since the start (every kind), for metrics.
        self.total = 0

    def report(self, kind: str, channel: bytes, detail: str = "") -> None:
        """One message of ``kind`` was dropped."""
        self.total += 1
        now = time.monotonic()
        last, suppressed = self._last.get(kind, (-self.interval, 0))
        if now - last < self.interval:
            self._last[kind] = (last, suppressed + 1)
            return
        self._last[kind] = (now, 0)
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        logger.warning(
            "dropped a message from Redis channel %s: %s%s%s",
            channel.decode(errors="replace"),
            kind,
            f" ({detail})" if detail else "",
            more,
        )


def reconnect_delay(backoff: Backoff, rng: random.Random) -> float:
    """The next delay before reconnecting, in seconds: the backoff's (doubling up to its
    maximum, without jitter of its own), cut by up to half at random so that the servers
    of a cluster do not all reconnect at once."""
    return backoff.duration() * rng.uniform(0.5, 1.0)


class RedisLink:
    """One server's connection pool, subscriber and publisher (see the module).

    :param url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` or ``unix://``.
    :param reconnect_delay: the first delay before reconnecting, in seconds.
    :param max_reconnect_delay: the longest delay before reconnecting.
    :param heartbeat: seconds of silence before the subscriber pings Redis.
    :param max_queue: messages waiting for the publisher at most (more are dropped).
    :param connect_timeout: seconds a connection attempt may take.
    :param socket_timeout: seconds a command may wait for its answer.
    """

    def __init__(
        self,
        url: str,
        *,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        heartbeat: float = 5.0,
        max_queue: int = 100_000,
        connect_timeout: float = 2.0,
        socket_timeout: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.uid = secrets.token_hex(6)
        self.pool = connection_pool(
            url, connect_timeout=connect_timeout, socket_timeout=socket_timeout
        )
        self.client = redis.Redis(connection_pool=self.pool)
        self.drops = DropLog()
        self._heartbeat = heartbeat
        self._max_queue = max_queue
        self._backoff = Backoff(reconnect_delay, max_reconnect_delay, jitter=0)
        self._rng = rng or random.Random()
        self._patterns: dict[bytes, LinkListener] = {}
        self._channels: dict[bytes, LinkListener] = {}
        self._queue: deque[tuple[bytes, bytes]] = deque()
        self._queued = gevent.event.Event()
        self._wanted = gevent.event.Event()
        self._subscribe_lock = gevent.lock.BoundedSemaphore()
        # redis-py's Connection is untyped: Any keeps mypy strict about the rest.
        self._sub_conn: Any = None
        self._pub_conn: Any = None
        self._subscriber: gevent.Greenlet[..., Any] | None = None
        self._publisher: gevent.Greenlet[..., Any] | None = None
        self._up: bool | None = None  # None: not connected yet (messages are queued)
        self._outage_since: float | None = None
        self._dropped = 0
        #: Since the start, for metrics: reconnections after a loss, and messages that
        #: could not be published.
        self.reconnects = 0
        self.publish_failures = 0
        self._queue_full_logged = -60.0
        self._closed = False

    # -- state -----------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """Whether the subscriber is connected and subscribed."""
        return self._up is True

    @property
    def queue_depth(self) -> int:
        """Messages waiting for the publisher."""
        return len(self._queue)

    @property
    def accepting(self) -> bool:
        """Whether :meth:`publish` queues messages (connected, or not tried yet)."""
        return self._up is not False and not self._closed

    def _fail(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning(
                "lost the link to Redis at %s (%s): broadcasts reach this server's "
                "sockets only until it is back; reconnecting with backoff",
                self._where(),
                exc,
            )

    def _recovered(self) -> None:
        if self._outage_since is None:
            return
        lost = f"; {self._dropped} message(s) could not be published" if self._dropped else ""
        logger.warning(
            "the link to Redis at %s is back after %.1f s%s",
            self._where(),
            time.monotonic() - self._outage_since,
            lost,
        )
        self._outage_since = None
        self._dropped = 0

    def _where(self) -> str:
        """The URL without its credentials, for logs."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"

    # -- registration ----------------------------------------------------------------------

    def add(self, pattern: bytes | None, channels: Sequence[bytes], listener: LinkListener) -> None:
        """Receive the messages of ``pattern`` (if any) and ``channels`` (starts the link)."""
        self._closed = False
        commands: list[tuple[Any, ...]] = [("SUBSCRIBE", *channels)]
        if pattern is not None:
            self._patterns[pattern] = listener
            commands.insert(0, ("PSUBSCRIBE", pattern))
        for channel in channels:
            self._channels[channel] = listener
        self._start()
        self._send_subscription(*commands)

    def remove(self, listener: LinkListener) -> None:
        """Stop receiving a listener's messages; the link closes after its last listener."""
        patterns = [p for p, owner in self._patterns.items() if owner is listener]
        channels = [c for c, owner in self._channels.items() if owner is listener]
        for pattern in patterns:
            del self._patterns[pattern]
        for channel in channels:
            del self._channels[channel]
        if not self._patterns and not self._channels:
            self.close()
            return
        commands = [("PUNSUBSCRIBE", *patterns)] if patterns else []
        if channels:
            commands.append(("UNSUBSCRIBE", *channels))
        self._send_subscription(*commands)

    def _send_subscription(self, *commands: tuple[Any, ...]) -> None:
        """Send (un)subscriptions on the live subscriber connection; when there is none,
        the subscriber sends everything registered when it connects."""
        self._wanted.set()
        with self._subscribe_lock:
            conn = self._sub_conn
            if conn is None:
                return
            try:
                conn.send_packed_command(conn.pack_commands(commands))
            except (redis.RedisError, OSError) as exc:
                logger.debug("subscription change failed (the subscriber reconnects): %s", exc)

    # -- publishing ------------------------------------------------------------------------

    def publish(self, channel: bytes, data: bytes) -> bool:
        """Queue a message for the publisher; False if it was dropped (link down, or
        ``max_queue`` messages already waiting)."""
        if not self.accepting:
            self._dropped += 1
            self.publish_failures += 1
            return False
        if len(self._queue) >= self._max_queue:
            self.publish_failures += 1
            self._queue_full()
            return False
        self._queue.append((channel, data))
        self._queued.set()
        return True

    def _queue_full(self) -> None:
        now = time.monotonic()
        if now - self._queue_full_logged >= 60:
            self._queue_full_logged = now
            logger.warning(
                "%d messages wait to be published to Redis at %s: dropping new ones "
                "(Redis is too slow, or the server emits faster than it can publish)",
                len(self._queue),
                self._where(),
            )

    def numsub(self, channel: bytes) -> int:
        """How many connections subscribe to ``channel`` (``PUBSUB NUMSUB``).

        :raises RedisUnavailable: the link is down or the command failed.
        """
        if not self.accepting:
            raise RedisUnavailable(f"no link to Redis at {self._where()}")
        try:
            answer = self.client.pubsub_numsub(channel)
        except (redis.RedisError, OSError) as exc:
            self._fail(exc)
            raise RedisUnavailable(f"Redis at {self._where()}: {exc}") from exc
        return int(answer[0][1]) if answer else 0

    def _run_publisher(self) -> None:
        while not self._closed:
            self._queued.wait()
            self._queued.clear()
            while self._queue:
                count = min(len(self._queue), _BATCH)
                self._send_batch([self._queue.popleft() for _ in range(count)])

    def _send_batch(self, batch: list[tuple[bytes, bytes]]) -> None:
        if self._pub_conn is None:
            self._pub_conn = self._new_connection()
        conn = self._pub_conn
        try:
            conn.send_packed_command(
                conn.pack_commands([("PUBLISH", channel, data) for channel, data in batch])
            )
            for _ in batch:
                conn.read_response()
        except Exception as exc:
            conn.disconnect()
            self._dropped += len(batch)
            self.publish_failures += len(batch)
            self._fail(exc)
            return
        if self._up:
            self._recovered()

    # -- subscribing -----------------------------------------------------------------------

    def _new_connection(self) -> Any:
        return self.pool.connection_class(**self.pool.connection_kwargs)

    def _run_subscriber(self) -> None:
        while not self._closed:
            if not self._patterns and not self._channels:
                self._wanted.clear()
                self._wanted.wait()
                continue
            conn = self._new_connection()
            try:
                self._subscribe_and_read(conn)
            except (redis.RedisError, OSError) as exc:
                self._went_down(exc)
            except Exception as exc:  # a bug: log it, and still never stop
                logger.exception("the Redis subscriber failed")
                self._went_down(exc)
            finally:
                self._sub_conn = None
                conn.disconnect()
            if not self._closed:
                gevent.sleep(reconnect_delay(self._backoff, self._rng))

    def _subscribe_and_read(self, conn: Any) -> None:
        conn.connect()
        with self._subscribe_lock:
            commands: list[tuple[Any, ...]] = []
            if self._patterns:
                commands.append(("PSUBSCRIBE", *self._patterns))
            if self._channels:
                commands.append(("SUBSCRIBE", *self._channels))
            conn.send_packed_command(conn.pack_commands(commands))
            self._sub_conn = conn
        ping_sent: float | None = None
        while not self._closed:
            # can_read(0) after a timeout: data may sit in the kernel's buffer while a busy
            # loop had not reported it yet; only a PING left unanswered means a dead link.
            if conn.can_read(timeout=self._heartbeat) or conn.can_read(timeout=0):
                self._on_reply(conn.read_response())
                ping_sent = None
            elif ping_sent is None:
                with self._subscribe_lock:
                    conn.send_command("PING")
                ping_sent = time.monotonic()
            elif time.monotonic() - ping_sent > self._heartbeat:
                raise redis.ConnectionError("no answer to PING")

    def _went_down(self, exc: BaseException) -> None:
        self._up = False
        self._dropped += len(self._queue)
        self.publish_failures += len(self._queue)
        self._queue.clear()
        self._fail(exc)
        # The other connections are as dead as this one (a Redis restart): start afresh.
        if self._pub_conn is not None:
            self._pub_conn.disconnect()
        with contextlib.suppress(Exception):
            self.pool.disconnect(inuse_connections=False)
        for listener in {*self._patterns.values(), *self._channels.values()}:
            listener.on_link_down()

    def _on_reply(self, reply: Any) -> None:
        if not isinstance(reply, list) or not reply:
            return
        kind = reply[0]
        if kind == b"pmessage" and len(reply) == 4:
            listener = self._patterns.get(reply[1])
            if listener is not None:
                self._deliver(listener.on_broadcast_message, reply[2], reply[3])
        elif kind == b"message" and len(reply) == 3:
            listener = self._channels.get(reply[1])
            if listener is not None:
                self._deliver(listener.on_channel_message, reply[1], reply[2])
        elif kind in (b"subscribe", b"psubscribe") and len(reply) == 3:
            self._on_subscribed(reply[1])

    def _on_subscribed(self, name: bytes) -> None:
        if not self._up:
            if self._up is False:
                self.reconnects += 1
            self._up = True
            self._backoff.reset()
            self._recovered()
        listener = self._channels.get(name) or self._patterns.get(name)
        if listener is not None:
            listener.on_subscribed(name)

    def _deliver(self, handle: Callable[[bytes, bytes], None], channel: bytes, data: Any) -> None:
        if not isinstance(data, bytes):
            return
        try:
            handle(channel, data)
        except Exception as exc:  # e.g. data our JSON cannot write: never stop reading
            logger.debug("handling a message from Redis failed", exc_info=True)
            self.drops.report(f"{type(exc).__name__} while handling it", channel, str(exc)[:200])

    # -- life cycle ------------------------------------------------------------------------

    def _start(self) -> None:
        if self._subscriber is None or self._subscriber.dead:
            self._subscriber = gevent.spawn(self._run_subscriber)
        if self._publisher is None or self._publisher.dead:
            self._publisher = gevent.spawn(self._run_publisher)

    def close(self) -> None:
        """Stop both greenlets and close every connection (idempotent)."""
        self._closed = True
        current = gevent.getcurrent()
        greenlets = [g for g in (self._subscriber, self._publisher) if g not in (None, current)]
        self._subscriber = self._publisher = None
        gevent.killall(greenlets, block=True, timeout=2.0)
        for conn in (self._sub_conn, self._pub_conn):
            if conn is not None:
                conn.disconnect()
        self._sub_conn = self._pub_conn = None
        self._queue.clear()
        self._up = None
        with contextlib.suppress(Exception):
            self.pool.disconnect()


__all__ = [
    "DropLog",
    "GeventConnection",
    "GeventUnixConnection",
    "LinkListener",
    "RedisLink",
    "RedisUnavailable",
    "connection_pool",
]
