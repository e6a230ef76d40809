"""The server's end of an Engine.IO v3 session (socket.io-client 2.x), sans-IO.

Theory of operation. Everything but the heartbeat is :class:`ServerSession`'s (the
packets, the upgrade exchange, closing). In v3 the heartbeat runs the other way, as the
Node reference's ``Socket`` does for ``protocol === 3``: the *client* sends a ping every
``pingInterval``; the server answers each with a pong (no data) and re-arms one deadline
of ``pingInterval + pingTimeout``. When the deadline passes without a ping the session
ends with "ping timeout". A PONG from the client is "invalid heartbeat direction" and
ends the session with "transport error".

As in v4, while the caller holds back reading (back-pressure) the client's ping may be
among the unread bytes: a deadline that passes while reading was held is re-armed for
``ping_timeout`` instead of closing.

Invariant: the session's one timer is always the ping deadline while it is open.
"""

from __future__ import annotations

from geventsio._types import DisconnectReason
from geventsio.protocol.engineio import PONG, Packet, PacketType
from geventsio.protocol.session import NOTHING, Closed, ServerSession, SessionState, Step

__all__ = ["ServerSessionV3"]


class ServerSessionV3(ServerSession):
    """The server's end of one Engine.IO v3 session: the client pings.

    :param ping_interval: seconds between the client's pings.
    :param ping_timeout: seconds allowed beyond ``ping_interval`` for a ping to arrive.
    """

    def __init__(self, ping_interval: float, ping_timeout: float) -> None:
        super().__init__(ping_interval, ping_timeout)
        self.ping_deadline = ping_interval + ping_timeout

    def start(self) -> Step:
        """The handshake answer is on its way: wait for the first ping."""
        return Step(timer=self.ping_deadline)

    def on_timer(self) -> Step:
        """No ping within the deadline: end with "ping timeout" (or wait on, when reading
        was held meanwhile)."""
        if self.state is not SessionState.OPEN:
            return NOTHING
        held, self._held_since_timer = self._held_since_timer, self._reading_held
        if held:
            return Step(timer=self.ping_timeout)
        detail = f"no ping within {self.ping_deadline:.3g} s"
        return Step(events=(Closed(DisconnectReason.PING_TIMEOUT, detail),))

    def _on_ping(self, packet: Packet) -> Step:
        if self.state is not SessionState.OPEN:
            return NOTHING
        return Step(send=(PONG,), timer=self.ping_deadline)

    def _on_pong(self, packet: Packet) -> Step:
        detail = "invalid heartbeat direction (a client pong)"
        return Step(events=(Closed(DisconnectReason.TRANSPORT_ERROR, detail),))


ServerSessionV3.RULES = {
    **ServerSession.RULES,
    PacketType.PING: ServerSessionV3._on_ping,
    PacketType.PONG: ServerSessionV3._on_pong,
}
