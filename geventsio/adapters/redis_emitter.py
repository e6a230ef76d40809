"""The Redis emitter: reach the clients of a Socket.IO cluster from a process that serves
none (a Celery worker, a cron job, a script).

It publishes what the Node reference's ``@socket.io/redis-emitter`` publishes, so it
reaches geventsio servers and Node servers alike. It only publishes: it never subscribes,
so it cannot wait for acknowledgements or replies.

It uses a plain redis-py client (blocking sockets, safe to share between threads); in a
gevent process that is not monkey-patched each publish blocks for one round trip to
Redis. Pass ``client=`` to bring your own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import redis

from geventsio.adapters import redis_wire as wire
from geventsio.adapters.base import BroadcastFlags, BroadcastOptions, RoomsArgument, room_set
from geventsio.adapters.redis_wire import RequestType
from geventsio.exceptions import LocalProtocolError
from geventsio.protocol.socketio import RESERVED_EVENTS, Packet, PacketType


@dataclass(frozen=True, slots=True)
class EmitterOperator:
    """Who an emitted event reaches: immutable, like the server's BroadcastOperator.

    :param emitter: the emitter (its client, key and namespace).
    :param options: rooms, excluded rooms and flags.
    """

    emitter: RedisEmitter
    options: BroadcastOptions = field(default_factory=BroadcastOptions)

    def to(self, *rooms: RoomsArgument) -> EmitterOperator:
        """Also reach the sockets in these rooms (rooms add up)."""
        return replace(
            self, options=replace(self.options, rooms=self.options.rooms | room_set(rooms))
        )

    in_ = to

    def except_(self, *rooms: RoomsArgument) -> EmitterOperator:
        """Leave out the sockets in these rooms."""
        excluded = self.options.except_rooms | room_set(rooms)
        return replace(self, options=replace(self.options, except_rooms=excluded))

    @property
    def volatile(self) -> EmitterOperator:
        """Drop the event for clients that cannot take it right now."""
        return self._with_flags(volatile=True)

    def compress(self, compress: bool) -> EmitterOperator:
        """Set the compress flag."""
        return self._with_flags(compress=compress)

    def _with_flags(self, **changes: Any) -> EmitterOperator:
        flags: BroadcastFlags = replace(self.options.flags, **changes)
        return replace(self, options=replace(self.options, flags=flags))

    def emit(self, event: str, *args: Any) -> int:
        """Send an event (arguments may hold ``bytes``) to the selected sockets.

        :returns: how many servers received it.
        :raises LocalProtocolError: a reserved or non-string event name, or arguments
            that cannot be represented.
        """
        if not isinstance(event, str) or event in RESERVED_EVENTS:
            raise LocalProtocolError(f"{event!r} cannot be emitted: reserved or not a string")
        emitter = self.emitter
        packet = Packet(PacketType.EVENT, emitter.namespace, [event, *args])
        message = wire.encode_broadcast(wire.EMITTER_UID, packet, self.options)
        channels = wire.Channels.of(emitter.key, emitter.namespace, wire.EMITTER_UID)
        return int(emitter.client.publish(channels.for_rooms(self.options.rooms), message))

    def send(self, *args: Any) -> int:
        """Emit a ``message`` event."""
        return self.emit("message", *args)

    def _request(self, request_type: RequestType, **fields: Any) -> int:
        emitter = self.emitter
        channels = wire.Channels.of(emitter.key, emitter.namespace, wire.EMITTER_UID)
        message = wire.encode_request(request_type, wire.EMITTER_UID, **fields)
        return int(emitter.client.publish(channels.request, message))

    def sockets_join(self, *rooms: RoomsArgument) -> None:
        """Make the selected sockets join rooms, on every server."""
        selection = wire.selection_to_wire(self.options)
        self._request(RequestType.REMOTE_JOIN, opts=selection, rooms=sorted(room_set(rooms)))

    def sockets_leave(self, *rooms: RoomsArgument) -> None:
        """Make the selected sockets leave rooms, on every server."""
        selection = wire.selection_to_wire(self.options)
        self._request(RequestType.REMOTE_LEAVE, opts=selection, rooms=sorted(room_set(rooms)))

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the selected sockets (``close``: their whole connections too)."""
        selection = wire.selection_to_wire(self.options)
        self._request(RequestType.REMOTE_DISCONNECT, opts=selection, close=close)


class RedisEmitter:
    """Emit to the clients of a Socket.IO cluster through Redis, without serving any.

    ::

        emitter = RedisEmitter("redis://127.0.0.1:6379/0")
        emitter.to("room").emit("news", {"title": "..."}, b"\\x00binary")
        emitter.of("/admin").except_("muted").emit("alert")

    :param url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` or ``unix://``.
    :param key: the prefix of every channel (the servers' ``key``).
    :param client: a redis-py client to use instead of one built from ``url``.
    :param namespace: the namespace to emit in.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key: str = wire.DEFAULT_KEY,
        client: redis.Redis | None = None,
        namespace: str = "/",
    ) -> None:
        self._owns_client = client is None
        self.client: redis.Redis = (
            client if client is not None else redis.Redis.from_url(url, protocol=2)
        )
        self.key = key
        self.namespace = namespace if namespace.startswith("/") else "/" + namespace

    def __repr__(self) -> str:
        return f"<RedisEmitter {self.key} {self.namespace}>"

    def of(self, namespace: str) -> RedisEmitter:
        """An emitter for another namespace (sharing this one's client)."""
        return RedisEmitter(key=self.key, client=self.client, namespace=namespace)

    @property
    def _all(self) -> EmitterOperator:
        return EmitterOperator(self)

    def to(self, *rooms: RoomsArgument) -> EmitterOperator:
        """Emit to the sockets in these rooms."""
        return self._all.to(*rooms)

    in_ = to

    def except_(self, *rooms: RoomsArgument) -> EmitterOperator:
        """Emit to every socket but those in these rooms."""
        return self._all.except_(*rooms)

    @property
    def volatile(self) -> EmitterOperator:
        """Drop the event for clients that cannot take it right now."""
        return self._all.volatile

    def compress(self, compress: bool) -> EmitterOperator:
        """Set the compress flag."""
        return self._all.compress(compress)

    def emit(self, event: str, *args: Any) -> int:
        """Send an event to every socket of the namespace (see :meth:`EmitterOperator.emit`)."""
        return self._all.emit(event, *args)

    def send(self, *args: Any) -> int:
        """Emit a ``message`` event to every socket of the namespace."""
        return self._all.send(*args)

    def sockets_join(self, *rooms: RoomsArgument) -> None:
        """Make every socket of the namespace join rooms."""
        self._all.sockets_join(*rooms)

    def sockets_leave(self, *rooms: RoomsArgument) -> None:
        """Make every socket of the namespace leave rooms."""
        self._all.sockets_leave(*rooms)

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every socket of the namespace."""
        self._all.disconnect_sockets(close)

    def server_side_emit(self, event: str, *args: Any) -> int:
        """Send an event to every server's server-side handlers (no replies: an emitter
        cannot receive them).

        :returns: how many servers received it.
        """
        if not isinstance(event, str) or event in RESERVED_EVENTS:
            raise LocalProtocolError(f"{event!r} cannot be emitted: reserved or not a string")
        return self._all._request(RequestType.SERVER_SIDE_EMIT, data=[event, *args])

    def close(self) -> None:
        """Close the client's connections (when the emitter built the client)."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> RedisEmitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["RESERVED_EVENTS", "EmitterOperator", "RedisEmitter"]
