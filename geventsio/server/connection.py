"""One Engine.IO session and the namespace sockets multiplexed on it (Node's ``Client``).

Theory of operation. The engine hands every message to :meth:`Connection.receive` in the
transport's greenlet, which must not block: it decodes, settles acknowledgements at once
(so a handler blocked in ``call()`` still gets its answer), and queues everything else —
namespace connects, events, disconnects — for the connection's worker greenlet, which
runs them in arrival order. The worker exists only while there is work; an idle
connection has none.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import gevent

from geventsio._types import DisconnectReason
from geventsio.engine.outgoing import OutgoingPacket
from geventsio.engine.socket import EngineSocket
from geventsio.exceptions import RemoteProtocolError
from geventsio.protocol import socketio
from geventsio.protocol.socketio import Packet, PacketType

if TYPE_CHECKING:
    from geventsio.server.server import Server
    from geventsio.server.socket import Socket

logger = logging.getLogger(__name__)


class Connection:
    """The Socket.IO side of one Engine.IO session.

    :param server: the Socket.IO server.
    :param engine: the Engine.IO session.
    """

    def __init__(self, server: Server, engine: EngineSocket) -> None:
        self.server = server
        self.engine = engine
        #: Connected sockets by namespace name.
        self.sockets: dict[str, Socket] = {}
        self._decoder = socketio.Decoder(server.decoder_limits)
        # A deque only while there is work (an empty deque costs ~600 bytes).
        self._queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] | None = None
        self._working = False
        self.closed = False
        self._connect_timer: Any = gevent.get_hub().loop.timer(server.connect_timeout)
        self._connect_timer.start(self._on_connect_timeout)

    # -- work in order ---------------------------------------------------------------

    def run_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` in this connection's worker, after what is queued."""
        if self._queue is None:
            self._queue = deque()
        self._queue.append((function, args))
        if not self._working:
            self._working = True
            self.server.workers.submit(self._run_worker)

    def _run_worker(self) -> None:
        queue = self._queue
        try:
            while queue:
                function, args = queue.popleft()
                try:
                    function(*args)
                except Exception:
                    logger.exception("connection %s: unexpected error", self.engine.sid)
        finally:
            self._working = False
            if not queue:
                self._queue = None

    # -- from the engine -------------------------------------------------------------

    def receive(self, data: str | bytes) -> None:
        """One Engine.IO message arrived (transport greenlet: never blocks)."""
        try:
            packet = self._decoder.feed(data)
        except RemoteProtocolError as exc:
            logger.info("connection %s: parse error: %s", self.engine.sid, exc)
            self.engine.close(DisconnectReason.PARSE_ERROR)
            return
        if packet is not None:
            _RECEIVERS[packet.type](self, packet)

    def _on_connect(self, packet: Packet) -> None:
        self.run_soon(self.server.connect_namespace, self, packet.namespace, packet.data)

    def _on_disconnect(self, packet: Packet) -> None:
        socket = self.sockets.get(packet.namespace)
        if socket is not None:
            self.run_soon(socket.on_close, DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)

    def _on_event(self, packet: Packet) -> None:
        socket = self.sockets.get(packet.namespace)
        if socket is None:
            logger.debug(
                "connection %s: event for unconnected namespace %s ignored",
                self.engine.sid,
                packet.namespace,
            )
            return
        socket.receive_event(packet)

    def _on_ack(self, packet: Packet) -> None:
        socket = self.sockets.get(packet.namespace)
        if socket is not None:
            socket.receive_ack(packet)

    def _on_unexpected(self, packet: Packet) -> None:
        logger.info(
            "connection %s: a client may not send %s; closing", self.engine.sid, packet.type.name
        )
        self.engine.close(DisconnectReason.PARSE_ERROR)

    def on_engine_close(self, reason: DisconnectReason) -> None:
        """The Engine.IO session ended: every socket disconnects, after queued work."""
        self.closed = True
        self._connect_timer.close()
        self.run_soon(self._close_sockets, reason)

    def _close_sockets(self, reason: DisconnectReason) -> None:
        for socket in list(self.sockets.values()):
            socket.on_close(reason)

    # -- namespaces ------------------------------------------------------------------

    def namespace_connected(self, socket: Socket) -> None:
        """A socket's CONNECT was acknowledged."""
        self.sockets[socket.namespace.name] = socket
        self._connect_timer.close()

    def namespace_disconnected(self, socket: Socket) -> None:
        """A socket left; its namespace slot is free again."""
        if self.sockets.get(socket.namespace.name) is socket:
            del self.sockets[socket.namespace.name]

    def _on_connect_timeout(self) -> None:  # hub callback
        if not self.sockets and not self.closed:
            logger.info(
                "connection %s: no namespace joined within %.3g s; closing",
                self.engine.sid,
                self.server.connect_timeout,
            )
            gevent.spawn(self.engine.close, DisconnectReason.FORCED_SERVER_CLOSE)

    # -- to the engine ---------------------------------------------------------------

    def write(self, packets: Sequence[OutgoingPacket], volatile: bool = False) -> None:
        """Send encoded packets (dropped when ``volatile`` and the client is busy)."""
        if volatile and not self.engine.writable:
            return
        self.engine.send_packets(packets)

    def write_packet(self, packet: Packet) -> None:
        """Encode and send one Socket.IO packet."""
        self.engine.send_packets([OutgoingPacket.message(part) for part in socketio.encode(packet)])

    def disconnect_all(self) -> None:
        """Disconnect every namespace (each client socket is told, none reconnects), then
        close the connection (Node's ``client._disconnect``)."""
        for socket in list(self.sockets.values()):
            socket.disconnect()
        self.close(DisconnectReason.FORCED_CLOSE)

    def close(self, reason: DisconnectReason = DisconnectReason.FORCED_CLOSE) -> None:
        """Close the whole Engine.IO session."""
        self.engine.close(reason)


_RECEIVERS: dict[PacketType, Callable[[Connection, Packet], None]] = {
    PacketType.CONNECT: Connection._on_connect,
    PacketType.DISCONNECT: Connection._on_disconnect,
    PacketType.EVENT: Connection._on_event,
    PacketType.BINARY_EVENT: Connection._on_event,
    PacketType.ACK: Connection._on_ack,
    PacketType.BINARY_ACK: Connection._on_ack,
    PacketType.CONNECT_ERROR: Connection._on_unexpected,
}
