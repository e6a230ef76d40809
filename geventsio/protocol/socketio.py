"""Socket.IO v5 packets, without I/O.

One packet is the data of one Engine.IO MESSAGE::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

The namespace is left out when it is ``"/"``. A BINARY_EVENT or BINARY_ACK is followed by
``<attachments>`` binary MESSAGEs, which replace the placeholders of its JSON (see
:mod:`geventsio.protocol.binary`).

Binary is a wire detail: :func:`encode` sends an EVENT or ACK whose data holds bytes as a
BINARY_EVENT or BINARY_ACK, and :class:`Decoder` reports those as EVENT and ACK with the
bytes put back. Application code only ever sees EVENT and ACK.

Both directions check a packet against the same table of rules: an error in a packet we
are asked to send is :class:`LocalProtocolError`, in a packet we receive
:class:`RemoteProtocolError`. The decoder is strict where the Node parser is lenient
(an ack id on CONNECT, DISCONNECT or CONNECT_ERROR, an ACK without one, whitespace before
the payload, control characters in a namespace, placeholders other than exactly
``{"_placeholder":true,"num":N}``, see :class:`DecoderLimits` for the bounds), lenient
where it is (a namespace may end the packet without its ``,``, as in ``0/admin``), and
accepts any string as an event name but the reserved ones (:data:`RESERVED_EVENTS`), as
socket.io-parser does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from enum import Enum, IntEnum
from typing import Any

from geventsio import _json
from geventsio.exceptions import LocalProtocolError, RemoteProtocolError
from geventsio.protocol import binary
from geventsio.protocol.events import RESERVED_EVENTS

__all__ = [
    "MAX_ACK_ID",
    "RESERVED_EVENTS",
    "Decoder",
    "DecoderLimits",
    "Packet",
    "PacketType",
    "encode",
]


class PacketType(IntEnum):
    """Socket.IO v5 packet types."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


#: The largest ack id: JavaScript's ``Number.MAX_SAFE_INTEGER``, as ack ids are JavaScript
#: numbers in the reference implementation.
MAX_ACK_ID = 2**53 - 1
_MAX_ACK_ID_DIGITS = len(str(MAX_ACK_ID))  # 16


class Packet:
    """One Socket.IO packet (immutable: its fields are read-only properties; a plain
    class, native when compiled, because one is made per message and a frozen
    dataclass's fields are set through descriptor calls).

    :param type: the packet type. Decoded packets are never BINARY_EVENT or BINARY_ACK.
    :param namespace: the namespace, ``"/"`` for the main one.
    :param data: the payload, JSON-like with ``bytes`` leaves; ``None`` when absent.
        Outgoing, tuples, ``bytearray`` and ``memoryview`` are accepted too; they arrive
        as lists and ``bytes``.
    :param id: the ack id, or ``None``.
    """

    __slots__ = ("_data", "_id", "_namespace", "_type")

    def __init__(
        self, type: PacketType, namespace: str = "/", data: Any = None, id: int | None = None
    ) -> None:
        self._type = type
        self._namespace = namespace
        self._data = data
        self._id = id

    @property
    def type(self) -> PacketType:
        """The packet type."""
        return self._type

    @property
    def namespace(self) -> str:
        """The namespace."""
        return self._namespace

    @property
    def data(self) -> Any:
        """The payload (``None``: none)."""
        return self._data

    @property
    def id(self) -> int | None:
        """The ack id, or ``None``."""
        return self._id

    def _fields(self) -> tuple[PacketType, str, Any, int | None]:
        return (self._type, self._namespace, self._data, self._id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet) or type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Packet(type={self._type!r}, namespace={self._namespace!r}, "
            f"data={self._data!r}, id={self._id!r})"
        )


