"""What the engine tells an observer (metrics, the Admin UI), and Node's engine events.

An observer is an object whose methods the engine calls as things happen. The engine
holds at most one (``EngineServer.observer``, ``None`` by default): with none, each
hook point costs one attribute test. Several observers are combined with
:class:`Observers`. Every method runs in the greenlet where the thing happens (the hub,
for the heartbeat) and must neither block nor raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from geventsio._types import DisconnectReason
from geventsio.protocol.engineio import Packet

if TYPE_CHECKING:
    from geventsio.engine.socket import EngineSocket
    from geventsio.protocol.outgoing import OutgoingPacket


@dataclass(frozen=True)
class EngineError:
    """A request the engine refused (Node's ``connection_error`` event argument).

    :ivar environ: the WSGI environ of the request (Node's ``req``).
    :ivar code: the Engine.IO error code (0-5).
    :ivar message: the error message sent to the client.
    :ivar context: details, with the Node reference's keys (``transport``, ``sid``,
        ``method``, ``protocol``, ``name``...).
    """

    environ: Mapping[str, Any]
    code: int
    message: str
    context: Mapping[str, Any] = field(default_factory=dict)


class EngineObserver:
    """Told of the engine's events. Every method does nothing here: override what you need."""

    def session_opened(self, session: EngineSocket) -> None:
        """A handshake succeeded (``session.transport`` says on which transport)."""

    def session_upgraded(self, session: EngineSocket) -> None:
        """A polling session moved to WebSocket."""

    def session_closed(self, session: EngineSocket, reason: DisconnectReason) -> None:
        """A session ended."""

    def request_refused(self, error: EngineError) -> None:
        """A request was refused with an Engine.IO error code."""

    def message_received(self, session: EngineSocket, data: str | bytes) -> None:
        """An Engine.IO MESSAGE arrived from the client (``data``: its payload, a
        Socket.IO packet's text or a binary attachment)."""

    def packet_received(self, session: EngineSocket, packet: Packet) -> None:
        """Another Engine.IO packet (PONG, CLOSE, UPGRADE...) arrived from the client."""

    def packets_sent(self, session: EngineSocket, packets: Sequence[OutgoingPacket]) -> None:
        """Engine.IO packets were handed to the transport for the client."""

    def pong_received(self, session: EngineSocket, round_trip: float) -> None:
        """The client answered a ping, ``round_trip`` seconds after it was sent."""

    def slow_consumer(self, session: EngineSocket, dropped: bool) -> None:
        """A session's outgoing buffer was full: packets were dropped to make room or the
        new one was (``dropped``, ``slow_consumer_policy="drop"``), or the session is
        being closed."""


#: The method names an :class:`Observers` fans out; a subclass adds its own.
ENGINE_HOOKS = (
    "session_opened",
    "session_upgraded",
    "session_closed",
    "request_refused",
    "message_received",
    "packet_received",
    "packets_sent",
    "pong_received",
    "slow_consumer",
)


def fan_out(hooks: Iterable[str]) -> Callable[[type], type]:
    """Class decorator: each named method calls the same method of every member."""

    def make(name: str) -> Callable[..., None]:
        def method(self: Any, *args: Any) -> None:
            for member in self.members:
                getattr(member, name)(*args)

        method.__name__ = name
        return method

    def decorate(cls: type) -> type:
        for name in hooks:
            setattr(cls, name, make(name))
        return cls

    return decorate


@fan_out(ENGINE_HOOKS)
class Observers(EngineObserver):
    """Several engine observers, each told everything in turn."""

    def __init__(self, members: Iterable[EngineObserver] = ()) -> None:
        self.members = list(members)


def combine(current: Any, added: Any, group: Callable[[list[Any]], Any]) -> Any:
    """``current`` (None, one observer or a group) with ``added`` too."""
    if current is None:
        return added
    members = current.members if isinstance(current, Observers) else [current]
    return group([*members, added])
