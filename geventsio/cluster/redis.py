"""Members on several hosts: each listens on TCP and says where in Redis.

Each member listens on a TCP address of its own and keeps ``<key>#<tag>`` ->
``host:port`` in Redis (set every :data:`REFRESH` seconds, expiring after
:data:`EXPIRY`). A member forwards a request for another's session to the address
Redis gives for the tag in its sid, cached: a tag is one process's, whose address
never changes.

Faults:

- Redis down: a member that could not say where it is refuses new long-polling sessions
  (503, logged: nobody could reach them); WebSocket sessions, which need no routing,
  and every open session go on. Requests for owners it has not looked up yet get code 1.
- An owner that is gone: its address refuses the connection (code 1 at once), or, if
  its host is gone too, connecting gives up after ``CONNECT_TIMEOUT``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.socket
import redis

from geventsio.adapters.redis_link import connection_pool
from geventsio.cluster.member import Member
from geventsio.engine.http import EngineErrorCode
from geventsio.engine.server import EngineServer
from geventsio.exceptions import RemoteProtocolError

logger = logging.getLogger(__name__)

#: Seconds between two writes of this member's address to Redis.
REFRESH = 5.0
#: Seconds after which an address that is not written again expires.
EXPIRY = 30
#: Addresses of other members kept at most.
_CACHE_SIZE = 10_000


def local_address_toward(url: str) -> str:
    """The address of this host's interface toward the Redis at ``url``: where the
    other members, which reach the same Redis, can reach this one. 127.0.0.1 for a
    unix socket, a Redis on this host, or an address that cannot be worked out (an
    IPv6 Redis: then set ``GEVENTSIO_CLUSTER_HOST``)."""
    parts = urlsplit(url)
    if parts.scheme == "unix" or not parts.hostname:
        return "127.0.0.1"
    try:
        with gevent.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((parts.hostname, parts.port or 6379))  # UDP: nothing is sent
            address: str = probe.getsockname()[0]
    except OSError as exc:
        logger.warning("cannot tell this host's address toward Redis (%s): 127.0.0.1", exc)
        return "127.0.0.1"
    return address


class RedisCluster(Member):
    """This process as one member of a cluster spread over hosts, found through Redis.

    :param engine: the engine whose sessions are shared; :meth:`start` sets its router.
    :param url: the Redis server (``redis://``, ``rediss://``, ``unix://``).
    :param host: the address to listen on for forwarded requests, reachable from the
        other members (never from clients: keep it on a private network).
    :param port: its port (0: any free one).
    :param advertise: the ``host`` other members connect to, when it differs from the
        one listened on (``0.0.0.0``).
    :param key: the prefix of the Redis keys: one per cluster.
    """

    def __init__(
        self,
        engine: EngineServer,
        url: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        advertise: str | None = None,
        key: str = "geventsio-cluster",
    ) -> None:
        super().__init__(engine)
        self.client = redis.Redis(connection_pool=connection_pool(url))
        self.key = key
        self._bind = (host, port)
        self._advertise = advertise or host
        self.address: tuple[str, int] | None = None
        #: Whether Redis holds this member's address (new polling sessions need it).
        self.registered = False
        self._known: dict[str, tuple[str, int]] = {}
        self._refresher: gevent.Greenlet[..., Any] | None = None

    def _listen(self) -> Any:
        listener = gevent.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(self._bind)
        listener.listen(256)
        self.address = (self._advertise, listener.getsockname()[1])
        return listener

    def start(self) -> None:
        """Listen, say where in Redis (and keep saying it), route the engine's sessions."""
        super().start()
        self._register()
        self._refresher = gevent.spawn(self._refresh)
        logger.info("cluster %s: this process is %s at %s", self.key, self.tag, self.address)

    def stop(self) -> None:
        """Stop listening and saying where; forget the address in Redis."""
        if self._refresher is not None:
            self._refresher.kill()
            self._refresher = None
        with contextlib.suppress(redis.RedisError):
            self.client.delete(self._name(self.tag))
        super().stop()
        self.client.close()

    def _name(self, tag: str) -> str:
        return f"{self.key}#{tag}"

    def _register(self) -> None:
        assert self.address is not None
        value = f"{self.address[0]}:{self.address[1]}"
        try:
            self.client.set(self._name(self.tag), value, ex=EXPIRY)
        except redis.RedisError as exc:
            if self.registered:
                logger.error(
                    "cluster %s: Redis unreachable (%s): new long-polling sessions are "
                    "refused until it is back (WebSocket sessions go on)",
                    self.key,
                    exc,
                )
            self.registered = False
            return
        if not self.registered:
            logger.info("cluster %s: %s registered at %s", self.key, self.tag, value)
        self.registered = True

    def _refresh(self) -> None:
        while True:
            gevent.sleep(REFRESH)
            self._register()

    # -- SessionRouter -----------------------------------------------------------------

    def check_new_polling(self) -> None:
        """Refuse a new long-polling session that no other member could find (503)."""
        if not self.registered:
            raise RemoteProtocolError(
                "the cluster's Redis is unreachable: no new long-polling session",
                code=EngineErrorCode.BAD_REQUEST,
                status=503,
            )

    def address_of(self, tag: str) -> tuple[str, int] | None:
        """The TCP address of the member tagged ``tag``, from Redis (then cached)."""
        known = self._known.get(tag)
        if known is not None:
            return known
        try:
            value = self.client.get(self._name(tag))
        except redis.RedisError as exc:
            logger.warning("cluster %s: cannot look %s up in Redis: %s", self.key, tag, exc)
            return None
        if value is None:
            return None
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            return None
        if len(self._known) >= _CACHE_SIZE:
            self._known.clear()
        self._known[tag] = (host, int(port))
        return self._known[tag]
