"""BroadcastOperator: an immutable description of who receives a broadcast.

``to``, ``in_``, ``except_``, ``timeout``, ``volatile``, ``local`` and ``compress`` each
return a new operator; nothing is sent until ``emit``, ``send`` or ``call``. The packet
is encoded once per namespace by the adapter, however many sockets receive it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import gevent
from gevent.event import AsyncResult

from geventsio.adapters.base import (
    Adapter,
    BroadcastFlags,
    BroadcastOptions,
    RoomsArgument,
    room_set,
)
from geventsio.exceptions import AckTimeout, LocalProtocolError
from geventsio.protocol.socketio import Packet, PacketType

logger = logging.getLogger(__name__)


class BroadcastNamespace(Protocol):
    """What a broadcast needs of a namespace (:class:`~geventsio.server.namespace.Namespace`)."""

    @property
    def name(self) -> str:
        """The namespace's name."""

    @property
    def adapter(self) -> Adapter:
        """Its rooms and broadcasting."""

    def next_ack_id(self) -> int:
        """A fresh ack id, unique in this namespace."""


class BroadcastTarget(Protocol):
    """A namespace, or a parent namespace standing for all its children."""

    def broadcast_namespaces(self) -> Sequence[BroadcastNamespace]:
        """The namespaces a broadcast reaches."""


class BroadcastAcks:
    """Collects the acknowledgements of one broadcast until every recipient answered."""

    def __init__(
        self, servers: int, on_done: Callable[[AckTimeout | None, list[Any]], None], timeout: float
    ) -> None:
        self.responses: list[Any] = []
        self._expected_clients = 0
        self._servers_pending = servers
        self._on_done: Callable[[AckTimeout | None, list[Any]], None] | None = on_done
        self._timer = gevent.get_hub().loop.timer(timeout)
        self._timer.start(self._expire)

    def add_servers(self, count: int) -> None:
        """More servers will report their client counts."""
        self._servers_pending += count

    def on_client_count(self, count: int) -> None:
        """A server says how many of its sockets got the packet."""
        self._expected_clients += count
        self._servers_pending -= 1
        self._check()

    def on_ack(self, args: list[Any]) -> None:
        """One recipient answered (its first argument is its response)."""
        self.responses.append(args[0] if len(args) == 1 else (tuple(args) or None))
        self._check()

    def _check(self) -> None:
        if self._servers_pending <= 0 and len(self.responses) >= self._expected_clients:
            self._finish(None)

    def _expire(self) -> None:
        missing = self._expected_clients - len(self.responses)
        self._finish(AckTimeout(f"{max(missing, 0)} recipient(s) did not acknowledge in time"))

    def _finish(self, error: AckTimeout | None) -> None:
        if self._on_done is None:
            return
        on_done, self._on_done = self._on_done, None
        self._timer.close()
        if error is not None:
            error.responses = list(self.responses)  # type: ignore[attr-defined]
        on_done(error, list(self.responses))


