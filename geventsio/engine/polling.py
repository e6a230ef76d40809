"""The long-polling transport: a GET waits for packets, a POST delivers them.

The session keeps a :class:`PollingBuffer`. A GET takes everything buffered, waiting
until something arrives; while it waits, the client's TCP connection is watched so a
client that gives up is noticed at once (the Node reference closes such a session too).
"""

from __future__ import annotations

import logging
import socket as stdlib_socket
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Protocol

import gevent
from gevent.event import Event

from geventsio._types import DisconnectReason
from geventsio.engine.dropping import Tier, choose_victims
from geventsio.engine.gevent_private import peer_hung_up, watch_readable
from geventsio.engine.http import (
    EngineErrorCode,
    HttpResponse,
    compress_response,
    error_response,
    read_body,
)
from geventsio.engine.takeover import client_socket
from geventsio.exceptions import PayloadTooLarge, RemoteProtocolError
from geventsio.options import EngineOptions
from geventsio.protocol import engineio
from geventsio.protocol.outgoing import OutgoingPacket

logger = logging.getLogger(__name__)

_READ = 1
#: A packet's size in bytes (for ``sum(map(...))``: no generator frame per push).
_SIZE = attrgetter("size")


class PollingBuffer:
    """Packets waiting for the next GET, and the flags that keep requests in order."""

    def __init__(self) -> None:
        self.packets: list[OutgoingPacket] = []
        #: The tier of each buffered packet (see :mod:`~geventsio.engine.dropping`).
        self.tiers: list[Tier] = []
        self.size = 0
        self.waiter = Event()
        self.get_active = False
        self.post_active = False
        self.final: OutgoingPacket | None = None

    def push(
        self, packets: Iterable[OutgoingPacket], limit: int | None, tier: Tier = Tier.KEEP
    ) -> bool:
        """Buffer packets; False (nothing buffered) when ``limit`` bytes would be passed."""
        packets = list(packets)
        added = sum(map(_SIZE, packets))
        if limit is not None and self.size + added > limit:
            return False
        self.packets.extend(packets)
        self.tiers.extend([tier] * len(packets))
        self.size += added
        self.waiter.set()
        return True

    def make_room(self, packets: Sequence[OutgoingPacket], limit: int, tier: Tier) -> bool:
        """Drop buffered packets (volatile, then broadcast, oldest first; none above
        ``tier``) until ``packets`` fit in ``limit`` bytes; False, dropping nothing, if
        they cannot."""
        sizes = [p.size for p in self.packets]
        excess = self.size + sum(p.size for p in packets) - limit
        victims = choose_victims(self.tiers, sizes, excess, tier)
        if victims is None:
            return False
        for index in reversed(victims):
            self.size -= sizes[index]
            del self.packets[index]
            del self.tiers[index]
        return True

    def take(self) -> list[OutgoingPacket]:
        """Everything buffered (and the final packet, once released)."""
        packets, self.packets, self.size = self.packets, [], 0
        self.tiers = []
        if self.final is not None:
            packets.append(self.final)
            self.final = None
        self.waiter.clear()
        return packets

    def idle(self) -> bool:
        """Nothing to answer a GET with yet: no packet buffered, no final packet."""
        return not self.packets and self.final is None

    def release(self, final: OutgoingPacket) -> None:
        """End a waiting GET (or the next one) with ``final`` after what is buffered."""
        self.final = final
        self.waiter.set()


class PayloadCodec(Protocol):
    """How a session's packets travel in polling bodies (one codec per protocol
    revision: :data:`V4_PAYLOAD`, or Engine.IO v3's in :mod:`geventsio.engine.eio3`)."""

    def encode(self, packets: Sequence[OutgoingPacket]) -> HttpResponse:
        """The answer to a GET carrying ``packets``."""

    def decode(self, body: bytes, environ: Mapping[str, Any]) -> list[engineio.Packet]:
        """The packets of a POST body.

        :raises RemoteProtocolError: the body is malformed.
        """


class V4Payload:
    """Engine.IO v4 payloads: packets joined by 0x1E, binary as ``b<base64>``."""

    def encode(self, packets: Sequence[OutgoingPacket]) -> HttpResponse:
        """The answer to a GET carrying ``packets``."""
        if len(packets) == 1:  # the common answer: no join
            body = packets[0].polling_segment()
        else:
            body = engineio.RECORD_SEPARATOR.join([p.polling_segment() for p in packets])
        return HttpResponse(200, body.encode("utf-8"))

    def decode(self, body: bytes, environ: Mapping[str, Any]) -> list[engineio.Packet]:
        """The packets of a POST body."""
        return engineio.decode_payload(body)


V4_PAYLOAD = V4Payload()


