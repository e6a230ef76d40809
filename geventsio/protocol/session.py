"""The Engine.IO v4 session, sans-IO: the rules each end of one session follows.

Theory of operation. A session is a state machine. It is fed packets and the time
(``now``, in seconds of any monotonic clock) and answers with a :class:`Step`: the
packets to send, when to wake it next (each session has one timer) and the events for
the layer above (a message, the end of the session). It never reads the clock, never
waits, never touches a socket: the caller owns those (``engine/socket.py`` on the
server, ``client/engine.py`` in the client), so the rules below are tested by wiring a
:class:`ServerSession` to a :class:`ClientSession` in memory (``tests/protocol``).

The server end (:class:`ServerSession`):

* sends a ping every ``ping_interval`` seconds and allows ``ping_timeout`` for its pong
  (:class:`~geventsio.protocol.heartbeat.Heartbeat`). While the caller holds back
  reading (back-pressure, see :attr:`ServerSession.reading_held`), an unanswered ping
  is sent again instead of closing the session: its pong may be among the bytes not
  read yet;
* delivers MESSAGE data only while open; a CLOSE from the client closes the session
  (the last GET ends with a NOOP); a PING from the client closes it with "transport
  error" (in v4 only the server pings: Node's "invalid heartbeat direction"; Engine.IO
  v3's heartbeat, where the client pings, is :mod:`~geventsio.protocol.session_v3`'s);
  OPEN and UPGRADE from a client are protocol errors;
* runs the upgrade exchange on a new transport: ``2probe`` is answered ``3probe``, then
  ``5`` completes the upgrade; anything else abandons it;
* on a close it decides whether a long-polling session lingers (state CLOSING) until
  the next GET has collected its last packets, and for how long.

The client end (:class:`ClientSession`): answers each ping with a pong carrying the
same data, gives up with "ping timeout" when no ping came within ``pingInterval +
pingTimeout`` of the last one (or of the handshake), delivers MESSAGE data while open,
ends on the server's CLOSE, and probes a WebSocket with ``2probe`` before sending ``5``.

Invariants: the state only moves forward (OPEN, then CLOSING, then CLOSED); messages
are delivered only while OPEN; a session reports its end (:class:`Closed`) at most once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from geventsio import _json
from geventsio._types import DisconnectReason
from geventsio.exceptions import RemoteProtocolError
from geventsio.protocol.engineio import CLOSE, NOOP, PING, UPGRADE, Packet, PacketType
from geventsio.protocol.heartbeat import Heartbeat, HeartbeatAction

logger = logging.getLogger(__name__)

#: Seconds a session closed by the client's CLOSE waits for a GET to end it with NOOP.
CLIENT_CLOSE_GRACE = 0.5
PROBE = "probe"
#: The probe's messages, as they travel on the new transport.
PROBE_PING = f"{int(PacketType.PING)}{PROBE}"
UPGRADE_MESSAGE = str(int(PacketType.UPGRADE))

#: Closes the server decides on: a long-polling session keeps its last packets for the
#: next GET (failures end at once).
_SERVER_DECIDED = frozenset(
    {
        DisconnectReason.FORCED_CLOSE,
        DisconnectReason.FORCED_SERVER_CLOSE,
        DisconnectReason.SERVER_SHUTTING_DOWN,
    }
)


class SessionState(Enum):
    """The life of a session."""

    OPEN = "open"
    #: Ending: on the server, a long-polling session waiting for its last GET; in the
    #: client, a CLOSE sent and the server not yet gone.
    CLOSING = "closing"
    CLOSED = "closed"


class UpgradeState(Enum):
    """Where an upgrade to another transport stands."""

    NONE = "none"
    #: Server: a WebSocket arrived, ``2probe`` is awaited on it.
    AWAIT_PROBE = "await probe"
    #: Server: the probe was answered, ``5`` is awaited.
    AWAIT_UPGRADE = "await upgrade"


@dataclass(frozen=True, slots=True)
class Message:
    """MESSAGE data for the layer above."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The session ended (or must end, when the caller still has to do the close).

    :param reason: the reason, with the Node reference's strings.
    :param detail: what happened, for the logs.
    :param by_peer: the other end sent CLOSE.
    """

    reason: DisconnectReason
    detail: str = ""
    by_peer: bool = False


@dataclass(frozen=True, slots=True)
class Upgraded:
    """The upgrade exchange succeeded: packets travel on the new transport from now on."""


@dataclass(frozen=True, slots=True)
class UpgradeFailed:
    """The upgrade exchange failed: the new transport is closed, the old one goes on."""

    detail: str


Event = Message | Closed | Upgraded | UpgradeFailed


class Step:
    """What the caller does after feeding a session one input.

    :param send: packets to send, in order.
    :param events: what happened, in order.
    :param timer: seconds until the caller calls ``on_timer`` (replacing the timer set
        before); None leaves the timer as it is.
    """

    __slots__ = ("events", "send", "timer")

    def __init__(
        self,
        send: tuple[Packet, ...] = (),
        events: tuple[Event, ...] = (),
        timer: float | None = None,
    ) -> None:
        self.send = send
        self.events = events
        self.timer = timer

    def __repr__(self) -> str:
        return f"Step(send={self.send!r}, events={self.events!r}, timer={self.timer!r})"


#: The step that changes nothing (shared: a Step is never modified).
NOTHING = Step()


@dataclass(frozen=True)
class Handshake:
    """The data of the server's OPEN packet, times in seconds.

    :param sid: the session id.
    :param upgrades: the transports the session may upgrade to.
    :param ping_interval: seconds between pings.
    :param ping_timeout: seconds a ping waits for its pong.
    :param max_payload: the largest payload the server accepts, in bytes.
    """

    sid: str
    upgrades: tuple[str, ...]
    ping_interval: float
    ping_timeout: float
    max_payload: int

    def to_packet(self) -> Packet:
        """The OPEN packet (times in whole milliseconds, keys in Node's order)."""
        body = _json.dumps(
            {
                "sid": self.sid,
                "upgrades": list(self.upgrades),
                "pingInterval": round(self.ping_interval * 1000),
                "pingTimeout": round(self.ping_timeout * 1000),
                "maxPayload": self.max_payload,
            }
        )
        return Packet(PacketType.OPEN, body)

    @classmethod
    def parse(cls, packet: Packet) -> Handshake:
        """Read an OPEN packet.

        :raises RemoteProtocolError: not an OPEN packet, or missing fields.
        """
        if packet.type is not PacketType.OPEN or not isinstance(packet.data, str):
            raise RemoteProtocolError(f"expected an OPEN packet, got {packet.type.name}")
        try:
            data: Any = _json.loads(packet.data)
            return cls(
                sid=str(data["sid"]),
                upgrades=tuple(str(u) for u in data.get("upgrades", ())),
                ping_interval=float(data["pingInterval"]) / 1000,
                ping_timeout=float(data["pingTimeout"]) / 1000,
                max_payload=int(data.get("maxPayload", 1_000_000)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RemoteProtocolError(f"malformed OPEN packet {packet.data[:100]!r}") from exc

    @property
    def heartbeat_period(self) -> float:
        """The longest a client waits for a ping: ``pingInterval + pingTimeout``."""
        return self.ping_interval + self.ping_timeout


class ServerSession:
    """The server's end of one session (see the module's theory of operation).

    :param ping_interval: seconds between pings.
    :param ping_timeout: seconds a ping waits for its pong.
    """

    #: What each packet type from the client does (a NOOP, not listed, does nothing).
    RULES: ClassVar[Mapping[PacketType, Callable[[Any, Packet], Step]]]

    def __init__(self, ping_interval: float, ping_timeout: float) -> None:
        self.state = SessionState.OPEN
        self.upgrade_state = UpgradeState.NONE
        self.close_reason: DisconnectReason | None = None
        self.ping_timeout = ping_timeout
        self._heartbeat = Heartbeat(ping_interval, ping_timeout)
        self._reading_held = False
        self._held_since_timer = False

    # -- heartbeat -------------------------------------------------------------------

    def start(self) -> Step:
        """The handshake answer is on its way: start the heartbeat."""
        return Step(timer=self._heartbeat.first_delay())

    @property
    def reading_held(self) -> bool:
        """Whether the caller holds back reading the client (no pong can be read)."""
        return self._reading_held

    @reading_held.setter
    def reading_held(self, held: bool) -> None:
        self._reading_held = held
        if held:
            self._held_since_timer = True

    def on_timer(self) -> Step:
        """The timer fired: send a ping, send it again, or end on a missing pong."""
        if self.state is not SessionState.OPEN:
            return NOTHING
        decision = self._heartbeat.on_timer()
        held, self._held_since_timer = self._held_since_timer, self._reading_held
        if decision.action is HeartbeatAction.TIMED_OUT:
            if held:  # reading was held since the last timer: the pong may be unread
                return Step(send=(PING,), timer=self.ping_timeout)
            detail = f"no pong within {self.ping_timeout:.3g} s"
            return Step(events=(Closed(DisconnectReason.PING_TIMEOUT, detail),))
        return Step(send=(PING,), timer=decision.next_delay)

    # -- receiving -------------------------------------------------------------------

    def receive(self, packet: Packet) -> Step:
        """One packet from the client, on any transport.

        :raises RemoteProtocolError: the packet has no place here.
        """
        handler = self.RULES.get(packet.type)
        if handler is None:  # a NOOP from a client needs no answer
            return NOTHING
        return handler(self, packet)

    def _on_message(self, packet: Packet) -> Step:
        if self.state is SessionState.OPEN:
            return Step(events=(Message(packet.data),))
        return NOTHING

    def _on_pong(self, packet: Packet) -> Step:
        delay = self._heartbeat.on_pong()
        if delay is not None and self.state is SessionState.OPEN:
            return Step(timer=delay)
        return NOTHING

    def _on_close(self, packet: Packet) -> Step:
        closed = Closed(DisconnectReason.TRANSPORT_CLOSE, "closed by the client", by_peer=True)
        return Step(events=(closed,))

    def _on_ping(self, packet: Packet) -> Step:
        detail = "invalid heartbeat direction (a client ping)"
        return Step(events=(Closed(DisconnectReason.TRANSPORT_ERROR, detail),))

    def _on_forbidden(self, packet: Packet) -> Step:
        raise RemoteProtocolError(f"unexpected {packet.type.name} packet from the client")

    # -- upgrade ---------------------------------------------------------------------

    @property
    def upgrading(self) -> bool:
        """Whether an upgrade exchange runs (from :meth:`begin_upgrade` to
        :meth:`end_upgrade`)."""
        return self.upgrade_state is not UpgradeState.NONE

    @property
    def probed(self) -> bool:
        """The probe was answered: the upgrade waits for the client's ``5``."""
        return self.upgrade_state is UpgradeState.AWAIT_UPGRADE

    def begin_upgrade(self) -> None:
        """A new transport arrived for this session: its first message must be the probe."""
        self.upgrade_state = UpgradeState.AWAIT_PROBE

    def upgrade_message(self, message: str | bytes | None) -> Step:
        """A message on the new transport during the upgrade (None: it closed). Answers
        the probe (the packets to send go on the new transport), then reports
        :class:`Upgraded` or :class:`UpgradeFailed`; the exchange lasts until
        :meth:`end_upgrade` either way."""
        awaiting = self.upgrade_state
        if self.state is SessionState.OPEN:
            if awaiting is UpgradeState.AWAIT_PROBE and message == PROBE_PING:
                self.upgrade_state = UpgradeState.AWAIT_UPGRADE
                return Step(send=(Packet(PacketType.PONG, PROBE),))
            if awaiting is UpgradeState.AWAIT_UPGRADE and message == UPGRADE_MESSAGE:
                return Step(events=(Upgraded(),))
        return Step(events=(UpgradeFailed(f"got {message!r}"),))

    def end_upgrade(self) -> None:
        """The upgrade is over, whatever its outcome."""
        self.upgrade_state = UpgradeState.NONE

    # -- closing ---------------------------------------------------------------------

    def close(
        self,
        reason: DisconnectReason,
        *,
        by_client: bool = False,
        on_polling: bool = False,
        linger: bool | None = None,
    ) -> Step | None:
        """Start ending the session; None when it is already ending.

        The step's one packet is the session's last word on long-polling: CLOSE tells the
        client the server closed, NOOP ends the last GET after the client's own close.
        Its timer, when set, is how long a long-polling session waits for the GET that
        collects it (the state is then CLOSING); without a timer the caller finishes
        the session at once (:meth:`finish`).

        :param by_client: the client sent CLOSE.
        :param on_polling: the session is on long-polling.
        :param linger: wait for the next GET; by default for the closes the server
            decides on (at most ``ping_timeout``) and the client's own
            (:data:`CLIENT_CLOSE_GRACE`), not for failures.
        """
        if self.state is not SessionState.OPEN:
            return None
        self.state = SessionState.CLOSING
        self.close_reason = reason
        final = NOOP if by_client else CLOSE
        if linger is None:
            linger = by_client or reason in _SERVER_DECIDED
        events: tuple[Event, ...] = (Closed(reason),)
        if not (on_polling and linger):
            return Step(send=(final,), events=events)
        grace = CLIENT_CLOSE_GRACE if by_client else self.ping_timeout
        return Step(send=(final,), events=events, timer=grace)

    def finish(self) -> bool:
        """The session is gone; True the first time (the caller releases what it holds)."""
        if self.state is SessionState.CLOSED:
            return False
        self.state = SessionState.CLOSED
        return True


ServerSession.RULES = {
    PacketType.MESSAGE: ServerSession._on_message,
    PacketType.PONG: ServerSession._on_pong,
    PacketType.CLOSE: ServerSession._on_close,
    PacketType.PING: ServerSession._on_ping,
    PacketType.OPEN: ServerSession._on_forbidden,
    PacketType.UPGRADE: ServerSession._on_forbidden,
}


class ClientSession:
    """The client's end of one session (see the module's theory of operation).

    :param handshake: the server's OPEN packet.
    :param now: the time the OPEN packet arrived.
    """

    def __init__(self, handshake: Handshake, now: float) -> None:
        self.handshake = handshake
        self.state = SessionState.OPEN
        self._ping_deadline = now + handshake.heartbeat_period

    def start(self, now: float) -> Step:
        """Arm the ping watchdog."""
        return Step(timer=max(self._ping_deadline - now, 0.0))

    def on_timer(self, now: float) -> Step:
        """The timer fired: wait on when a ping came meanwhile, else end with "ping timeout"."""
        if self.state is not SessionState.OPEN:
            return NOTHING
        remaining = self._ping_deadline - now
        if remaining > 0:
            return Step(timer=remaining)
        detail = f"no ping within {self.handshake.heartbeat_period:g}s"
        return Step(events=(Closed(DisconnectReason.PING_TIMEOUT, detail),))

    def receive(self, packet: Packet, now: float) -> Step:
        """One packet from the server."""
        handler = _CLIENT_RULES.get(packet.type)
        if handler is None:
            logger.debug("ignoring unexpected %s packet", packet.type.name)
            return NOTHING
        return handler(self, packet, now)

    def _on_ping(self, packet: Packet, now: float) -> Step:
        if self.state is not SessionState.OPEN:
            return NOTHING
        self._ping_deadline = now + self.handshake.heartbeat_period
        return Step(send=(Packet(PacketType.PONG, packet.data),))

    def _on_message(self, packet: Packet, now: float) -> Step:
        if self.state is SessionState.OPEN:
            return Step(events=(Message(packet.data),))
        return NOTHING

    def _on_close(self, packet: Packet, now: float) -> Step:
        return Step(
            events=(
                Closed(
                    DisconnectReason.TRANSPORT_CLOSE, "session closed by the server", by_peer=True
                ),
            )
        )

    def _ignore(self, packet: Packet, now: float) -> Step:
        return NOTHING

    # -- upgrade ---------------------------------------------------------------------

    def can_upgrade(self, transport: str) -> bool:
        """Whether the server offered an upgrade to ``transport``."""
        return transport in self.handshake.upgrades

    @staticmethod
    def probe() -> Step:
        """The packets that probe a new transport."""
        return Step(send=(Packet(PacketType.PING, PROBE),))

    @staticmethod
    def probe_answered(packet: Packet) -> None:
        """Check the new transport's first packet.

        :raises RemoteProtocolError: it is not the probe's pong.
        """
        if packet != Packet(PacketType.PONG, PROBE):
            raise RemoteProtocolError(f"unexpected probe answer {packet!r}")

    def complete_upgrade(self) -> Step:
        """The old transport is quiet: switch (the packet goes on the new transport)."""
        if self.state is not SessionState.OPEN:
            return Step(events=(UpgradeFailed("the session ended"),))
        return Step(send=(UPGRADE,), events=(Upgraded(),))

    # -- closing ---------------------------------------------------------------------

    def close(self) -> Step:
        """Close on purpose: a CLOSE goes to the server after what is queued."""
        if self.state is not SessionState.OPEN:
            return NOTHING
        self.state = SessionState.CLOSING
        return Step(send=(CLOSE,))

    def fail(self) -> bool:
        """The session ended on its own; True the first time, while it was open (the
        caller tells the layer above)."""
        if self.state is not SessionState.OPEN:
            return False
        self.state = SessionState.CLOSED
        return True

    def abort(self) -> None:
        """The session is over, whatever its state."""
        self.state = SessionState.CLOSED


_CLIENT_RULES = {
    PacketType.PING: ClientSession._on_ping,
    PacketType.MESSAGE: ClientSession._on_message,
    PacketType.CLOSE: ClientSession._on_close,
    PacketType.NOOP: ClientSession._ignore,
}