@dataclass(frozen=True)
class DecoderLimits:
    """Bounds on what a :class:`Decoder` accepts from the peer.

    :param max_attachments: binary attachments one packet may announce (Node's default).
    :param max_depth: nesting of arrays and objects in a payload, the payload itself
        being level 1 and a placeholder one more level (orjson refuses more than 1024).
    :param max_ack_id: the largest ack id; ack ids are also limited to 16 digits.
    :param max_namespace_length: characters in a namespace, counting the leading ``/``.
    :raises ValueError: a limit is negative, or zero where that makes no sense.
    """

    max_attachments: int = 10
    max_depth: int = 32
    max_ack_id: int = MAX_ACK_ID
    max_namespace_length: int = 256

    def __post_init__(self) -> None:
        for limit in fields(self):
            minimum = 0 if limit.name in ("max_attachments", "max_ack_id") else 1
            if getattr(self, limit.name) < minimum:
                raise ValueError(f"{limit.name} must be at least {minimum}")


class _AckId(Enum):
    """Whether a packet type carries an ack id."""

    FORBIDDEN = "forbidden"
    OPTIONAL = "optional"
    REQUIRED = "required"


@dataclass(frozen=True, slots=True)
class _Rule:
    """Everything the codec knows about one packet type, used both ways."""

    type: PacketType
    ack_id: _AckId
    accepts: Callable[[Any], bool]
    expected: str  # completes "<TYPE> payload must be ..."
    plain: PacketType  # the type sent without attachments, and reported once decoded
    binary: PacketType | None = None  # the type sent with attachments, if it may carry any
    has_attachments: bool = field(init=False)  # whether the wire form announces attachments

    def __post_init__(self) -> None:
        object.__setattr__(self, "has_attachments", self.plain is not self.type)


def _is_absent_or_object(data: Any) -> bool:
    return data is None or isinstance(data, dict)


def _is_absent(data: Any) -> bool:
    return data is None


def _is_event_args(data: Any) -> bool:
    return (
        isinstance(data, (list, tuple))
        and len(data) > 0
        and isinstance(data[0], str)
        and data[0] not in RESERVED_EVENTS
    )


def _is_array(data: Any) -> bool:
    return isinstance(data, (list, tuple))


def _is_object_or_string(data: Any) -> bool:
    return isinstance(data, (dict, str))


_EVENT_ARGS = "a non-empty array whose first item is the event name (a string, not a reserved name)"
_T = PacketType
_A = _AckId

# Indexed by type value: a tuple index is C code, while Enum.__hash__ is Python code.
_RULES: tuple[_Rule, ...] = (
    _Rule(_T.CONNECT, _A.FORBIDDEN, _is_absent_or_object, "an object or absent", _T.CONNECT),
    _Rule(_T.DISCONNECT, _A.FORBIDDEN, _is_absent, "absent", _T.DISCONNECT),
    _Rule(_T.EVENT, _A.OPTIONAL, _is_event_args, _EVENT_ARGS, _T.EVENT, _T.BINARY_EVENT),
    _Rule(_T.ACK, _A.REQUIRED, _is_array, "an array", _T.ACK, _T.BINARY_ACK),
    _Rule(
        _T.CONNECT_ERROR,
        _A.FORBIDDEN,
        _is_object_or_string,
        "an object or a string",
        _T.CONNECT_ERROR,
    ),
    _Rule(_T.BINARY_EVENT, _A.OPTIONAL, _is_event_args, _EVENT_ARGS, _T.EVENT, _T.BINARY_EVENT),
    _Rule(_T.BINARY_ACK, _A.REQUIRED, _is_array, "an array", _T.ACK, _T.BINARY_ACK),
)
assert [rule.type for rule in _RULES] == list(PacketType)
_RULE_BY_DIGIT = {str(int(rule.type)): rule for rule in _RULES}
_DIGITS = "0123456"

# After the type digit: attachment count, namespace, ack id. Every part is optional, so
# this always matches; what it captured is checked afterwards, for precise errors.
_ACK_DIGITS = re.compile(r"[0-9]*", re.ASCII)
_HEADER = re.compile(r"(?:([0-9]*)-)?(?:(/[^,]*),?)?([0-9]*)", re.ASCII)
# Not allowed in a namespace: C0 and C1 controls, DEL, and lone surrogates (not encodable).
_FORBIDDEN_IN_NAMESPACE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# An array, an object or a string: all that any packet type accepts.
_PAYLOAD_START = frozenset('[{"')
_NO_HEADER = _PAYLOAD_START | {""}  # what follows the type digit of a bare "2[...]" or "0"


