"""Binary attachments of Socket.IO packets: placeholders out, buffers back in.

A packet whose data holds binary travels as its JSON with every bytes-like leaf replaced
by ``{"_placeholder": true, "num": N}``, followed by the buffers as separate binary
messages, buffer N being the one placeholder N stands for. Placeholders are numbered in
the order of a depth-first, pre-order walk (list items in order, dict values in insertion
order), as the Node parser numbers them.

Outgoing, :func:`deconstruct` builds the placeholder copy of the data and the buffers.
Incoming, :func:`locate_placeholders` finds and checks every placeholder of the parsed
JSON once, when the text arrives, so a bad packet is refused before its attachments are
awaited; :func:`fill` puts the buffers in place once they have all arrived.

A dict is a placeholder when its ``"_placeholder"`` is ``true``, as in Node; only the
payload of a BINARY_EVENT or BINARY_ACK is searched for placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from geventsio.exceptions import LocalProtocolError, RemoteProtocolError

#: The types sent as attachments. Decoded attachments are always ``bytes``.
BINARY_TYPES = (bytes, bytearray, memoryview)

#: The deepest nesting :func:`deconstruct` walks; orjson refuses to write deeper data.
MAX_ENCODE_DEPTH = 255

Container: TypeAlias = list[Any] | dict[str, Any]

#: Where one attachment goes: the list or dict holding its placeholder, and the index or key.
Slot: TypeAlias = tuple[Container, Any]


def is_placeholder(value: dict[str, Any]) -> bool:
    """Whether a receiver takes the dict ``value`` for a placeholder."""
    return value.get("_placeholder") is True


def deconstruct(data: Any) -> tuple[Any, list[bytes]]:
    """Replace the bytes-like leaves of ``data`` by numbered placeholders.

    :param data: JSON-like data: lists, tuples, dicts, scalars, and ``bytes``,
        ``bytearray`` or ``memoryview`` leaves anywhere.
    :returns: a copy of ``data`` with placeholders, tuples turned into lists (``data``
        itself is left alone), and the buffers as ``bytes`` in placeholder order. No
        buffers means ``data`` holds no binary.
    :raises LocalProtocolError: ``data`` nests deeper than :data:`MAX_ENCODE_DEPTH` levels
        (a cycle does), or holds a dict the receiver would take for a placeholder.
    """
    buffers: list[bytes] = []
    return _strip(data, buffers, 0), buffers


def _strip(value: Any, buffers: list[bytes], depth: int) -> Any:
    """One step of :func:`deconstruct`; recursion is bounded by ``MAX_ENCODE_DEPTH``."""
    if isinstance(value, BINARY_TYPES):
        buffers.append(bytes(value))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if not isinstance(value, (list, tuple, dict)):
        return value
    if depth >= MAX_ENCODE_DEPTH:
        raise LocalProtocolError(f"data nests deeper than {MAX_ENCODE_DEPTH} levels (a cycle?)")
    if isinstance(value, dict):
        if is_placeholder(value):
            raise LocalProtocolError(
                'a dict with "_placeholder": true cannot be sent with binary data: '
                "the receiver would take it for an attachment placeholder"
            )
        return {key: _strip(item, buffers, depth + 1) for key, item in value.items()}
    return [_strip(item, buffers, depth + 1) for item in value]


def locate_placeholders(root: Container, count: int) -> list[Slot]:
    """Find the placeholders in the parsed payload of a binary packet.

    The walk is iterative, so hostile nesting cannot exhaust the Python stack.

    :param root: the parsed JSON payload (a placeholder at the root is not looked for:
        no packet type allows one there).
    :param count: the number of attachments the packet announced.
    :returns: the slots, indexed by placeholder number.
    :raises RemoteProtocolError: a placeholder is malformed, out of range or repeated, or
        there are fewer placeholders than ``count``.
    """
    if count == 1 and type(root) is list and len(root) == 2 and _lone_placeholder(root):
        return [(root, 1)]
    found: dict[int, Slot] = {}
    stack: list[Container] = [root]
    while stack:
        container = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            if isinstance(value, dict) and is_placeholder(value):
                num = _placeholder_number(value, count)
                if num in found:
                    raise RemoteProtocolError(f"placeholder {num} appears more than once")
                found[num] = (container, key)
            elif isinstance(value, (list, dict)):
                stack.append(value)
    if len(found) != count:
        raise RemoteProtocolError(f"{count} attachments announced, {len(found)} placeholders found")
    return [found[num] for num in range(count)]


def _lone_placeholder(root: list[Any]) -> bool:
    """Whether ``root`` is ``[<not a container>, <placeholder 0>]``: an event or ack
    with one binary argument, the commonest binary packet, whose one placeholder is then
    found without the walk."""
    first, value = root
    return (
        type(value) is dict
        and len(value) == 2
        and value.get("_placeholder") is True
        and type(value.get("num")) is int
        and value["num"] == 0
        and not isinstance(first, (list, dict))
    )


def _placeholder_number(placeholder: dict[str, Any], count: int) -> int:
    """The checked ``num`` of a placeholder, in ``range(count)``."""
    num = placeholder.get("num")
    if len(placeholder) != 2 or type(num) is not int:
        raise RemoteProtocolError(
            'malformed placeholder: expected exactly {"_placeholder": true, "num": <integer>}'
        )
    if not 0 <= num < count:
        raise RemoteProtocolError(f"placeholder {num} out of range for {count} attachments")
    return num


def fill(slots: Sequence[Slot], buffers: Sequence[bytes]) -> None:
    """Put each buffer where its placeholder was, in place.

    :param slots: from :func:`locate_placeholders`.
    :param buffers: the attachments, in order of arrival, one per slot.
    """
    for (container, key), buffer in zip(slots, buffers, strict=True):
        container[key] = buffer
