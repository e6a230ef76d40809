"""The server side of the Socket.IO Admin UI (https://admin.socket.io): what Node's
``instrument()`` from ``@socket.io/admin-ui`` does, for a geventsio server.

Theory of operation. :class:`AdminUI` is an observer of the server (see
:class:`~geventsio.server.observer.Observer`) plus a namespace (``/admin`` by default):

* The namespace's middleware checks the UI's credentials (:mod:`.auth`). Once a UI
  socket is connected it gets ``config`` (the features it may use), then, in
  development mode, ``all_sockets`` (every socket of every namespace, across the
  cluster with the Redis adapter).
* Every 2 seconds the namespace gets ``server_stats`` from each server of the cluster
  (the broadcast goes through the adapter), with the aggregated events counted since
  the last report.
* In development mode every socket's connection, transport upgrade, events in both
  directions, rooms and disconnection are sent to the namespace as they happen
  (``socket_connected``, ``socket_updated``, ``event_received``, ``event_sent``,
  ``room_joined``, ``room_left``, ``socket_disconnected``). The socket's client id and
  transport are kept in ``socket.data["_admin"]``, where the Node reference keeps them.
* Unless read-only, the UI's actions (``emit``, ``join``, ``leave``, ``_disconnect``) act
  on the sockets of a namespace, or of one room of it, across the cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import gevent

from geventsio._types import DisconnectReason, Room
from geventsio.engine.observer import EngineError
from geventsio.exceptions import ConnectionRefused
from geventsio.protocol.engineio import Packet
from geventsio.server.admin.auth import Authenticator, AuthOption
from geventsio.server.admin.serialize import ADMIN_KEY, now, public_data, serialize_socket
from geventsio.server.admin.stats import EventBuffer, default_server_id, server_stats
from geventsio.server.observer import Observer

if TYPE_CHECKING:
    from geventsio.engine.socket import EngineSocket
    from geventsio.protocol.outgoing import OutgoingPacket
    from geventsio.server.namespace import Namespace
    from geventsio.server.server import Server
    from geventsio.server.socket import Socket

logger = logging.getLogger("geventsio.admin")

#: Seconds between two ``server_stats`` reports (as in the Node reference).
STATS_INTERVAL = 2.0
ACTIONS = ("EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT")
MODES = ("development", "production")


def _byte_length(data: str | bytes) -> int:
    if isinstance(data, bytes):
        return len(data)
    return len(data) if data.isascii() else len(data.encode())


class AdminUI(Observer):
    """The Admin UI instrumentation of one server (see the module's theory of operation).

    Build it with :meth:`geventsio.Server.instrument`.
    """

    def __init__(
        self,
        server: Server,
        *,
        auth: AuthOption,
        namespace: str = "/admin",
        read_only: bool = False,
        server_id: str | None = None,
        mode: str = "development",
        stats_interval: float = STATS_INTERVAL,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if stats_interval <= 0:
            raise ValueError("stats_interval must be positive")
        self.server = server
        self.authenticator = Authenticator(auth)
        self.development = mode == "development"
        self.read_only = read_only
        self.server_id = server_id or default_server_id()
        self.features = [*([] if read_only else ACTIONS), "AGGREGATED_EVENTS"]
        if self.development:
            self.features.append("ALL_EVENTS")
        self.events = EventBuffer()
        self.namespace: Namespace = server.of(namespace)
        self.namespace.use(self._authenticate)
        if not self.authenticator.enabled:
            logger.warning(
                "the Admin UI namespace %s has no authentication: anyone who reaches this "
                "server can see every client and act on them; pass auth=",
                namespace,
            )
        server.add_observer(self)
        self._timer: Any = gevent.get_hub().loop.timer(stats_interval, stats_interval)
        self._timer.start(self._on_timer)
        self._send_stats()

    def close(self) -> None:
        """Stop sending stats (the server is going away)."""
        if self._timer is not None:
            self._timer.close()
            self._timer = None

    # -- the UI's connection -----------------------------------------------------------

    def _authenticate(self, socket: Socket, auth: Any) -> None:
        if not self.authenticator.allows(auth):
            raise ConnectionRefused("invalid credentials")
        if isinstance(auth, Mapping) and "password" in auth:
            session = self.authenticator.new_session()
            if session is not None:
                socket.emit("session", session)

    def _greet(self, socket: Socket) -> None:
        """A UI socket is connected: its actions, ``config``, then ``all_sockets``."""
        if not self.read_only:
            socket.on("emit", lambda *args: self._act(self._emit, args))
            socket.on("join", lambda *args: self._act(self._join, args))
            socket.on("leave", lambda *args: self._act(self._leave, args))
            socket.on("_disconnect", lambda *args: self._act(self._disconnect, args))
        socket.emit("config", {"supportedFeatures": self.features})
        if self.development:
            socket.emit("all_sockets", self._all_sockets())

    def _all_sockets(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for namespace in self.server.all_namespaces():
            try:
                sockets = namespace.fetch_sockets()
            except Exception:
                logger.exception("the Admin UI could not list the sockets of %s", namespace.name)
                continue
            found.extend(serialize_socket(s, namespace.name) for s in sockets)
        return found

    # -- actions -----------------------------------------------------------------------

    def _act(self, action: Any, args: Sequence[Any]) -> None:
        if not args or not isinstance(args[0], str):
            logger.info("Admin UI action without a namespace name ignored")
            return
        namespace = self.server.get_namespace(args[0])
        if namespace is None:
            logger.info("Admin UI action on unknown namespace %r ignored", args[0])
            return
        try:
            action(namespace, *args[1:])
        except (TypeError, ValueError) as exc:
            logger.info("Admin UI action refused: %s", exc)

    @staticmethod
    def _selection(namespace: Namespace, room: Any) -> Any:
        if room in (None, ""):
            return namespace
        if not isinstance(room, str):
            raise TypeError(f"a room filter must be a string, not {room!r}")
        return namespace.in_(room)

    def _emit(self, namespace: Namespace, room: Any, event: Any, *args: Any) -> None:
        if not isinstance(event, str):
            raise TypeError(f"an event name must be a string, not {event!r}")
        self._selection(namespace, room).emit(event, *args)

    def _join(self, namespace: Namespace, room: Any, selection: Any = None) -> None:
        if not isinstance(room, str):
            raise TypeError(f"a room must be a string, not {room!r}")
        self._selection(namespace, selection).sockets_join(room)

    def _leave(self, namespace: Namespace, room: Any, selection: Any = None) -> None:
        if not isinstance(room, str):
            raise TypeError(f"a room must be a string, not {room!r}")
        self._selection(namespace, selection).sockets_leave(room)

    def _disconnect(self, namespace: Namespace, close: Any = False, selection: Any = None) -> None:
        self._selection(namespace, selection).disconnect_sockets(bool(close))

    # -- stats -------------------------------------------------------------------------

    def _on_timer(self) -> None:  # in the hub: hand the work to a greenlet
        gevent.spawn(self._send_stats)

    def _send_stats(self) -> None:
        try:
            self.namespace.emit(
                "server_stats", server_stats(self.server, self.server_id, self.events)
            )
        except Exception:
            logger.exception("the Admin UI stats could not be sent")

    # -- what the server tells us ------------------------------------------------------

    def session_opened(self, session: EngineSocket) -> None:
        self.events.push("rawConnection")

    def session_closed(self, session: EngineSocket, reason: DisconnectReason) -> None:
        self.events.push("rawDisconnection", reason.value)

    def request_refused(self, error: EngineError) -> None:
        pass

    def message_received(self, session: EngineSocket, data: str | bytes) -> None:
        if data:
            self.events.push("packetsIn")
            self.events.push("bytesIn", count=_byte_length(data))

    def packet_received(self, session: EngineSocket, packet: Packet) -> None:
        self.message_received(session, packet.data)

    def packets_sent(self, session: EngineSocket, packets: Sequence[OutgoingPacket]) -> None:
        for outgoing in packets:
            data = outgoing.packet.data
            if data:
                self.events.push("packetsOut")
                self.events.push("bytesOut", count=_byte_length(data))

    def socket_connected(self, socket: Socket) -> None:
        if self.development:
            self._watch(socket)
        if socket.namespace is self.namespace:
            socket.connection.run_soon(self._greet, socket)

    def _watch(self, socket: Socket) -> None:
        name = socket.namespace.name
        engine = socket.conn
        socket.data[ADMIN_KEY] = {"clientId": engine.sid[:12], "transport": engine.transport.value}
        self.namespace.emit("socket_connected", serialize_socket(socket, name), now())

        def upgraded(transport: Any) -> None:
            socket.data[ADMIN_KEY]["transport"] = str(transport)
            update = {"id": socket.id, "nsp": name, "transport": str(transport)}
            self.namespace.emit("socket_updated", update)

        engine.on("upgrade", upgraded)
        if socket.namespace is self.namespace:
            return
        socket.on_any(
            lambda *args: self.namespace.emit("event_received", name, socket.id, list(args), now())
        )
        socket.on_any_outgoing(
            lambda *args: self.namespace.emit("event_sent", name, socket.id, list(args), now())
        )

    def socket_disconnected(self, socket: Socket, reason: DisconnectReason) -> None:
        if self.development:
            self.namespace.emit(
                "socket_disconnected", socket.namespace.name, socket.id, reason.value, now()
            )

    def room_joined(self, socket: Socket, room: Room) -> None:
        if self.development:
            self.namespace.emit("room_joined", socket.namespace.name, room, socket.id, now())

    def room_left(self, socket: Socket, room: Room) -> None:
        if self.development:
            # After the disconnect is reported, as Node's instrumentation does.
            args = ("room_left", socket.namespace.name, room, socket.id, now())
            gevent.get_hub().loop.run_callback(lambda: gevent.spawn(self.namespace.emit, *args))

    def server_closing(self) -> None:
        self.close()

    def data_updated(self, socket: Socket) -> None:
        """Tell the UI that ``socket.data`` changed (call it after changing the data: the
        Node reference notices changes by itself through a proxy)."""
        if self.development:
            update = {
                "id": socket.id,
                "nsp": socket.namespace.name,
                "data": public_data(socket.data),
            }
            self.namespace.emit("socket_updated", update)
