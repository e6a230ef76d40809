"""The messages of the Node reference's Redis adapter and emitter, without I/O.

What travels through Redis is what ``@socket.io/redis-adapter`` 8 (its default pub/sub
mode, not the sharded one) and ``@socket.io/redis-emitter`` 5 publish, so Node servers,
Node emitters and geventsio servers can share one Redis:

* Broadcasts go to ``<key>#<nsp>#``, or to ``<key>#<nsp>#<room>#`` when they target
  exactly one room, as the MessagePack array ``[uid, packet, opts]``: ``packet`` is the
  socket.io-parser object ``{type, data, nsp}`` (binary stays MessagePack ``bin``) and
  ``opts`` is ``{rooms: [...], except: [...], flags: {...}}``.
* Requests between servers go to ``<key>-request#<nsp>#`` as a map ``{uid, requestId,
  type, ...}`` (:class:`RequestType`); answers go to ``<key>-response#<nsp>#`` (or to
  ``<key>-response#<nsp>#<uid>#``, the requester's own channel).

Node writes some requests and answers as JSON text and others as MessagePack; a reader
tells them apart by the first byte (``{`` is JSON). We write what Node writes: JSON where
Node does, unless the value holds binary, which only MessagePack can carry; MessagePack
for broadcasts, BROADCAST requests and BROADCAST_ACK answers. Nothing read is ever
evaluated or unpickled: MessagePack and JSON only, and every field is checked before use;
a message that fails a check raises :class:`MalformedMessage`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgpack
import orjson

from geventsio import _json
from geventsio._types import Room
from geventsio.adapters.base import BroadcastFlags, BroadcastOptions
from geventsio.exceptions import LocalProtocolError
from geventsio.protocol.socketio import Packet, PacketType

#: The default prefix of every channel (Node's ``key`` option).
DEFAULT_KEY = "socket.io"

#: The uid the Node emitter (and ours) puts in its messages.
EMITTER_UID = "emitter"


class RequestType(IntEnum):
    """The ``type`` of a request or answer between servers (Node's numbering)."""

    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


class MalformedMessage(ValueError):
    """A message read from Redis is not one we understand.

    :param kind: a short, fixed description of what is wrong (logs are rate-limited per
        kind, so it must not hold message content).
    :param detail: more about this occurrence.
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


# -- channels ------------------------------------------------------------------------------

_GLOB_SPECIAL = re.compile(rb"([\\*?\[\]])")


@dataclass(frozen=True, slots=True)
class Channels:
    """The channel names of one namespace for one server.

    :param broadcast: ``<key>#<nsp>#``; a room's channel appends ``<room>#``.
    :param pattern: the glob pattern matching the broadcast channel and every room's.
    :param request: ``<key>-request#<nsp>#``.
    :param response: ``<key>-response#<nsp>#``.
    :param own_response: ``<key>-response#<nsp>#<uid>#``, this server's own.
    """

    broadcast: bytes
    pattern: bytes
    request: bytes
    response: bytes
    own_response: bytes

    @classmethod
    def of(cls, key: str, namespace: str, uid: str) -> Channels:
        """The channels of ``namespace`` under prefix ``key`` for the server ``uid``."""
        broadcast = f"{key}#{namespace}#".encode()
        response = f"{key}-response#{namespace}#".encode()
        return cls(
            broadcast=broadcast,
            pattern=_GLOB_SPECIAL.sub(rb"\\\1", broadcast) + b"*",
            request=f"{key}-request#{namespace}#".encode(),
            response=response,
            own_response=response + uid.encode() + b"#",
        )

    def for_rooms(self, rooms: frozenset[Room]) -> bytes:
        """Where a broadcast to ``rooms`` goes: a room's own channel when there is one."""
        if len(rooms) == 1:
            (room,) = rooms
            return self.broadcast + room.encode() + b"#"
        return self.broadcast

    def room_of(self, channel: bytes) -> str:
        """The room of a broadcast channel (``""`` for the namespace's channel).

        :raises MalformedMessage: the channel is not one of this namespace's.
        """
        if not channel.startswith(self.broadcast):
            raise MalformedMessage("foreign channel")
        if channel == self.broadcast:
            return ""
        if not channel.endswith(b"#"):
            raise MalformedMessage("room channel without its closing '#'")
        try:
            return channel[len(self.broadcast) : -1].decode()
        except UnicodeDecodeError:
            raise MalformedMessage("room name is not UTF-8") from None

    def response_for(self, uid: str | None, specific: bool) -> bytes:
        """Where to answer a request from ``uid``: its own channel when ``specific``."""
        if specific and uid:
            return self.response + uid.encode() + b"#"
        return self.response


# -- MessagePack and JSON --------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """What MessagePack cannot write natively, written as our JSON writes it."""
    return _json.loads(_json.dumps(value))


def pack(value: Any) -> bytes:
    """MessagePack bytes of ``value`` (``bytes`` as ``bin``, datetimes as our JSON writes
    them).

    :raises LocalProtocolError: ``value`` cannot be represented.
    """
    try:
        return msgpack.packb(value, use_bin_type=True, default=_plain)  # type: ignore[no-any-return]
    except LocalProtocolError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise LocalProtocolError(f"data cannot be sent through Redis: {exc}") from exc


def pack_like_node(value: Any) -> bytes:
    """JSON text, as Node writes its requests and answers, or MessagePack when ``value``
    holds binary (or anything else JSON cannot carry)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return pack(value)


_UNDEFINED = msgpack.ExtType(0, b"\x00")  # how notepack.io 2 wrote ``undefined``


def _ext(code: int, data: bytes) -> Any:
    if code == _UNDEFINED.code and data == _UNDEFINED.data:
        return None
    raise MalformedMessage("unsupported MessagePack extension", f"type {code}")


def unpack(data: bytes) -> Any:
    """Read MessagePack (``bin`` as ``bytes``, timestamps as aware datetimes).

    :raises MalformedMessage: not exactly one valid MessagePack value.
    """
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=True, ext_hook=_ext, timestamp=3, use_list=True
        )
    except MalformedMessage:
        raise
    except Exception as exc:  # msgpack raises several unrelated types
        raise MalformedMessage("not MessagePack", type(exc).__name__) from None


def unpack_request(data: bytes) -> dict[str, Any]:
    """Read a request or an answer: JSON when it starts with ``{``, else MessagePack.

    :raises MalformedMessage: neither, or not a map.
    """
    if data[:1] == b"{":
        try:
            value = _json.loads(data)
        except ValueError:
            raise MalformedMessage("invalid JSON") from None
    else:
        value = unpack(data)
    if not isinstance(value, dict):
        raise MalformedMessage("request or answer is not a map")
    return value


# -- packets and options ----------------------------------------------------------------------

_EVENT_TYPES = {int(PacketType.EVENT), int(PacketType.BINARY_EVENT)}


def packet_to_wire(packet: Packet) -> dict[str, Any]:
    """The socket.io-parser object of an EVENT packet (its ack id is left out: each server
    gives the packet an ack id of its own)."""
    return {"type": int(PacketType.EVENT), "data": packet.data, "nsp": packet.namespace}


def packet_from_wire(value: Any) -> Packet:
    """An EVENT packet from a socket.io-parser object (``nsp`` defaults to ``"/"``).

    :raises MalformedMessage: not an event packet.
    """
    if not isinstance(value, dict):
        raise MalformedMessage("packet is not a map")
    if value.get("type") not in _EVENT_TYPES:
        raise MalformedMessage("packet is not an event", f"type {value.get('type')!r}")
    data = value.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise MalformedMessage("event data is not [name, ...args]")
    namespace = value.get("nsp", "/")
    if not isinstance(namespace, str):
        raise MalformedMessage("packet namespace is not a string")
    return Packet(PacketType.EVENT, namespace, data)


def _room_names(rooms: Iterable[Room]) -> list[str]:
    return sorted(rooms)


def selection_to_wire(options: BroadcastOptions) -> dict[str, Any]:
    """``{rooms, except}``: which sockets a request is about."""
    return {"rooms": _room_names(options.rooms), "except": _room_names(options.except_rooms)}


def flags_to_wire(flags: BroadcastFlags) -> dict[str, Any]:
    """The flags Node reads (only those set: Node sends only those); timeout in ms."""
    wire: dict[str, Any] = {}
    if flags.volatile:
        wire["volatile"] = True
    if not flags.compress:
        wire["compress"] = False
    if flags.timeout is not None:
        wire["timeout"] = round(flags.timeout * 1000)
    return wire


def options_to_wire(options: BroadcastOptions) -> dict[str, Any]:
    """``{rooms, except, flags}``."""
    return {**selection_to_wire(options), "flags": flags_to_wire(options.flags)}


def rooms_from_wire(value: Any, what: str = "rooms") -> frozenset[Room]:
    """Room names from a list (numbers, which Node allows, become their text).

    :raises MalformedMessage: not a list of strings or numbers.
    """
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise MalformedMessage(f"{what} is not a list")
    rooms: set[Room] = set()
    for room in value:
        if isinstance(room, str):
            rooms.add(Room(room))
        elif isinstance(room, int | float) and not isinstance(room, bool):
            rooms.add(Room(str(int(room)) if float(room).is_integer() else str(room)))
        else:
            raise MalformedMessage(f"{what} holds something other than a room name")
    return frozenset(rooms)


def _flags_from_wire(value: Any) -> BroadcastFlags:
    if value is None:
        return BroadcastFlags()
    if not isinstance(value, dict):
        raise MalformedMessage("flags is not a map")
    return BroadcastFlags(
        volatile=value.get("volatile") is True, compress=value.get("compress") is not False
    )


def options_from_wire(value: Any) -> BroadcastOptions:
    """Broadcast options from ``{rooms, except, flags}`` (each may be missing).

    :raises MalformedMessage: a field has the wrong shape.
    """
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise MalformedMessage("opts is not a map")
    return BroadcastOptions(
        rooms=rooms_from_wire(value.get("rooms")),
        except_rooms=rooms_from_wire(value.get("except"), "except"),
        flags=_flags_from_wire(value.get("flags")),
    )


# -- broadcasts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broadcast:
    """One message of the broadcast channels.

    :param uid: the server (or ``"emitter"``) that sent it.
    :param packet: the EVENT packet.
    :param options: rooms, excluded rooms and flags.
    """

    uid: str
    packet: Packet
    options: BroadcastOptions


def encode_broadcast(uid: str, packet: Packet, options: BroadcastOptions) -> bytes:
    """The MessagePack ``[uid, packet, opts]`` of a broadcast.

    :raises LocalProtocolError: the packet's data cannot be represented.
    """
    return pack([uid, packet_to_wire(packet), options_to_wire(options)])


def decode_uid(data: bytes) -> str | None:
    """The uid of a broadcast message, read without decoding the rest (``None`` when the
    message does not start as one)."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(data))
    unpacker.feed(data)
    try:
        if unpacker.read_array_header() < 3:
            return None
        uid = unpacker.unpack()
    except Exception:
        return None
    return uid if isinstance(uid, str) else None


def decode_broadcast(data: bytes) -> Broadcast:
    """Read a message of the broadcast channels.

    :raises MalformedMessage: it is not ``[uid, packet, opts]`` with an event packet.
    """
    value = unpack(data)
    if not isinstance(value, list) or len(value) < 3:
        raise MalformedMessage("broadcast is not [uid, packet, opts]")
    uid, packet, options = value[:3]
    if not isinstance(uid, str):
        raise MalformedMessage("broadcast uid is not a string")
    return Broadcast(uid, packet_from_wire(packet), options_from_wire(options))


# -- requests and answers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A request from another server (or an emitter).

    :param kind: what is asked.
    :param uid: who asks (``None`` for an emitter that does not say).
    :param request_id: the id answers must carry (``None`` when no answer is wanted).
    :param body: the whole map, for the fields of this type.
    """

    kind: RequestType
    uid: str | None
    request_id: str | None
    body: Mapping[str, Any]

    def field(self, name: str, expected: type[Any], default: Any = None) -> Any:
        """A field of the body, checked against ``expected`` (``default`` when missing).

        :raises MalformedMessage: the field has another type.
        """
        value = self.body.get(name, default)
        if value is default:
            return value
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
            raise MalformedMessage(f"{self.kind.name} field {name!r} has the wrong type")
        return value

    def selection(self) -> BroadcastOptions:
        """The sockets a REMOTE_* or BROADCAST request is about (``opts``)."""
        return options_from_wire(self.body.get("opts"))


_REQUEST_TYPES = frozenset(int(t) for t in RequestType)


def _optional_str(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedMessage(f"{name!r} is not a string")
    return value


def decode_request(data: bytes) -> Request:
    """Read a message of the request channel.

    :raises MalformedMessage: unreadable, or with an unknown type.
    """
    body = unpack_request(data)
    kind = body.get("type")
    if not isinstance(kind, int) or kind not in _REQUEST_TYPES:
        raise MalformedMessage("unknown request type", repr(kind)[:20])
    request_type = RequestType(kind)
    return Request(request_type, _optional_str(body, "uid"), _optional_str(body, "requestId"), body)


def decode_response(data: bytes) -> tuple[str, Mapping[str, Any]]:
    """Read a message of the response channels: its request id and the whole map.

    :raises MalformedMessage: unreadable, or without a request id.
    """
    body = unpack_request(data)
    request_id = _optional_str(body, "requestId")
    if request_id is None:
        raise MalformedMessage("answer without a requestId")
    return request_id, body


def encode_request(
    request_type: RequestType, uid: str, request_id: str | None = None, **fields: Any
) -> bytes:
    """A request as Node writes it (MessagePack for BROADCAST, else JSON when possible)."""
    body: dict[str, Any] = {"uid": uid}
    if request_id is not None:
        body["requestId"] = request_id
    body["type"] = int(request_type)
    body.update(fields)
    if request_type is RequestType.BROADCAST:
        return pack(body)
    return pack_like_node(body)


def encode_response(
    request_id: str, response_type: RequestType | None = None, **fields: Any
) -> bytes:
    """An answer as Node writes it (MessagePack for BROADCAST_ACK, else JSON when possible)."""
    body: dict[str, Any] = {}
    if response_type is not None:
        body["type"] = int(response_type)
    body["requestId"] = request_id
    body.update(fields)
    if response_type is RequestType.BROADCAST_ACK:
        return pack(body)
    return pack_like_node(body)


#: The handshake fields a remote socket view carries (Node's, without its environ).
HANDSHAKE_FIELDS = (
    "headers",
    "time",
    "address",
    "xdomain",
    "secure",
    "issued",
    "url",
    "query",
    "auth",
)


def describe_socket(socket: Any) -> dict[str, Any]:
    """``{id, handshake, rooms, data}`` of a local socket, for a REMOTE_FETCH answer."""
    handshake = getattr(socket, "handshake", None)
    details: dict[str, Any] = {}
    for name in HANDSHAKE_FIELDS:
        value = getattr(handshake, name, None)
        details[name] = dict(value) if isinstance(value, Mapping) else value
    data = getattr(socket, "data", None)
    rooms: Iterable[str] = getattr(socket, "rooms", frozenset())
    return {"id": socket.id, "handshake": details, "rooms": sorted(rooms), "data": data}


__all__ = [
    "DEFAULT_KEY",
    "EMITTER_UID",
    "Broadcast",
    "Channels",
    "MalformedMessage",
    "Request",
    "RequestType",
    "decode_broadcast",
    "decode_request",
    "decode_response",
    "describe_socket",
    "encode_broadcast",
    "encode_request",
    "encode_response",
    "options_from_wire",
    "options_to_wire",
    "pack",
    "pack_like_node",
    "packet_from_wire",
    "packet_to_wire",
    "rooms_from_wire",
    "selection_to_wire",
    "unpack",
    "unpack_request",
]
