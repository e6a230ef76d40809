"""The Redis adapter: rooms and broadcasts across every server of a cluster.

Each server keeps its own sockets' rooms in memory (this adapter is an
:class:`~geventsio.adapters.memory.InMemoryAdapter`) and talks to the other servers
through Redis pub/sub, in the format of the Node reference's ``@socket.io/redis-adapter``
(see :mod:`geventsio.adapters.redis_wire`), so Node and geventsio servers can share one
cluster. A broadcast is delivered to this server's sockets at once and published; every
other server delivers it to its own sockets. Each socket therefore gets it exactly once,
from the server it is connected to.

Utilities that need the other servers' answers (``fetch_sockets``, broadcasts with acks,
``server_side_emit`` with replies) first ask Redis how many servers subscribe to the
namespace's request channel (``PUBSUB NUMSUB``) and then wait for that many answers, at
most ``requests_timeout`` seconds. While Redis is unreachable, broadcasts and the
join/leave/disconnect utilities still act on this server's sockets (what the other servers
should have got is lost), and ``fetch_sockets`` raises :class:`RedisUnavailable`.

Build one factory per server: ``Server(adapter=redis_adapter("redis://..."))``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent.event import AsyncResult, Event

from geventsio._types import Room, SocketId
from geventsio.adapters import redis_wire as wire
from geventsio.adapters.base import BroadcastOptions, NamespaceView
from geventsio.adapters.memory import InMemoryAdapter
from geventsio.adapters.redis_emitter import RedisEmitter
from geventsio.adapters.redis_link import RedisLink, RedisUnavailable
from geventsio.adapters.redis_remote import RemoteSocket
from geventsio.adapters.redis_wire import MalformedMessage, Request, RequestType
from geventsio.exceptions import AckTimeout, LocalProtocolError
from geventsio.protocol.socketio import Packet, PacketType

logger = logging.getLogger("geventsio.adapters.redis")

ServerSideHandler = Callable[..., Any]


@dataclass(eq=False, slots=True)
class _Gather:
    """The answers one request awaits from the other servers."""

    expected: int
    answers: list[Mapping[str, Any]] = field(default_factory=list)
    done: AsyncResult[list[Mapping[str, Any]]] = field(default_factory=AsyncResult)

    def add(self, answer: Mapping[str, Any]) -> None:
        self.answers.append(answer)
        if len(self.answers) >= self.expected and not self.done.ready():
            self.done.set(self.answers)


@dataclass(eq=False, slots=True)
class _AckRequest:
    """A broadcast with acks of ours, waiting for client counts and acks from others."""

    on_client_count: Callable[[int], None]
    on_ack: Callable[[list[Any]], None]
    timer: Any


class RedisAdapter(InMemoryAdapter):
    """Rooms and broadcasts of one namespace across a cluster of servers.

    :param namespace: the namespace.
    :param link: the server's link to Redis (shared by its namespaces).
    :param key: the prefix of every channel (Node's ``key``).
    :param requests_timeout: seconds to wait for the other servers' answers.
    :param publish_on_specific_response_channel: answer a request on the requester's own
        channel (``<key>-response#<nsp>#<uid>#``) rather than the shared one.
    """

    def __init__(
        self,
        namespace: NamespaceView,
        link: RedisLink,
        *,
        key: str = wire.DEFAULT_KEY,
        requests_timeout: float = 5.0,
        publish_on_specific_response_channel: bool = False,
    ) -> None:
        super().__init__(namespace)
        self.link = link
        self.uid = link.uid
        self.requests_timeout = requests_timeout
        self.channels = wire.Channels.of(key, namespace.name, self.uid)
        self._specific = publish_on_specific_response_channel
        self.closed = False
        self._subscribed = Event()
        self._gathers: dict[str, _Gather] = {}
        self._ack_requests: dict[str, _AckRequest] = {}
        self._server_side_handlers: dict[str, ServerSideHandler] = {}
        self._on_request_type: dict[RequestType, Callable[[Request], None]] = {
            RequestType.SOCKETS: self._answer_sockets,
            RequestType.ALL_ROOMS: self._answer_all_rooms,
            RequestType.REMOTE_JOIN: self._remote_join,
            RequestType.REMOTE_LEAVE: self._remote_leave,
            RequestType.REMOTE_DISCONNECT: self._remote_disconnect,
            RequestType.REMOTE_FETCH: self._answer_fetch,
            RequestType.SERVER_SIDE_EMIT: self._server_side_emitted,
            RequestType.BROADCAST: self._broadcast_with_ack_from,
        }
        channels = self.channels
        link.add(
            channels.pattern, [channels.request, channels.response, channels.own_response], self
        )

    def __repr__(self) -> str:
        return f"<RedisAdapter {self.namespace.name} uid={self.uid}>"

    # -- sending ---------------------------------------------------------------------------

    def _publish(self, channel: bytes, data: bytes) -> None:
        self.link.publish(channel, data)

    def _answer(
        self, request: Request, response_type: RequestType | None = None, **fields: Any
    ) -> None:
        if request.request_id is None:
            return
        channel = self.channels.response_for(request.uid, self._specific)
        self._publish(channel, wire.encode_response(request.request_id, response_type, **fields))

    def _request(
        self, request_type: RequestType, request_id: str | None = None, **fields: Any
    ) -> None:
        self._publish(
            self.channels.request, wire.encode_request(request_type, self.uid, request_id, **fields)
        )

    def _remote_servers(self) -> int:
        """How many other servers serve this namespace.

        :raises RedisUnavailable: Redis cannot be asked.
        """
        if not self._subscribed.is_set() and self.link.accepting:
            self._subscribed.wait(min(1.0, self.requests_timeout))
        count = self.link.numsub(self.channels.request)
        return count - 1 if self._subscribed.is_set() else count

    def server_count(self) -> int:
        """This server and the others subscribed to the namespace's request channel
        (``PUBSUB NUMSUB``, as Node's Redis adapter counts them).

        :raises RedisUnavailable: Redis cannot be asked.
        """
        return 1 + self._remote_servers()

    # -- broadcasting ----------------------------------------------------------------------

    def broadcast(self, packet: Packet, options: BroadcastOptions) -> None:
        message = None
        if not options.flags.local:
            message = wire.encode_broadcast(self.uid, packet, options)
        super().broadcast(packet, options)
        if message is not None:
            self._publish(self.channels.for_rooms(options.rooms), message)

    def broadcast_with_ack(
        self,
        packet: Packet,
        options: BroadcastOptions,
        on_client_count: Callable[[int], None],
        on_ack: Callable[[list[Any]], None],
    ) -> int:
        servers = 1
        if not options.flags.local and self.link.accepting:
            try:
                others = self._remote_servers()
            except RedisUnavailable:
                others = 0
            if others > 0:
                request_id = secrets.token_hex(8)
                timeout = options.flags.timeout or self.requests_timeout
                timer = gevent.get_hub().loop.timer(timeout)
                self._ack_requests[request_id] = _AckRequest(on_client_count, on_ack, timer)
                timer.start(self._forget_ack_request, request_id)
                self._request(
                    RequestType.BROADCAST,
                    request_id,
                    packet=wire.packet_to_wire(packet),
                    opts=wire.options_to_wire(options),
                )
                servers += others
        super().broadcast_with_ack(packet, options, on_client_count, on_ack)
        return servers

    def _forget_ack_request(self, request_id: str) -> None:
        request = self._ack_requests.pop(request_id, None)
        if request is not None:
            request.timer.close()

    # -- utilities across the cluster -------------------------------------------------------

    def fetch_sockets(self, options: BroadcastOptions) -> list[Any]:
        """This server's sockets, then :class:`RemoteSocket` views of the other servers'.

        :raises RedisUnavailable: Redis cannot be reached (the answer would be partial).
        :raises AckTimeout: some servers did not answer within ``requests_timeout``.
        """
        found = super().fetch_sockets(options)
        if options.flags.local:
            return found
        others = self._remote_servers()
        if others <= 0:
            return found
        selection = wire.selection_to_wire(options)
        request_id, gather = self._start_gather(RequestType.REMOTE_FETCH, others, opts=selection)
        try:
            self._finish_gather(request_id, gather, self.requests_timeout, "fetch_sockets")
        except AckTimeout as error:
            error.responses = found + self._remote_sockets_of(gather)  # type: ignore[attr-defined]
            raise
        return found + self._remote_sockets_of(gather)

    def _remote_sockets_of(self, gather: _Gather) -> list[RemoteSocket]:
        return [
            view
            for answer in gather.answers
            for view in self._remote_sockets(answer.get("sockets"))
        ]

    def _remote_sockets(self, details: Any) -> list[RemoteSocket]:
        if not isinstance(details, list):
            self.link.drops.report("fetch answer without a sockets list", self.channels.response)
            return []
        views = []
        for item in details:
            try:
                views.append(RemoteSocket(self, item))
            except MalformedMessage as exc:
                self.link.drops.report(exc.kind, self.channels.response, exc.detail)
        return views

    def add_sockets(self, options: BroadcastOptions, rooms: Iterable[Room]) -> None:
        rooms = sorted(rooms)
        super().add_sockets(options, rooms)
        if not options.flags.local:
            self._request(
                RequestType.REMOTE_JOIN, opts=wire.selection_to_wire(options), rooms=rooms
            )

    def del_sockets(self, options: BroadcastOptions, rooms: Iterable[Room]) -> None:
        rooms = sorted(rooms)
        super().del_sockets(options, rooms)
        if not options.flags.local:
            self._request(
                RequestType.REMOTE_LEAVE, opts=wire.selection_to_wire(options), rooms=rooms
            )

    def disconnect_sockets(self, options: BroadcastOptions, close: bool) -> None:
        super().disconnect_sockets(options, close)
        if not options.flags.local:
            self._request(
                RequestType.REMOTE_DISCONNECT, opts=wire.selection_to_wire(options), close=close
            )

    # -- server-side events -----------------------------------------------------------------

    def on_server_side(self, event: str, handler: ServerSideHandler | None = None) -> Any:
        """Handle an event another server sent with ``server_side_emit``; usable as a
        decorator. The handler gets the event's arguments; its return value is the reply
        (sent only when the sender asked for replies)."""

        def register(function: ServerSideHandler) -> ServerSideHandler:
            self._server_side_handlers[event] = function
            return function

        return register(handler) if handler is not None else register

    def server_side_emit(
        self,
        event: str,
        args: list[Any],
        on_reply: Callable[[list[Any]], None] | None = None,
        timeout: float | None = None,
    ) -> int:
        """Send an event to the other servers of the namespace.

        :param on_reply: ask every server for a reply; called once, in a new greenlet,
            with the replies that arrived within ``timeout`` (fewer than the returned
            count when some servers did not answer in time).
        :param timeout: seconds to wait for the replies (default ``requests_timeout``).
        :returns: how many servers the event was sent to (0 while Redis is unreachable).
        """
        if not isinstance(event, str):
            raise LocalProtocolError(f"an event name must be a string, not {event!r}")
        try:
            others = self._remote_servers() if self.link.accepting else 0
        except RedisUnavailable:
            others = 0
        data = [event, *args]
        if on_reply is None:
            if others > 0:
                self._request(RequestType.SERVER_SIDE_EMIT, data=data)
            return others
        if others <= 0:
            gevent.spawn(on_reply, [])
            return 0
        request_id, gather = self._start_gather(RequestType.SERVER_SIDE_EMIT, others, data=data)
        wait = timeout if timeout is not None else self.requests_timeout

        def deliver() -> None:
            with contextlib.suppress(AckTimeout, RedisUnavailable):  # keep what did arrive
                self._finish_gather(request_id, gather, wait, "server_side_emit")
            try:
                on_reply([answer.get("data") for answer in gather.answers])
            except Exception:
                logger.exception("the reply callback of server_side_emit(%r) raised", event)

        gevent.spawn(deliver)
        return others

    def server_side_call(self, event: str, *args: Any, timeout: float | None = None) -> list[Any]:
        """Send an event to the other servers and wait for one reply from each.

        :raises AckTimeout: not every server replied in time (``.responses`` has the
            replies that arrived).
        """
        try:
            others = self._remote_servers() if self.link.accepting else 0
        except RedisUnavailable:
            others = 0
        if others <= 0:
            return []
        data = [event, *args]
        request_id, gather = self._start_gather(RequestType.SERVER_SIDE_EMIT, others, data=data)
        wait = timeout if timeout is not None else self.requests_timeout
        try:
            self._finish_gather(request_id, gather, wait, "server_side_call")
        except AckTimeout as error:
            error.responses = [answer.get("data") for answer in gather.answers]  # type: ignore[attr-defined]
            raise
        return [answer.get("data") for answer in gather.answers]

    def _server_side_handler(self, event: str) -> ServerSideHandler | None:
        handler = self._server_side_handlers.get(event)
        if handler is None:
            handler = self.namespace.server_side_handler(event)
        return handler

    # -- asking the other servers -------------------------------------------------------------

    def _start_gather(
        self, request_type: RequestType, expected: int, **fields: Any
    ) -> tuple[str, _Gather]:
        request_id = secrets.token_hex(8)
        gather = _Gather(expected)
        self._gathers[request_id] = gather
        self._request(request_type, request_id, **fields)
        return request_id, gather

    def _finish_gather(
        self, request_id: str, gather: _Gather, timeout: float, what: str
    ) -> list[Mapping[str, Any]]:
        """Wait for every answer of a request.

        :raises AckTimeout: not every server answered in time (``gather.answers`` holds
            the answers that arrived).
        """
        try:
            answers: list[Mapping[str, Any]] = gather.done.get(timeout=timeout)
            return answers
        except gevent.Timeout:
            raise AckTimeout(
                f"{what}: {len(gather.answers)} of {gather.expected} server(s) answered "
                f"within {timeout} s"
            ) from None
        finally:
            self._gathers.pop(request_id, None)

    # -- messages from Redis (the link's listener) -----------------------------------------------

    def on_subscribed(self, channel: bytes) -> None:
        if channel == self.channels.request:
            self._subscribed.set()

    def on_link_down(self) -> None:
        self._subscribed.clear()

    def on_broadcast_message(self, channel: bytes, data: bytes) -> None:
        try:
            room = self.channels.room_of(channel)
            if room and room not in self._rooms:
                return  # no socket of ours is in that room
            if wire.decode_uid(data) == self.uid:
                return  # our own broadcast, delivered here already
            message = wire.decode_broadcast(data)
        except MalformedMessage as exc:
            self.link.drops.report(exc.kind, channel, exc.detail)
            return
        if message.packet.namespace != self.namespace.name:
            return
        super().broadcast(message.packet, message.options)

    def on_channel_message(self, channel: bytes, data: bytes) -> None:
        try:
            if channel == self.channels.request:
                self._on_request(wire.decode_request(data))
            else:
                self._on_response(*wire.decode_response(data))
        except MalformedMessage as exc:
            self.link.drops.report(exc.kind, channel, exc.detail)

    def _on_request(self, request: Request) -> None:
        if request.uid == self.uid:
            return  # ours: already done here
        handle = self._on_request_type.get(request.kind)
        if handle is None:
            raise MalformedMessage("answer type on the request channel", request.kind.name)
        handle(request)

    def _on_response(self, request_id: str, body: Mapping[str, Any]) -> None:
        ack_request = self._ack_requests.get(request_id)
        if ack_request is not None:
            kind = body.get("type")
            if kind == RequestType.BROADCAST_CLIENT_COUNT:
                count = body.get("clientCount")
                if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                    raise MalformedMessage("client count is not a count")
                ack_request.on_client_count(count)
            elif kind == RequestType.BROADCAST_ACK:
                ack_request.on_ack([body.get("packet")])
            return
        gather = self._gathers.get(request_id)
        if gather is not None:
            gather.add(body)

    # -- requests from other servers ------------------------------------------------------

    def _answer_sockets(self, request: Request) -> None:
        rooms = wire.rooms_from_wire(request.body.get("rooms"))
        ids = sorted(socket.id for socket in self.select(BroadcastOptions(rooms=rooms)))
        self._answer(request, sockets=ids)

    def _answer_all_rooms(self, request: Request) -> None:
        self._answer(request, rooms=sorted(self._rooms))

    def _legacy_target(self, request: Request) -> Any:
        """The socket of a pre-``opts`` request (``sid``), or None."""
        socket_id = request.field("sid", str)
        return self.namespace.sockets.get(SocketId(socket_id)) if socket_id else None

    def _remote_join(self, request: Request) -> None:
        if "opts" in request.body:
            super().add_sockets(
                request.selection(), wire.rooms_from_wire(request.body.get("rooms"))
            )
            return
        socket = self._legacy_target(request)
        if socket is not None:
            socket.join(Room(request.field("room", str, "")))
            self._answer(request)

    def _remote_leave(self, request: Request) -> None:
        if "opts" in request.body:
            super().del_sockets(
                request.selection(), wire.rooms_from_wire(request.body.get("rooms"))
            )
            return
        socket = self._legacy_target(request)
        if socket is not None:
            socket.leave(Room(request.field("room", str, "")))
            self._answer(request)

    def _remote_disconnect(self, request: Request) -> None:
        close = request.field("close", bool, False)
        if "opts" in request.body:
            super().disconnect_sockets(request.selection(), close)
            return
        socket = self._legacy_target(request)
        if socket is not None:
            socket.disconnect(close)
            self._answer(request)

    def _answer_fetch(self, request: Request) -> None:
        details = [wire.describe_socket(socket) for socket in self.select(request.selection())]
        try:
            self._answer(request, sockets=details)
        except LocalProtocolError as exc:
            logger.warning("socket.data cannot be sent through Redis (%s): sent as null", exc)
            for item in details:
                item["data"] = None
            self._answer(request, sockets=details)

    def _server_side_emitted(self, request: Request) -> None:
        data = request.field("data", list)
        if not data or not isinstance(data[0], str):
            raise MalformedMessage("server-side event is not [name, ...args]")
        handler = self._server_side_handler(data[0])
        if handler is None:
            logger.debug("no handler for the server-side event %r", data[0])
            return
        gevent.spawn(self._run_server_side, handler, data[0], data[1:], request)

    def _run_server_side(
        self, handler: ServerSideHandler, event: str, args: list[Any], request: Request
    ) -> None:
        try:
            reply = handler(*args)
        except Exception:
            logger.exception("the handler of the server-side event %r raised", event)
            return
        try:
            self._answer(request, RequestType.SERVER_SIDE_EMIT, data=reply)
        except LocalProtocolError:
            logger.exception("the reply to the server-side event %r cannot be sent", event)

    def _broadcast_with_ack_from(self, request: Request) -> None:
        if request.request_id is None or request.request_id in self._ack_requests:
            return
        packet = wire.packet_from_wire(request.body.get("packet"))
        if packet.namespace != self.namespace.name:
            return
        packet = Packet(
            PacketType.EVENT, packet.namespace, packet.data, self.namespace.next_ack_id()
        )

        def count(clients: int) -> None:
            self._answer(request, RequestType.BROADCAST_CLIENT_COUNT, clientCount=clients)

        def ack(args: list[Any]) -> None:
            self._answer(request, RequestType.BROADCAST_ACK, packet=args[0] if args else None)

        super().broadcast_with_ack(packet, request.selection(), count, ack)

    # -- life cycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Unsubscribe this namespace (the link closes with its last namespace)."""
        if self.closed:
            return
        self.closed = True
        self.link.remove(self)
        for request in self._ack_requests.values():
            request.timer.close()
        self._ack_requests.clear()
        for gather in self._gathers.values():
            if not gather.done.ready():
                gather.done.set_exception(RedisUnavailable("the adapter was closed"))
        self._gathers.clear()


class RedisAdapterFactory:
    """Builds the :class:`RedisAdapter` of each namespace of ONE server; they share one
    :class:`~geventsio.adapters.redis_link.RedisLink` (a pool, one subscriber, one
    publisher). Pass it as ``Server(adapter=...)``; build a new one for every server.

    :param url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` or ``unix://``.
    :param key: the prefix of every channel (Node's ``key``; the same on every server).
    :param requests_timeout: seconds to wait for the other servers' answers.
    :param publish_on_specific_response_channel: see :class:`RedisAdapter`.
    :param link_options: for :class:`~geventsio.adapters.redis_link.RedisLink`:
        ``reconnect_delay``, ``max_reconnect_delay``, ``heartbeat``, ``max_queue``,
        ``connect_timeout``, ``socket_timeout``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key: str = wire.DEFAULT_KEY,
        requests_timeout: float = 5.0,
        publish_on_specific_response_channel: bool = False,
        **link_options: Any,
    ) -> None:
        if requests_timeout <= 0:
            raise ValueError("requests_timeout must be positive")
        self.key = key
        #: The Redis the servers meet in (a process serving several also shares its
        #: sessions there: see :mod:`geventsio.cluster`).
        self.redis_url = url
        self.requests_timeout = requests_timeout
        self.publish_on_specific_response_channel = publish_on_specific_response_channel
        self.link = RedisLink(url, **link_options)
        # Open adapters by namespace, to refuse a second server on this factory. Weak:
        # a closed adapter (a dynamic namespace removed) must not stay here for good.
        self._adapters: weakref.WeakValueDictionary[str, RedisAdapter] = (
            weakref.WeakValueDictionary()
        )

    def __call__(self, namespace: NamespaceView) -> RedisAdapter:
        existing = self._adapters.get(namespace.name)
        if existing is not None and not existing.closed:
            raise LocalProtocolError(
                f"this Redis adapter factory already serves namespace {namespace.name!r}: "
                "build one factory per server"
            )
        adapter = RedisAdapter(
            namespace,
            self.link,
            key=self.key,
            requests_timeout=self.requests_timeout,
            publish_on_specific_response_channel=self.publish_on_specific_response_channel,
        )
        self._adapters[namespace.name] = adapter
        return adapter

    def close(self) -> None:
        """Close the link (every adapter built here stops reaching the cluster)."""
        self.link.close()


def redis_adapter(url: str = "redis://127.0.0.1:6379/0", **options: Any) -> RedisAdapterFactory:
    """The adapter factory of one server in a Redis cluster: ``Server(adapter=redis_adapter(url))``.

    See :class:`RedisAdapterFactory` for the options.
    """
    return RedisAdapterFactory(url, **options)


__all__ = [
    "RedisAdapter",
    "RedisAdapterFactory",
    "RedisEmitter",
    "RedisUnavailable",
    "RemoteSocket",
    "redis_adapter",
]
