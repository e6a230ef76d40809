"""Requests between the servers of a Redis Streams cluster, over Redis pub/sub.

What needs answers is not kept in the stream: ``@socket.io/redis-streams-adapter``
publishes ``fetchSockets``, ``serverSideEmit`` and broadcasts with acknowledgements on the
channel ``socket.io#<nsp>#`` as MessagePack maps ``{uid, nsp, type, data}`` (socket.io-
adapter's ``ClusterMessage``), and each server answers on the requester's own channel
``socket.io#<nsp>#<uid>#``. :class:`ClusterRequests` does both for one namespace: it
answers the other servers (Node's or ours), and sends this server's requests, waiting at
most ``requests_timeout`` for as many answers as there are other servers (the other
subscribers of ``socket.io#<nsp>#``, counted with ``PUBSUB NUMSUB`` as Node counts them).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import AsyncResult, Event

from geventsio.adapters.base import BroadcastOptions
from geventsio.adapters.memory import InMemoryAdapter
from geventsio.adapters.redis_link import RedisLink, RedisUnavailable
from geventsio.adapters.redis_remote import RemoteSocket
from geventsio.adapters.redis_streams_wire import MessageType
from geventsio.adapters.redis_wire import (
    MalformedMessage,
    describe_socket,
    options_from_wire,
    options_to_wire,
    pack,
    packet_from_wire,
    unpack,
)
from geventsio.exceptions import AckTimeout, LocalProtocolError
from geventsio.protocol.socketio import Packet, PacketType

if TYPE_CHECKING:
    from geventsio.adapters.redis_streams import RedisStreamsAdapter

logger = logging.getLogger("geventsio.adapters.redis_streams")


@dataclass(eq=False)
class _Gather:
    """The answers one request awaits."""

    expected: int
    answers: list[Mapping[str, Any]] = field(default_factory=list)
    done: AsyncResult[None] = field(default_factory=AsyncResult)

    def add(self, answer: Mapping[str, Any]) -> None:
        self.answers.append(answer)
        if len(self.answers) >= self.expected and not self.done.ready():
            self.done.set(None)


@dataclass(eq=False)
class _AckRequest:
    on_client_count: Callable[[int], None]
    on_ack: Callable[[list[Any]], None]
    timer: Any


class ClusterRequests:
    """Requests and answers of one namespace's adapter (the pub/sub link's listener).

    :param adapter: the namespace's adapter.
    :param link: the process's pub/sub link.
    :param channel_prefix: Node's ``channelPrefix``.
    :param requests_timeout: seconds to wait for the other servers' answers.
    """

    def __init__(
        self,
        adapter: RedisStreamsAdapter,
        link: RedisLink,
        channel_prefix: str,
        requests_timeout: float,
    ) -> None:
        self.adapter = adapter
        self.link = link
        self.requests_timeout = requests_timeout
        name = adapter.namespace.name
        self.public = f"{channel_prefix}#{name}#".encode()
        self.private = f"{channel_prefix}#{name}#{adapter.uid}#".encode()
        self._gathers: dict[str, _Gather] = {}
        self._acks: dict[str, _AckRequest] = {}
        self._answers: dict[int, Callable[[Mapping[str, Any]], None]] = {
            MessageType.FETCH_SOCKETS: self._answer_fetch,
            MessageType.SERVER_SIDE_EMIT: self._answer_server_side,
            MessageType.BROADCAST: self._answer_broadcast,
        }
        self._subscribed = Event()
        # Plain subscriptions: Node counts the servers with PUBSUB NUMSUB on ``public``.
        link.add(None, [self.public, self.private], self)

    def close(self) -> None:
        """Stop listening."""
        self.link.remove(self)

    def others(self) -> int:
        """How many other servers serve the namespace (subscribers of the public
        channel, as Node counts them); 0 when Redis cannot tell."""
        if not self._subscribed.is_set() and self.link.accepting:
            self._subscribed.wait(1.0)
        try:
            count = self.link.numsub(self.public)
        except RedisUnavailable:
            return 0
        return max(count - 1 if self._subscribed.is_set() else count, 0)

    # -- the link's listener -----------------------------------------------------------------

    def on_broadcast_message(self, channel: bytes, data: bytes) -> None:
        """Not used: no pattern is subscribed."""

    def on_channel_message(self, channel: bytes, data: bytes) -> None:
        """A request on the public channel, or an answer on our own."""
        if channel == self.public:
            self._on_request(channel, data)
        else:
            self._on_answer(channel, data)

    def _on_request(self, channel: bytes, data: bytes) -> None:
        message = self._decode(data, channel)
        if message is None or message.get("uid") == self.adapter.uid:
            return
        answer = self._answers.get(message.get("type"))  # type: ignore[arg-type]
        body = message.get("data")
        if answer is not None and isinstance(body, dict):
            try:
                answer(message)
            except MalformedMessage as exc:
                self.link.drops.report(exc.kind, channel, exc.detail)

    def _on_answer(self, channel: bytes, data: bytes) -> None:
        message = self._decode(data, channel)
        body = message.get("data") if message is not None else None
        if message is None or not isinstance(body, dict):
            return
        request_id = str(body.get("requestId"))
        kind = message.get("type")
        ack = self._acks.get(request_id)
        if ack is not None and kind == MessageType.BROADCAST_CLIENT_COUNT:
            count = body.get("clientCount")
            ack.on_client_count(count if isinstance(count, int) else 0)
        elif ack is not None and kind == MessageType.BROADCAST_ACK:
            ack.on_ack([body.get("packet")])
        elif (gather := self._gathers.get(request_id)) is not None:
            gather.add(body)

    def on_subscribed(self, channel: bytes) -> None:
        """Redis confirmed a subscription."""
        if channel == self.public:
            self._subscribed.set()

    def on_link_down(self) -> None:
        """Requests in flight time out on their own."""
        self._subscribed.clear()

    def _decode(self, data: bytes, channel: bytes) -> dict[str, Any] | None:
        try:
            message = unpack(data)
        except MalformedMessage as exc:
            self.link.drops.report(exc.kind, channel, exc.detail)
            return None
        if not isinstance(message, dict) or message.get("nsp") != self.adapter.namespace.name:
            return None
        return message

    # -- answering ------------------------------------------------------------------------------

    def _respond(self, request: Mapping[str, Any], kind: MessageType, **data: Any) -> None:
        requester = request.get("uid")
        name = self.adapter.namespace.name
        channel = self.public[: -len(f"{name}#")] + f"{name}#{requester}#".encode()
        message = {"uid": self.adapter.uid, "nsp": name, "type": int(kind), "data": data}
        self.link.publish(channel, pack(message))

    def _answer_fetch(self, request: Mapping[str, Any]) -> None:
        body = request["data"]
        options = options_from_wire(body.get("opts"))
        sockets = [describe_socket(s) for s in self.adapter.select(options)]
        try:
            self._respond(
                request,
                MessageType.FETCH_SOCKETS_RESPONSE,
                requestId=body.get("requestId"),
                sockets=sockets,
            )
        except LocalProtocolError:
            for item in sockets:
                item["data"] = None
            self._respond(
                request,
                MessageType.FETCH_SOCKETS_RESPONSE,
                requestId=body.get("requestId"),
                sockets=sockets,
            )

    def _answer_server_side(self, request: Mapping[str, Any]) -> None:
        body = request["data"]
        packet = body.get("packet")
        if not isinstance(packet, list) or not packet or not isinstance(packet[0], str):
            raise MalformedMessage("server-side event is not [name, ...args]")
        handler = self.adapter.namespace.server_side_handler(packet[0])
        if handler is None:
            return
        gevent.spawn(self._run_server_side, handler, packet, request)

    def _run_server_side(
        self, handler: Callable[..., Any], packet: list[Any], request: Mapping[str, Any]
    ) -> None:
        try:
            reply = handler(*packet[1:])
        except Exception:
            logger.exception("the handler of the server-side event %r raised", packet[0])
            return
        request_id = request["data"].get("requestId")
        if request_id is not None:
            self._respond(
                request, MessageType.SERVER_SIDE_EMIT_RESPONSE, requestId=request_id, packet=reply
            )

    def _answer_broadcast(self, request: Mapping[str, Any]) -> None:
        body = request["data"]
        request_id = body.get("requestId")
        if request_id is None:
            return
        event = packet_from_wire(body.get("packet"))
        packet = Packet(
            PacketType.EVENT,
            self.adapter.namespace.name,
            event.data,
            self.adapter.namespace.next_ack_id(),
        )

        def count(clients: int) -> None:
            self._respond(
                request,
                MessageType.BROADCAST_CLIENT_COUNT,
                requestId=request_id,
                clientCount=clients,
            )

        def ack(args: list[Any]) -> None:
            self._respond(
                request,
                MessageType.BROADCAST_ACK,
                requestId=request_id,
                packet=args[0] if args else None,
            )

        # This server's sockets only: the requester asked every server itself.
        InMemoryAdapter.broadcast_with_ack(
            self.adapter, packet, options_from_wire(body.get("opts")), count, ack
        )

    # -- asking ----------------------------------------------------------------------------------

    def _request(self, kind: MessageType, **data: Any) -> None:
        name = self.adapter.namespace.name
        message = {"uid": self.adapter.uid, "nsp": name, "type": int(kind), "data": data}
        self.link.publish(self.public, pack(message))

    def gather(self, kind: MessageType, others: int, timeout: float, **data: Any) -> _Gather:
        """Send a request and wait for ``others`` answers (or the timeout: then the
        gather holds what arrived)."""
        request_id = secrets.token_hex(8)
        gather = _Gather(others)
        self._gathers[request_id] = gather
        try:
            self._request(kind, requestId=request_id, **data)
            gather.done.wait(timeout)
        finally:
            self._gathers.pop(request_id, None)
        return gather

    def fetch_sockets(self, options: BroadcastOptions, others: int) -> list[RemoteSocket]:
        """The other servers' sockets.

        :raises AckTimeout: not every server answered (``.responses``: what did).
        """
        selection = options_to_wire(options)
        gather = self.gather(
            MessageType.FETCH_SOCKETS, others, self.requests_timeout, opts=selection
        )
        views = [
            RemoteSocket(self.adapter, item)
            for answer in gather.answers
            for item in (answer.get("sockets") or [])
        ]
        if len(gather.answers) < others:
            error = AckTimeout(f"fetch_sockets: {len(gather.answers)} of {others} answered")
            error.responses = views  # type: ignore[attr-defined]
            raise error
        return views

    def server_side_emit(
        self,
        args: list[Any],
        others: int,
        on_reply: Callable[[list[Any]], None] | None,
        timeout: float | None,
    ) -> None:
        """Send a server-side event; ``on_reply`` gets the replies (in a new greenlet)."""
        if on_reply is None:
            self._request(MessageType.SERVER_SIDE_EMIT, packet=args)
            return
        wait = timeout if timeout is not None else self.requests_timeout

        def deliver() -> None:
            gather = self.gather(MessageType.SERVER_SIDE_EMIT, others, wait, packet=args)
            try:
                on_reply([answer.get("packet") for answer in gather.answers])
            except Exception:
                logger.exception("the reply callback of server_side_emit(%r) raised", args[0])

        gevent.spawn(deliver)

    def broadcast_with_ack(
        self,
        packet: Packet,
        options: BroadcastOptions,
        on_client_count: Callable[[int], None],
        on_ack: Callable[[list[Any]], None],
    ) -> None:
        """Ask the other servers to deliver a broadcast with acks and report back."""
        request_id = secrets.token_hex(8)
        timeout = options.flags.timeout or self.requests_timeout
        timer = gevent.get_hub().loop.timer(timeout)
        self._acks[request_id] = _AckRequest(on_client_count, on_ack, timer)
        timer.start(self._forget_ack, request_id)
        wire_packet = {"type": 2, "data": packet.data, "nsp": packet.namespace, "id": packet.id}
        self._request(
            MessageType.BROADCAST,
            requestId=request_id,
            packet=wire_packet,
            opts=options_to_wire(options),
        )

    def _forget_ack(self, request_id: str) -> None:
        request = self._acks.pop(request_id, None)
        if request is not None:
            request.timer.close()