class BroadcastOperator:
    """Who a broadcast reaches, and how.

    :param target: the namespace (or parent namespace) to broadcast in.
    :param options: rooms, excluded rooms and flags.
    """

    __slots__ = ("_options", "_target")

    def __init__(self, target: BroadcastTarget, options: BroadcastOptions | None = None) -> None:
        self._target = target
        self._options = options or BroadcastOptions()

    def _with(self, **changes: Any) -> BroadcastOperator:
        return BroadcastOperator(self._target, replace(self._options, **changes))

    def _with_flags(self, **changes: Any) -> BroadcastOperator:
        return self._with(flags=replace(self._options.flags, **changes))

    # -- selection -------------------------------------------------------------------

    def to(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """Also reach the sockets in these rooms (rooms add up: a union)."""
        return self._with(rooms=self._options.rooms | room_set(rooms))

    def in_(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """The same as :meth:`to` (``in`` is a keyword)."""
        return self.to(*rooms)

    def except_(self, *rooms: RoomsArgument) -> BroadcastOperator:
        """Leave out the sockets in these rooms."""
        return self._with(except_rooms=self._options.except_rooms | room_set(rooms))

    @property
    def volatile(self) -> BroadcastOperator:
        """Drop the packet for clients that cannot take it right now."""
        return self._with_flags(volatile=True)

    @property
    def local(self) -> BroadcastOperator:
        """Reach this process's sockets only."""
        return self._with_flags(local=True)

    def compress(self, compress: bool) -> BroadcastOperator:
        """Set the compress flag."""
        return self._with_flags(compress=compress)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Wait at most ``seconds`` for acknowledgements."""
        return self._with_flags(timeout=seconds)

    @property
    def options(self) -> BroadcastOptions:
        """The rooms, excluded rooms and flags of this operator."""
        return self._options

    # -- sending ---------------------------------------------------------------------

    def emit(
        self,
        event: str,
        *args: Any,
        callback: Callable[[AckTimeout | None, list[Any]], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Send an event to every selected socket.

        :param callback: ask every recipient for an acknowledgement; called once as
            ``callback(error, responses)`` when all answered (``error`` None) or when the
            timeout passed (``error`` an :class:`~geventsio.AckTimeout`).
        :param timeout: seconds to wait for the acknowledgements (required with a
            callback, here or through :meth:`timeout`).
        """
        if not isinstance(event, str):
            raise LocalProtocolError(f"an event name must be a string, not {event!r}")
        if callback is None:
            for namespace in self._target.broadcast_namespaces():
                packet = Packet(PacketType.EVENT, namespace.name, [event, *args])
                namespace.adapter.broadcast(packet, self._options)
            return
        self._emit_with_acks(event, args, callback, timeout)

    def _emit_with_acks(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[[AckTimeout | None, list[Any]], None],
        timeout: float | None,
    ) -> None:
        timeout = timeout if timeout is not None else self._options.flags.timeout
        if timeout is None:
            raise LocalProtocolError(
                "a broadcast with acknowledgements needs a timeout: "
                "use .timeout(seconds) or timeout="
            )

        def done(error: AckTimeout | None, responses: list[Any]) -> None:
            gevent.spawn(callback, error, responses)

        # The collector starts with one pending report of its own, made after every
        # namespace has said how many servers will report: no early completion.
        collector = BroadcastAcks(1, done, timeout)
        for namespace in self._target.broadcast_namespaces():
            collector.add_servers(1)
            packet = Packet(
                PacketType.EVENT, namespace.name, [event, *args], namespace.next_ack_id()
            )
            servers = namespace.adapter.broadcast_with_ack(
                packet, self._options, collector.on_client_count, collector.on_ack
            )
            collector.add_servers(servers - 1)
        collector.on_client_count(0)

    def send(self, *args: Any, **kwargs: Any) -> None:
        """Emit a ``message`` event."""
        self.emit("message", *args, **kwargs)

    def call(self, event: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """Emit and wait for every recipient's acknowledgement.

        :returns: the responses (each recipient's first ack argument).
        :raises AckTimeout: not everyone answered in time; ``.responses`` has the answers
            that did arrive.
        """
        result: AsyncResult[list[Any]] = AsyncResult()

        def done(error: AckTimeout | None, responses: list[Any]) -> None:
            if error is not None:
                result.set_exception(error)
            else:
                result.set(responses)

        self._emit_with_acks(event, args, done, timeout)
        responses: list[Any] = result.get()
        return responses

    # -- utilities -------------------------------------------------------------------

    def fetch_sockets(self) -> list[Any]:
        """The selected sockets (this process's ``Socket`` objects; remote views in a cluster)."""
        found: list[Any] = []
        for namespace in self._target.broadcast_namespaces():
            found.extend(namespace.adapter.fetch_sockets(self._options))
        return found

    def sockets_join(self, *rooms: RoomsArgument) -> None:
        """Make the selected sockets join rooms."""
        for namespace in self._target.broadcast_namespaces():
            namespace.adapter.add_sockets(self._options, room_set(rooms))

    def sockets_leave(self, *rooms: RoomsArgument) -> None:
        """Make the selected sockets leave rooms."""
        for namespace in self._target.broadcast_namespaces():
            namespace.adapter.del_sockets(self._options, room_set(rooms))

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the selected sockets (``close``: their whole connections too)."""
        for namespace in self._target.broadcast_namespaces():
            namespace.adapter.disconnect_sockets(self._options, close)


__all__ = ["BroadcastFlags", "BroadcastOperator"]
