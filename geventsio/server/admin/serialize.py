"""Sockets and times in the shapes the Admin UI reads (those of ``@socket.io/admin-ui``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

#: The key of ``socket.data`` where the instrumentation keeps what the UI needs of a
#: socket (its client id and transport), as the Node reference does; other servers of
#: the cluster read it from there.
ADMIN_KEY = "_admin"
_HANDSHAKE_FIELDS = ("headers", "query", "issued", "secure", "time", "url", "xdomain")


def now() -> str:
    """The current time as JavaScript's ``JSON.stringify(new Date())`` writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_data(data: Any) -> Any:
    """``socket.data`` without the instrumentation's own key."""
    if isinstance(data, Mapping):
        return {key: value for key, value in data.items() if key != ADMIN_KEY}
    return data if data is not None else {}


def _field(handshake: Any, name: str) -> Any:
    if isinstance(handshake, Mapping):
        return handshake.get(name)
    return getattr(handshake, name, None)


def serialize_socket(socket: Any, namespace: str) -> dict[str, Any]:
    """A local :class:`~geventsio.Socket` or a remote one (``fetch_sockets`` across
    Redis) as the UI lists it."""
    data = socket.data if isinstance(socket.data, Mapping) else {}
    admin = data.get(ADMIN_KEY)
    if not isinstance(admin, Mapping):
        admin = {}
    handshake = socket.handshake
    headers = dict(_field(handshake, "headers") or {})
    address = (
        headers.get("cf-connecting-ip")
        or headers.get("x-forwarded-for")
        or _field(handshake, "address")
    )
    details = {"address": address}
    for name in _HANDSHAKE_FIELDS:
        value = _field(handshake, name)
        if isinstance(value, Mapping):
            value = dict(value)
        elif name == "issued" and isinstance(value, float):
            value = int(value)  # milliseconds, a whole number as in Node
        details[name] = value
    return {
        "id": socket.id,
        "clientId": admin.get("clientId"),
        "transport": admin.get("transport"),
        "nsp": namespace,
        "data": public_data(socket.data),
        "handshake": details,
        "rooms": sorted(socket.rooms),
    }