def _violation(rule: _Rule, ack_id: int | None, data: Any) -> str | None:
    """What is wrong with a packet's ack id or payload for its type, or ``None``."""
    if ack_id is None:
        if rule.ack_id is _AckId.REQUIRED:
            return f"{rule.type.name} packet without an ack id"
    elif rule.ack_id is _AckId.FORBIDDEN:
        return f"{rule.type.name} packet must not carry an ack id"
    if not rule.accepts(data):
        return f"{rule.type.name} payload must be {rule.expected}"
    return None


# -- encoding ---------------------------------------------------------------------------


def encode(packet: Packet) -> list[str | bytes]:
    """Encode a packet as the data of the Engine.IO MESSAGEs that carry it.

    The JSON is written once, by orjson, with no Python walk of the data unless orjson
    meets something it cannot write, such as bytes; only then is the data searched for
    binary. An EVENT or ACK whose data holds binary is sent as a BINARY_EVENT or
    BINARY_ACK; a BINARY_EVENT or BINARY_ACK whose data holds none as an EVENT or ACK.

    :param packet: the packet to send.
    :returns: the text of the packet, then its binary attachments as ``bytes``.
    :raises LocalProtocolError: the packet breaks the protocol: unknown type, namespace
        not starting with ``/`` or holding ``,`` or a control character, ack id not an
        integer in ``0..MAX_ACK_ID`` or not allowed for the type, payload of the wrong
        shape for the type, data JSON cannot represent (see :mod:`geventsio._json`), or
        binary in a packet type that cannot carry it.
    """
    rule = _check_outgoing(packet)
    if packet.data is None:
        return [_header(rule.plain, 0, packet.namespace, packet.id)]
    try:
        payload = _json.dumps(packet.data)
    except LocalProtocolError as error:
        if rule.binary is None:
            raise
        return _encode_binary(packet, rule.binary, error)
    return [_header(rule.plain, 0, packet.namespace, packet.id) + payload]


def encode_ack(namespace: str, ack_id: int, args: list[Any]) -> list[str | bytes]:
    """Encode an ACK whose namespace and ack id are known good (they came from a packet
    the decoder accepted): only the arguments are checked, by serialising them.

    :raises LocalProtocolError: as :func:`encode`, for the arguments.
    """
    for arg in args:
        if isinstance(arg, binary.BINARY_TYPES):  # orjson would refuse it: skip the try
            return _encode_binary(
                Packet(PacketType.ACK, namespace, args, ack_id), PacketType.BINARY_ACK, None
            )
    try:
        payload = _json.dumps(args)
    except LocalProtocolError:
        return encode(Packet(PacketType.ACK, namespace, args, ack_id))
    if namespace == "/":
        return [f"3{ack_id}{payload}"]
    return [f"3{namespace},{ack_id}{payload}"]


def _encode_binary(
    packet: Packet, packet_type: PacketType, error: LocalProtocolError | None
) -> list[str | bytes]:
    """Encode an EVENT or ACK whose data orjson refused, maybe for holding binary."""
    data, buffers = binary.deconstruct(packet.data)
    if not buffers:
        assert error is not None
        raise error
    text = _header(packet_type, len(buffers), packet.namespace, packet.id)
    return [text + _json.dumps(data), *buffers]


def _header(packet_type: PacketType, attachments: int, namespace: str, ack_id: int | None) -> str:
    """Everything before the JSON payload."""
    text = _DIGITS[packet_type]
    if attachments:
        text += f"{attachments}-"
    if namespace != "/":
        text += namespace + ","
    if ack_id is not None:
        text += str(ack_id)
    return text


