"""Engine.IO v3 sessions (socket.io-client 2.x), served when ``allow_eio3`` is set.

An :class:`EngineSocketV3` is an :class:`~geventsio.engine.socket.EngineSocket` with the
v3 rules (:class:`~geventsio.protocol.session_v3.ServerSessionV3`: the client pings) and
the v3 wire forms (:mod:`geventsio.protocol.engineio_v3`), set up once per session so
that the v4 path carries no check per message:

* on long-polling, its :class:`V3Payload` writes and reads the bodies: a string payload,
  or a binary one (``application/octet-stream``) when the answer holds binary and the
  client takes it (no ``b64`` in the handshake's query), as the Node reference does;
* on WebSocket, the server wraps the connection in a :class:`V3WebSocket`, which turns
  the v3 binary messages (a type byte first, or ``b4<base64>`` text for a client that
  asked for ``b64``) into the form the session reads, and back on the way out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from geventsio._types import EngineSid
from geventsio.engine.dropping import Tier
from geventsio.engine.http import HttpResponse
from geventsio.engine.socket import EngineSocket, SessionHandler, SessionRegistry
from geventsio.engine.websocket import CLOSE_HANDSHAKE_TIMEOUT, WebSocketConnection
from geventsio.options import EngineOptions, Transport
from geventsio.protocol import engineio_v3
from geventsio.protocol.engineio import Packet, PacketType
from geventsio.protocol.outgoing import OutgoingPacket
from geventsio.protocol.session_v3 import ServerSessionV3

__all__ = ["EngineSocketV3", "V3Payload", "V3WebSocket", "supports_binary"]


def supports_binary(query: Mapping[str, str]) -> bool:
    """Whether the client of a request takes binary (Node: no ``b64`` in the query)."""
    return not query.get("b64")


class V3Payload:
    """Engine.IO v3 long-polling bodies for one session.

    :param binary: the client takes binary payloads (set from the handshake's query).
    """

    def __init__(self, binary: bool) -> None:
        self.binary = binary

    def encode(self, packets: Sequence[OutgoingPacket]) -> HttpResponse:
        """The answer to a GET: binary when it holds binary and the client takes it."""
        plain = [p.packet for p in packets]
        if self.binary and any(p.is_binary for p in plain):
            body = engineio_v3.encode_binary_payload(plain)
            return HttpResponse(200, body, content_type=engineio_v3.BINARY_CONTENT_TYPE)
        return HttpResponse(200, engineio_v3.encode_string_payload(plain).encode("utf-8"))

    def decode(self, body: bytes, environ: Mapping[str, Any]) -> list[Packet]:
        """The packets of a POST body, binary by its ``Content-Type``."""
        if environ.get("CONTENT_TYPE") == engineio_v3.BINARY_CONTENT_TYPE:
            return engineio_v3.decode_binary_payload(body)
        return engineio_v3.decode_string_payload(body)


class EngineSocketV3(EngineSocket):
    """One Engine.IO v3 session (see the module's docstring); the parameters are
    :class:`~geventsio.engine.socket.EngineSocket`'s, and:

    :param binary: the client takes binary on long-polling (no ``b64`` in the handshake).
    """

    protocol = 3
    SESSION = ServerSessionV3
    HEARTBEAT = PacketType.PING

    def __init__(
        self,
        sid: EngineSid,
        options: EngineOptions,
        environ: Mapping[str, Any],
        handler: SessionHandler,
        registry: SessionRegistry,
        transport: Transport,
        *,
        binary: bool = True,
    ) -> None:
        super().__init__(sid, options, environ, handler, registry, transport)
        self.payload_codec = V3Payload(binary)


class _V3BinaryPacket(OutgoingPacket):
    """A binary packet as an Engine.IO v3 WebSocket carries it (made per session: the
    shared packet's cached frame is v4's)."""

    __slots__ = ("_binary",)

    def __init__(self, original: OutgoingPacket, binary: bool) -> None:
        super().__init__(original.packet, original.compress)
        self._binary = binary

    def ws_message(self) -> str | bytes:
        """The v3 message: the type byte then the bytes, or ``b4<base64>`` text."""
        if self._message is None:
            self._message = engineio_v3.encode_ws(self.packet, self._binary)
        return self._message


def _is_binary(outgoing: OutgoingPacket) -> bool:
    """Whether a packet is binary; one made from text bytes is not (and is not decoded)."""
    return outgoing.text_utf8 is None and outgoing.packet.is_binary


class V3WebSocket(WebSocketConnection):
    """A WebSocket of an Engine.IO v3 session, in the v4 form the session reads.

    :param inner: the connection.
    :param binary: the client takes binary messages (no ``b64`` in its query).
    """

    def __init__(self, inner: WebSocketConnection, binary: bool) -> None:
        self.inner = inner
        self.binary = binary

    @property
    def reads_interruptible(self) -> bool:
        return self.inner.reads_interruptible

    def receive(self) -> str | bytes | None:
        """The next message: a v3 binary message (or ``b4<base64>``) as its bytes.

        :raises RemoteProtocolError: a malformed message, or binary that is no MESSAGE.
        """
        message = self.inner.receive()
        if isinstance(message, bytes) or (message is not None and message[:1] == "b"):
            return engineio_v3.decode_ws(message).data  # always bytes: a binary MESSAGE
        return message

    def _v3(self, packets: Sequence[OutgoingPacket]) -> Sequence[OutgoingPacket]:
        if not any(_is_binary(p) for p in packets):
            return packets
        return [_V3BinaryPacket(p, self.binary) if _is_binary(p) else p for p in packets]

    def send_packets(self, packets: Sequence[OutgoingPacket], tier: Tier = Tier.KEEP) -> bool:
        """Queue packets, binary ones in their v3 form."""
        return self.inner.send_packets(self._v3(packets), tier)

    def make_room(self, packets: Sequence[OutgoingPacket], tier: Tier) -> bool:
        """As the inner connection's."""
        return self.inner.make_room(self._v3(packets), tier)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """As the inner connection's."""
        self.inner.close(code, reason)

    def drain(self, timeout: float) -> None:
        """As the inner connection's."""
        self.inner.drain(timeout)

    def close_and_wait(
        self, code: int = 1000, reason: str = "", timeout: float = CLOSE_HANDSHAKE_TIMEOUT
    ) -> None:
        """As the inner connection's."""
        self.inner.close_and_wait(code, reason, timeout)

    @property
    def detached(self) -> bool:
        """As the inner connection's."""
        return self.inner.detached

    @property
    def writable(self) -> bool:
        """As the inner connection's."""
        return self.inner.writable
