"""Which revision of the Socket.IO protocol a connection speaks, and what differs.

Every connection speaks Socket.IO v5 (socket.io-client 3 and later), except those on an
Engine.IO v3 session (``allow_eio3``: socket.io-client 2.x), which speak v4. The packets
are the same; the Node reference (``Client``, ``Namespace`` and ``Socket`` where
``conn.protocol === 3``) treats a v4 connection differently in a few places only, and
each is one method here, chosen once per connection (:func:`dialect_for`):

* the main namespace is connected at once, without waiting for a CONNECT (a 2.x client
  sends none for ``/``), with an empty auth;
* a CONNECT carries no auth payload but a query in its namespace (``0/admin?token=x,``):
  the namespace is the path and the auth the query's parameters (:class:`QueryDecoder`);
* a socket's id is the Engine.IO session id (``/nsp#<sid>`` outside the main namespace),
  as the 2.x client computes it on its side;
* the CONNECT acknowledgement has no payload (v5 sends ``{"sid"}``), and connection
  state recovery, which needs that payload, is off;
* a refusal by a middleware (or a connect handler) sends its ``data``, or else its
  message, as the CONNECT_ERROR payload, not ``{"message", "data"}``; an unknown
  namespace still gets ``{"message": "Invalid namespace"}``.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from geventsio._types import SocketId
from geventsio.engine.interface import EngineSession
from geventsio.exceptions import ConnectionRefused
from geventsio.protocol.serializers import PacketDecoder
from geventsio.protocol.socketio import Packet, PacketType

__all__ = ["V4", "V5", "Dialect", "QueryDecoder", "dialect_for"]


class Dialect:
    """Socket.IO v5, as socket.io-client 3 and later speak it."""

    #: The Socket.IO protocol revision.
    revision = 5
    #: The main namespace is connected as soon as the connection opens.
    joins_main_namespace = False
    #: Sockets may recover their session (connection state recovery).
    recovers = True

    def socket_id(self, namespace: str, engine_sid: str) -> SocketId:
        """The id of a new socket: random, never the (secret) Engine.IO session id."""
        return SocketId(secrets.token_urlsafe(15))

    def connect_payload(self, socket_id: str, pid: str | None) -> dict[str, str] | None:
        """The payload of the CONNECT acknowledgement."""
        return {"sid": socket_id} if pid is None else {"sid": socket_id, "pid": pid}

    def refusal_payload(self, refusal: ConnectionRefused) -> Any:
        """The CONNECT_ERROR payload when a middleware or connect handler refuses."""
        return refusal.error_payload()

    def decoder(self, decoder: PacketDecoder) -> PacketDecoder:
        """The decoder of the connection's packets."""
        return decoder


class _V4(Dialect):
    """Socket.IO v4, on Engine.IO v3 sessions (socket.io-client 2.x)."""

    revision = 4
    joins_main_namespace = True
    recovers = False

    def socket_id(self, namespace: str, engine_sid: str) -> SocketId:
        """The Engine.IO session id, behind ``<namespace>#`` outside the main namespace."""
        return SocketId(engine_sid if namespace == "/" else f"{namespace}#{engine_sid}")

    def connect_payload(self, socket_id: str, pid: str | None) -> None:
        """None: a v4 CONNECT acknowledgement is bare."""
        return None

    def refusal_payload(self, refusal: ConnectionRefused) -> Any:
        """Node's ``err.data || err.message``."""
        return refusal.data if refusal.data is not None else refusal.message

    def decoder(self, decoder: PacketDecoder) -> PacketDecoder:
        """The decoder, reading the query of a namespace as the auth."""
        return QueryDecoder(decoder)


V5 = Dialect()
V4 = _V4()


def dialect_for(engine: EngineSession) -> Dialect:
    """The dialect of a connection on ``engine``: v4 on an Engine.IO v3 session."""
    return V4 if engine.protocol == 3 else V5


class QueryDecoder:
    """A decoder whose packets' namespaces lose their query, which becomes the auth of a
    CONNECT (Node parses ``new URL(nsp, ...)``: its path and its search parameters).

    :param inner: the decoder of the packets.
    """

    def __init__(self, inner: PacketDecoder) -> None:
        self.inner = inner

    def feed(self, message: str | bytes) -> Packet | None:
        """Decode one message (see :class:`~geventsio.protocol.socketio.Decoder`)."""
        packet = self.inner.feed(message)
        if packet is None or "?" not in packet.namespace:
            return packet
        parts = urlsplit(packet.namespace)
        auth = dict(parse_qsl(parts.query, keep_blank_values=True))
        data = (
            auth if packet.type is PacketType.CONNECT else packet.data
        )  # CONNECT: the query is the auth
        return Packet(packet.type, parts.path or "/", data, packet.id)