def _check_outgoing(packet: Packet) -> _Rule:
    """The rule of a packet's type, once the packet is found to follow it.

    :raises LocalProtocolError: the peer would refuse the packet.
    """
    if packet.type.__class__ is not PacketType:
        raise LocalProtocolError(f"packet type must be a PacketType, not {packet.type!r}")
    rule = _RULES[packet.type]
    namespace = packet.namespace
    if namespace != "/" and not (
        isinstance(namespace, str)
        and namespace.startswith("/")
        and "," not in namespace
        and not _FORBIDDEN_IN_NAMESPACE.search(namespace)
    ):
        raise LocalProtocolError(
            f"invalid namespace {namespace!r}: it must start with '/' and hold no ',', "
            "control character or lone surrogate"
        )
    # object, not int: a compiled build would make a bool ack id an int before the check.
    ack_id: object = packet.id
    if ack_id is not None and not (type(ack_id) is int and 0 <= ack_id <= MAX_ACK_ID):
        raise LocalProtocolError(f"invalid ack id {ack_id!r}: not an integer in 0..{MAX_ACK_ID}")
    problem = _violation(rule, ack_id, packet.data)
    if problem is not None:
        raise LocalProtocolError(problem)
    return rule


# -- decoding ---------------------------------------------------------------------------


@dataclass(slots=True)
class _PendingBinary:
    """A binary packet whose attachments are still arriving."""

    packet: Packet  # its data still holds the placeholders
    slots: list[binary.Slot]
    buffers: list[bytes] = field(default_factory=list)


_DEFAULT_LIMITS = DecoderLimits()


