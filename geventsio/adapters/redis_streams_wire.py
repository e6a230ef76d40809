"""The entries of ``@socket.io/redis-streams-adapter``'s stream and its sessions, no I/O.

One stream (``socket.io`` by default) carries every cluster message as an entry with the
fields ``uid`` (the sending server), ``nsp``, ``type`` (the number of
:class:`MessageType`, as text) and, when there is one, ``data``: JSON text, or base64 of
MessagePack when the value holds binary (a reader tells them apart by a leading ``{``).
A broadcast's ``data`` is ``{"packet": {"type": 2, "data": [event, ...args]}, "opts":
{"rooms": [...], "except": [...], "flags": {...}}}``; the entry's id (``<ms>-<seq>``) is
the packet's recovery offset. A session is kept under ``sio:session:<pid>`` as base64 of
MessagePack ``{"sid", "pid", "rooms", "data"}``, expiring with the recovery window.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson

from geventsio import _json
from geventsio._types import Room, SocketId
from geventsio.adapters.recovery import SessionState
from geventsio.adapters.redis_wire import MalformedMessage, pack, rooms_from_wire, unpack

#: A stream entry id, which is also an offset: ``<milliseconds>-<sequence>``.
ENTRY_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")


class MessageType(IntEnum):
    """The cluster messages of socket.io-adapter's ``ClusterAdapter``."""

    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


@dataclass(frozen=True, slots=True)
class Entry:
    """One decoded stream entry."""

    id: str
    uid: str
    namespace: str
    type: int
    data: Any


def entry_key(entry_id: str) -> tuple[int, int]:
    """An entry id as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def next_id(entry_id: str) -> str:
    """The smallest id after ``entry_id`` (exclusive ranges for Redis before 6.2)."""
    ms, seq = entry_key(entry_id)
    return f"{ms}-{seq + 1}"


def encode_data(value: Any) -> str:
    """``data`` as Node writes it: JSON, or base64 MessagePack when it holds binary."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return base64.b64encode(pack(value)).decode()


def decode_data(text: str) -> Any:
    """Read ``data`` (JSON when it starts with ``{``, else base64 MessagePack).

    :raises MalformedMessage: neither.
    """
    if text.startswith("{"):
        try:
            return _json.loads(text)
        except ValueError:
            raise MalformedMessage("invalid JSON") from None
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise MalformedMessage("data is neither JSON nor base64") from None
    return unpack(raw)


def encode_fields(uid: str, namespace: str, kind: MessageType, data: Any = None) -> dict[str, str]:
    """The fields of an entry."""
    fields = {"uid": uid, "nsp": namespace, "type": str(int(kind))}
    if data is not None:
        fields["data"] = encode_data(data)
    return fields


def _text(fields: dict[bytes, bytes], name: bytes) -> str | None:
    value = fields.get(name)
    return None if value is None else value.decode("utf-8", "replace")


def decode_entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Entry | None:
    """An entry read from the stream, or None when it is not a cluster message (no
    ``nsp``, as Node skips them).

    :raises MalformedMessage: a field has the wrong shape.
    """
    namespace = _text(fields, b"nsp")
    if not namespace:
        return None
    kind = _text(fields, b"type") or ""
    if not kind.isdigit():
        raise MalformedMessage("type is not a number")
    data = _text(fields, b"data")
    ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return Entry(
        ident,
        _text(fields, b"uid") or "",
        namespace,
        int(kind),
        None if data is None else decode_data(data),
    )


def broadcast_parts(entry: Entry) -> tuple[list[Any], Any]:
    """The event data (``[event, ...args]``) and the raw options of a BROADCAST entry.

    :raises MalformedMessage: not a plain event broadcast.
    """
    data = entry.data
    if not isinstance(data, dict) or not isinstance(data.get("packet"), dict):
        raise MalformedMessage("broadcast without a packet")
    packet = data["packet"]
    if packet.get("type") not in (2, 5):
        raise MalformedMessage("broadcast packet is not an event")
    args = packet.get("data")
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        raise MalformedMessage("event data is not [name, ...args]")
    return args, data.get("opts")


def is_volatile(raw_options: Any) -> bool:
    """Whether raw broadcast options carry the volatile flag."""
    flags = raw_options.get("flags") if isinstance(raw_options, dict) else None
    return isinstance(flags, dict) and flags.get("volatile") is not None


def encode_session(state: SessionState) -> str:
    """A session as Node keeps it."""
    session = {"sid": state.sid, "pid": state.pid, "rooms": sorted(state.rooms), "data": state.data}
    return base64.b64encode(pack(session)).decode()


def decode_session(text: bytes | str) -> SessionState:
    """A kept session.

    :raises MalformedMessage: not a session.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise MalformedMessage("session is not base64") from None
    value = unpack(raw)
    if not isinstance(value, dict):
        raise MalformedMessage("session is not a map")
    sid, pid = value.get("sid"), value.get("pid")
    if not isinstance(sid, str) or not isinstance(pid, str):
        raise MalformedMessage("session without sid or pid")
    rooms: frozenset[Room] = rooms_from_wire(value.get("rooms"))
    data = value.get("data")
    return SessionState(SocketId(sid), pid, rooms, data if data is not None else {})
