"""The counts behind the Prometheus metrics, kept by an observer of the server.

Theory of operation. :class:`MetricsObserver` is told of every session, packet, event and
refusal (see :class:`~geventsio.server.observer.Observer`) and only adds to plain
integers and floats: no lock, no label lookup, no allocation on the hot path (gevent
runs one greenlet at a time, so a ``+=`` is never interleaved). The exposition format is
produced from these numbers when Prometheus scrapes (``exposition.py``). Every label
takes values from a closed set, so the number of series is bounded:

* packet types: the Engine.IO types, and for MESSAGE packets the Socket.IO type found in
  their first character (binary messages are attachments);
* refusal codes: Node's 0-5; disconnect reasons: :class:`~geventsio.DisconnectReason`;
* handler events: the first ``max_event_labels`` distinct event names that have a
  handler; any other event is counted as ``"_other"``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from geventsio._types import DisconnectReason
from geventsio.engine.observer import EngineError
from geventsio.options import Transport
from geventsio.protocol.engineio import Packet, PacketType
from geventsio.server.observer import Observer

if TYPE_CHECKING:
    from geventsio.engine.socket import EngineSocket
    from geventsio.protocol.outgoing import OutgoingPacket
    from geventsio.server.connection import Connection
    from geventsio.server.socket import Socket

#: The label pooling every event that has no label of its own.
OTHER_EVENT = "_other"

#: Seconds: handler durations (Prometheus' defaults, finer at the low end).
HANDLER_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip
#: Seconds: ping round trips.
RTT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_SOCKETIO_TYPES = {
    "0": "connect",
    "1": "disconnect",
    "2": "event",
    "3": "ack",
    "4": "connect_error",
    "5": "binary_event",
    "6": "binary_ack",
}
PACKET_TYPES = (
    *(t.name.lower() for t in PacketType if t is not PacketType.MESSAGE),
    *_SOCKETIO_TYPES.values(),
    "attachment",
    "malformed",
)


_MESSAGE = PacketType.MESSAGE

#: Per label: ``[packets, bytes]``, the two numbers one packet adds to.
Tally = list[int]


class Direction:
    """The packets and bytes of one direction, by label (see :data:`PACKET_TYPES`)."""

    __slots__ = ("attachment", "by_label", "by_prefix", "by_type", "malformed")

    def __init__(self) -> None:
        self.by_label: dict[str, Tally] = {label: [0, 0] for label in PACKET_TYPES}
        self.by_prefix = {char: self.by_label[name] for char, name in _SOCKETIO_TYPES.items()}
        self.by_type = {t: self.by_label[t.name.lower()] for t in PacketType if t.name != "MESSAGE"}
        self.attachment = self.by_label["attachment"]
        self.malformed = self.by_label["malformed"]

    def message(self, session: object, data: str | bytes) -> None:
        """Count one MESSAGE under the Socket.IO type its text starts with (binary ones
        are attachments), with its size as the Engine.IO codec writes it (the type
        character included). The signature is the observer's ``message_received``."""
        if type(data) is str:
            tally = self.by_prefix.get(data[:1], self.malformed)
            size = len(data) if data.isascii() else len(data.encode())
        else:
            tally, size = self.attachment, len(data)
        tally[0] += 1
        tally[1] += size + 1

    def packets(self, session: object, packets: Sequence[OutgoingPacket]) -> None:
        """Count packets of any type (the observer's ``packets_sent``)."""
        for outgoing in packets:
            utf8 = outgoing.text_utf8
            if utf8 is not None:  # a text MESSAGE as wire bytes: counted without decoding
                tally = self.by_prefix.get(utf8[1:2].decode("ascii", "replace"), self.malformed)
                tally[0] += 1
                tally[1] += len(utf8)
                continue
            packet = outgoing.packet
            if packet.type is _MESSAGE:
                self.message(session, packet.data)
            else:
                self.other(packet)

    def other(self, packet: Packet) -> None:
        """Count a packet that is no MESSAGE."""
        tally = self.by_type[packet.type]
        tally[0] += 1
        tally[1] += len(packet.data) + 1