class PollingSession(Protocol):
    """What the transport needs of a session
    (:class:`~geventsio.engine.socket.EngineSocket`)."""

    options: EngineOptions
    polling: PollingBuffer | None
    payload_codec: PayloadCodec

    @property
    def sid(self) -> str:
        """The session id."""

    @property
    def websocket(self) -> object | None:
        """The session's WebSocket, once it has one (polling is then over)."""

    @property
    def probed(self) -> bool:
        """An upgrade probe was answered: every GET is answered at once."""

    def receive_packet(self, packet: engineio.Packet) -> None:
        """Act on one packet from the client."""

    def poll_answered(self) -> None:
        """A GET was answered."""

    def close(
        self, reason: DisconnectReason, *, by_client: bool = False, linger: bool | None = None
    ) -> None:
        """End the session."""


def _wait(buffer: PollingBuffer, sock: stdlib_socket.socket | None, timeout: float) -> bool:
    """Wait for packets, at most ``timeout`` seconds; False when the client hung up first.

    The wait ends when the buffer's event is set: by a push, by a timer watcher (the
    deadline: cheaper than the ``gevent.Timeout`` object ``Event.wait(timeout)`` makes
    each time), or by a watcher on the client's socket (it hung up, or sent more): the
    socket's own read watcher when nothing else waits on it (a new watcher costs two
    system calls each time: libev registers its descriptor again), else a new one.
    """
    loop = gevent.get_hub().loop
    wake = buffer.waiter.set
    timer = loop.timer(timeout)
    timer.start(wake)
    watcher: Any = None
    own_watcher: Any = None
    try:
        if sock is not None:
            own_watcher = watch_readable(sock, buffer.waiter)
            if own_watcher is None:
                watcher = loop.io(sock.fileno(), _READ)
                watcher.start(wake)
        buffer.waiter.wait()
    finally:
        timer.close()
        if own_watcher is not None:
            own_watcher.stop()  # the socket's own, idle again
        if watcher is not None:
            watcher.close()
    if sock is None or buffer.packets or buffer.final is not None:
        return True
    return not peer_hung_up(sock)


def handle_get(session: PollingSession, environ: Mapping[str, Any]) -> HttpResponse | None:
    """Answer a polling GET; None when the client hung up and there is no one to answer."""
    buffer = session.polling
    if buffer is None or session.websocket is not None:
        raise RemoteProtocolError("transport mismatch", code=EngineErrorCode.BAD_REQUEST)
    if buffer.get_active:
        logger.info("session %s: overlapping GET requests; closing the session", session.sid)
        session.close(DisconnectReason.TRANSPORT_ERROR)
        return error_response(EngineErrorCode.BAD_REQUEST)
    buffer.get_active = True
    try:
        deadline = session.options.ping_interval + session.options.ping_timeout
        if session.probed and buffer.idle():
            buffer.push((OutgoingPacket(engineio.NOOP),), None)
        while buffer.idle():
            if not _wait(buffer, client_socket(environ), deadline):
                logger.info("session %s: client dropped its GET request", session.sid)
                session.close(DisconnectReason.TRANSPORT_CLOSE, by_client=True, linger=False)
                return None
            if buffer.idle():
                buffer.push((OutgoingPacket(engineio.NOOP),), None)
        packets = buffer.take()
    finally:
        buffer.get_active = False
    response = session.payload_codec.encode(packets)
    session.poll_answered()
    options = session.options
    if (
        options.http_compression
        and len(response.body) >= options.compression_threshold  # else left as it is
        and any(p.compress for p in packets)
    ):
        accept = str(environ.get("HTTP_ACCEPT_ENCODING", ""))
        compress_response(response, accept, options.compression_threshold)
    return response


def handle_post(session: PollingSession, environ: Mapping[str, Any]) -> HttpResponse:
    """Take the packets of a polling POST."""
    buffer = session.polling
    if buffer is None or session.websocket is not None:
        raise RemoteProtocolError("transport mismatch", code=EngineErrorCode.BAD_REQUEST)
    if buffer.post_active:
        logger.info("session %s: overlapping POST requests; closing the session", session.sid)
        session.close(DisconnectReason.TRANSPORT_ERROR)
        return error_response(EngineErrorCode.BAD_REQUEST)
    buffer.post_active = True
    try:
        body = read_body(environ, session.options.max_payload)
        for packet in session.payload_codec.decode(body, environ):
            session.receive_packet(packet)
    except PayloadTooLarge as exc:
        logger.info("session %s: %s; closing the session", session.sid, exc)
        session.close(DisconnectReason.TRANSPORT_ERROR)
        return error_response(EngineErrorCode.BAD_REQUEST, 413)
    except RemoteProtocolError as exc:
        logger.info("session %s: parse error: %s", session.sid, exc)
        session.close(DisconnectReason.PARSE_ERROR)
        return error_response(EngineErrorCode.BAD_REQUEST)
    finally:
        buffer.post_active = False
    return HttpResponse(200, b"ok")