class Decoder:
    """Turns the data of incoming Engine.IO MESSAGEs into Socket.IO packets.

    One decoder per Engine.IO connection: a binary packet's attachments are the binary
    messages that follow its text, so messages must be fed in order of arrival.

    :param limits: bounds on what the peer may send.
    """

    def __init__(self, limits: DecoderLimits = _DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._pending: _PendingBinary | None = None

    def feed(self, message: str | bytes | bytearray | memoryview) -> Packet | None:
        """Decode the data of one Engine.IO MESSAGE.

        :param message: text (``str``) or one binary attachment (``bytes``; ``bytearray``
            and ``memoryview`` are accepted too).
        :returns: the complete packet, or ``None`` while a binary packet awaits its
            attachments.
        :raises RemoteProtocolError: the message breaks the protocol; the message of the
            exception says how. The decoder then drops any partial packet and is ready for
            the next message.
        :raises TypeError: ``message`` is neither text nor binary.
        """
        try:
            if isinstance(message, str):
                if self._pending is None:
                    # A plain EVENT (see _PLAIN_EVENT), decoded in one step, here rather
                    # than in a function of its own: nearly every message is one. Accepts
                    # exactly what the general path accepts for such text; anything else,
                    # valid or not, goes on to the general path, which words any error.
                    match = _PLAIN_EVENT.match(message)
                    if match is not None:
                        end = match.end() - 1
                        limits = self._limits
                        data = _event_arguments(message, end, limits)
                        if data is not None:
                            if end == 1:
                                return Packet(PacketType.EVENT, "/", data, None)
                            ack_id = int(match.group(1))
                            if ack_id <= limits.max_ack_id:
                                return Packet(PacketType.EVENT, "/", data, ack_id)
                    pending = _plain_binary_event(message, self._limits)
                    if pending is not None:
                        self._pending = pending
                        return None
                return self._feed_text(message)
            if isinstance(message, binary.BINARY_TYPES):
                return self._feed_attachment(bytes(message))
        except RemoteProtocolError:
            self._pending = None
            raise
        raise TypeError(f"expected str or bytes, got {type(message).__name__}")

    def _feed_text(self, text: str) -> Packet | None:
        if self._pending is not None:
            awaited = len(self._pending.slots) - len(self._pending.buffers)
            raise RemoteProtocolError(
                f"text packet while {awaited} attachment(s) of a binary packet were awaited"
            )
        rule, attachments, namespace, ack_id, payload = _parse_header(text, self._limits)
        data = _parse_payload(payload, self._limits)
        problem = _violation(rule, ack_id, data)
        if problem is not None:
            raise RemoteProtocolError(problem)
        packet = Packet(rule.plain, namespace, data, ack_id)
        if not attachments:
            return packet
        slots = binary.locate_placeholders(data, attachments)
        self._pending = _PendingBinary(packet, slots)
        return None

    def _feed_attachment(self, buffer: bytes) -> Packet | None:
        pending = self._pending
        if pending is None:
            raise RemoteProtocolError("binary message while no binary packet awaited attachments")
        slots = pending.slots
        if len(slots) == 1:  # the commonest: one attachment, put in place at once
            container, key = slots[0]
            container[key] = buffer
            self._pending = None
            return pending.packet
        pending.buffers.append(buffer)
        if len(pending.buffers) < len(slots):
            return None
        binary.fill(slots, pending.buffers)
        self._pending = None
        return pending.packet


# The packet nearly every message is: an EVENT to the main namespace, "2[...]" or
# "2<ack id>[...]". Bounded like the general path: an ack id of at most 16 digits.
_PLAIN_EVENT = re.compile(rf"2([0-9]{{0,{_MAX_ACK_ID_DIGITS}}})\[", re.ASCII)


# The binary packet nearly every binary message is: a BINARY_EVENT to the main namespace,
# "5<attachments>-[...]" or "5<attachments>-<ack id>[...]". At most 8 digits of count
# (any limit beyond is refused anyway), 16 of ack id, as on the general path.
_PLAIN_BINARY_EVENT = re.compile(rf"5([0-9]{{1,8}})-([0-9]{{0,{_MAX_ACK_ID_DIGITS}}})\[", re.ASCII)


def _plain_binary_event(text: str, limits: DecoderLimits) -> _PendingBinary | None:
    """The packet of ``text``, awaiting its attachments, when it is a valid
    :data:`_PLAIN_BINARY_EVENT`, decoded in one step; None for anything else, valid or
    not (then the general path decodes it, and words any error). Accepts exactly what the
    general path accepts for such text.

    :raises RemoteProtocolError: its placeholders do not match its attachment count (the
        general path's check, with its words).
    """
    match = _PLAIN_BINARY_EVENT.match(text)
    if match is None:
        return None
    count_digits, ack_digits = match.groups()
    maximum = limits.max_attachments
    count = int(count_digits)
    if not 0 < count <= maximum or len(count_digits) > len(str(maximum)):
        return None
    data = _event_arguments(text, match.end() - 1, limits)
    if data is None:
        return None
    ack_id = None
    if ack_digits:
        ack_id = int(ack_digits)
        if ack_id > limits.max_ack_id:
            return None
    slots = binary.locate_placeholders(data, count)
    return _PendingBinary(Packet(PacketType.EVENT, "/", data, ack_id), slots)


def _event_arguments(text: str, start: int, limits: DecoderLimits) -> list[Any] | None:
    """The JSON array of an event's arguments at ``text[start:]`` (the event name first)
    when the general path would accept it as such; None otherwise."""
    try:
        data = _json.loads(text[start:])
    except ValueError:
        return None
    depth = limits.max_depth
    if type(data) is not list or not data or type(data[0]) is not str or data[0] in RESERVED_EVENTS:
        return None
    # No argument a container: one level, never too deep (max_depth is at least 1); no
    # argument's item a container: two levels. Cheaper than counting brackets, which
    # only bounds the walk of the rest.
    if (
        _flat(data)
        or (depth >= 2 and _two_levels(data))
        or text.count("[") + text.count("{") <= depth
        or not _nests_deeper(data, depth)
    ):
        return data
    return None


def _flat(values: Iterable[Any]) -> bool:
    """Whether none of ``values`` is an array or object (a loop, compiled inline:
    ``issuperset`` of a ``map`` would first build a set of it)."""
    return all(type(value) in _FLAT_ITEMS for value in values)


def _two_levels(data: list[Any]) -> bool:
    """Whether no item of ``data``'s arrays and objects is an array or object (JSON's
    types only: the JSON decoder made them)."""
    for item in data:
        kind = type(item)
        if kind is dict:
            if not _flat(item.values()):
                return False
        elif kind is list and not _flat(item):
            return False
    return True


def _parse_header(text: str, limits: DecoderLimits) -> tuple[_Rule, int, str, int | None, str]:
    """Split a packet's text into type, attachment count, namespace, ack id and payload."""
    if not text:
        raise RemoteProtocolError("empty packet")
    rule = _RULE_BY_DIGIT.get(text[0])
    if rule is None:
        raise RemoteProtocolError(f"unknown packet type {text[0]!r}")
    if not rule.has_attachments:
        if text[1:2] in _NO_HEADER:
            return rule, 0, "/", None, text[1:]  # the common "2[...]" needs no regular expression
        digits = _ACK_DIGITS.match(text, 1)
        end = digits.end()  # type: ignore[union-attr]
        if end > 1 and text[end : end + 1] in _NO_HEADER:  # "2<ack id>[...]": main namespace
            return rule, 0, "/", _parse_ack_id(text[1:end], limits), text[end:]
    match = _HEADER.match(text, 1)
    assert match is not None  # every part of the pattern is optional
    count, namespace, ack_id = match.groups()
    attachments = _parse_attachments(rule, count, limits)
    end = match.end()
    if end < len(text) and text[end] not in _PAYLOAD_START:
        raise RemoteProtocolError(
            f"unexpected {text[end]!r} at offset {end}: expected a namespace starting "
            "with '/', an ack id or a JSON payload"
        )
    return (
        rule,
        attachments,
        _parse_namespace(namespace, limits),
        _parse_ack_id(ack_id, limits),
        text[end:],
    )


def _parse_attachments(rule: _Rule, digits: str | None, limits: DecoderLimits) -> int:
    if not rule.has_attachments:
        if digits is not None:
            raise RemoteProtocolError(f"{rule.type.name} packet must not announce attachments")
        return 0
    name = rule.type.name
    if not digits:
        raise RemoteProtocolError(f"{name} packet without an attachment count")
    maximum = limits.max_attachments
    count = int(digits) if len(digits) <= len(str(maximum)) else None
    if count is None or count > maximum:
        raise RemoteProtocolError(f"{name} packet with over {maximum} attachments")
    if count == 0:
        raise RemoteProtocolError(f"{name} packet with no attachments")
    return count


def _parse_namespace(namespace: str | None, limits: DecoderLimits) -> str:
    if namespace is None or namespace == "/":
        return "/"
    if len(namespace) > limits.max_namespace_length:
        raise RemoteProtocolError(f"namespace longer than {limits.max_namespace_length} characters")
    if _FORBIDDEN_IN_NAMESPACE.search(namespace):
        raise RemoteProtocolError(
            f"namespace {namespace!r} holds a control character or a lone surrogate"
        )
    return namespace


def _parse_ack_id(digits: str | None, limits: DecoderLimits) -> int | None:
    if not digits:
        return None
    ack_id = int(digits) if len(digits) <= _MAX_ACK_ID_DIGITS else None
    if ack_id is None or ack_id > limits.max_ack_id:
        raise RemoteProtocolError(f"ack id {digits[:20]} is over {limits.max_ack_id}")
    return ack_id


def _parse_payload(payload: str, limits: DecoderLimits) -> Any:
    """The parsed JSON payload, or ``None`` when there is none."""
    if not payload:
        return None
    try:
        data = _json.loads(payload)
    except ValueError as exc:
        raise RemoteProtocolError(f"invalid JSON payload: {exc}") from exc
    # A payload with no more brackets than max_depth cannot nest deeper: skip the walk.
    depth = limits.max_depth
    if payload.count("[") + payload.count("{") > depth and _nests_deeper(data, depth):
        raise RemoteProtocolError(f"payload nests deeper than {depth} levels")
    return data


#: The types of JSON's scalars, as the JSON decoder makes them.
_FLAT_ITEMS = frozenset({str, int, float, bool, type(None)})


def _nests_deeper(data: Any, limit: int) -> bool:
    """Whether arrays and objects in ``data`` nest more than ``limit`` levels; iterative."""
    if not isinstance(data, (list, dict)):
        return False
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False