def has_handler(socket: Socket, event: str) -> bool:
    """Whether ``event`` has a handler of its own (not the catch-all) for ``socket``."""
    return socket.namespace.handler_for(event) is not None or socket.handles(event)


class Histogram:
    """Counts per bucket (not cumulative), their sum and their count."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one value."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as Prometheus wants them, ``+Inf`` last."""
        total, pairs = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            pairs.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return pairs


class MetricsObserver(Observer):
    """Counts what happens in one server (see the module's theory of operation).

    :param max_event_labels: distinct event names the handler histogram keeps apart.
    :param known_event: ``f(socket, event) -> bool``: whether an event earns a label of
        its own (default: it has a handler in its namespace or on its socket; a
        catch-all handler does not count).
    """

    def __init__(
        self,
        max_event_labels: int = 100,
        known_event: Callable[[Socket, str], bool] | None = None,
    ) -> None:
        if max_event_labels < 0:
            raise ValueError("max_event_labels must be 0 or more")
        self.max_event_labels = max_event_labels
        self.known_event = known_event or has_handler
        self.handshakes = dict.fromkeys(Transport, 0)
        self.upgrades = 0
        self.refusals: dict[int, int] = dict.fromkeys(range(6), 0)
        self.disconnects = dict.fromkeys(DisconnectReason, 0)
        self.received = Direction()
        self.sent = Direction()
        setattr(self, "message_received", self.received.message)  # noqa: B010
        setattr(self, "packets_sent", self.sent.packets)  # noqa: B010
        self.handlers: dict[str, Histogram] = {OTHER_EVENT: Histogram(HANDLER_BUCKETS)}
        self.ping_rtt = Histogram(RTT_BUCKETS)
        self.pauses = 0
        self.slow_consumer_disconnects = 0
        self.slow_consumer_drops = 0

    # -- engine ---------------------------------------------------------------------

    def session_opened(self, session: EngineSocket) -> None:
        self.handshakes[session.transport] += 1

    def session_upgraded(self, session: EngineSocket) -> None:
        self.upgrades += 1

    def session_closed(self, session: EngineSocket, reason: DisconnectReason) -> None:
        self.disconnects[reason] += 1

    def request_refused(self, error: EngineError) -> None:
        self.refusals[error.code] = self.refusals.get(error.code, 0) + 1

    # message_received and packets_sent are the Direction methods themselves (set in
    # __init__): one call less on the path of every packet.

    def packet_received(self, session: EngineSocket, packet: Packet) -> None:
        self.received.other(packet)

    def pong_received(self, session: EngineSocket, round_trip: float) -> None:
        self.ping_rtt.observe(round_trip)

    def slow_consumer(self, session: EngineSocket, dropped: bool) -> None:
        if dropped:
            self.slow_consumer_drops += 1
        else:
            self.slow_consumer_disconnects += 1

    # -- Socket.IO ------------------------------------------------------------------

    def event_handled(self, socket: Socket, event: str, seconds: float) -> None:
        histogram = self.handlers.get(event)
        if histogram is None:
            histogram = self._histogram_for(socket, event)
        histogram.counts[bisect_left(histogram.bounds, seconds)] += 1  # observe(), inlined
        histogram.sum += seconds

    def _histogram_for(self, socket: Socket, event: str) -> Histogram:
        """A new label for an event that has a handler, while there is room; else the pool."""
        if not self.known_event(socket, event) or len(self.handlers) > self.max_event_labels:
            return self.handlers[OTHER_EVENT]
        histogram = self.handlers[event] = Histogram(HANDLER_BUCKETS)
        return histogram

    def reading_paused(self, connection: Connection) -> None:
        self.pauses += 1
