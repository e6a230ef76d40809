"""Frozen option sets with the Node reference's defaults.

Times are in seconds (floats, sub-second values are honoured exactly); sizes in bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeVar

OriginPolicy = str | Sequence[str] | Callable[[str], bool] | None
"""``None`` allows the same origin only; ``"*"`` allows any; a list or a predicate decides."""

AllowRequest = Callable[[Mapping[str, Any]], bool]

GenerateId = Callable[[Mapping[str, Any]], str]
"""Given the handshake's WSGI environ, a new session id (unique among open sessions)."""


class Transport(StrEnum):
    """The two Engine.IO transports."""

    POLLING = "polling"
    WEBSOCKET = "websocket"


class SlowConsumerPolicy(StrEnum):
    """What happens to a session whose outgoing buffer is full."""

    #: Close the session with reason "transport error" and log why (default).
    DISCONNECT = "disconnect"
    #: Keep the session: drop its waiting volatile packets, then its oldest broadcast
    #: packets, to make room (never an acknowledgement or a control packet; when those
    #: cannot fit, the session is closed as with DISCONNECT). Logged once per session.
    DROP = "drop"


@dataclass(frozen=True)
class CookieOptions:
    """The Engine.IO ``io`` cookie, sent on the handshake when enabled."""

    name: str = "io"
    path: str = "/"
    http_only: bool = True
    same_site: Literal["Lax", "Strict", "None"] = "Lax"
    secure: bool = False


_Options = TypeVar("_Options")


def _options_from(cls: type[_Options], setting: object, name: str) -> _Options | None:
    """An option set from a setting: None or False (off), True (the defaults), a mapping
    of option names, or the options themselves."""
    if setting is None or setting is False:
        return None
    if setting is True:
        return cls()
    if isinstance(setting, cls):
        return setting
    if isinstance(setting, Mapping):
        return cls(**setting)
    raise TypeError(f"{name} takes a mapping or a bool, not {setting!r}")


@dataclass(frozen=True)
class DeflateOptions:
    """WebSocket permessage-deflate (RFC 7692), Node's ``perMessageDeflate`` in snake case.

    The client offers the extension and its parameters; these options decide what the
    server accepts and asks for (see :mod:`geventsio.protocol.deflate_offer`).

    :param threshold: messages shorter than this many bytes are sent uncompressed
        (Node's ``threshold``); so are packets sent with ``compress(False)``.
    :param server_no_context_takeover: the server compresses every message on its own
        (no window kept between messages): no compressor is kept between messages, and
        a broadcast is compressed once for every such connection.
    :param client_no_context_takeover: ask the client to do the same; the server then
        keeps no decompressor between messages.
    :param server_max_window_bits: the largest window (9-15) the server compresses with;
        a client may ask for less (down to 9; an offer of 8 is declined).
    :param client_max_window_bits: the window (8-15) asked of the client when its offer
        allows a limit (an offer without ``client_max_window_bits`` is accepted as it is).
    :param mem_level: zlib's ``memLevel`` (1-9) for the compressor: memory against speed.
    :param level: zlib's compression level (0-9; 6 is zlib's default).
    """

    threshold: int = 1024
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    mem_level: int = 8
    level: int = 6

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise ValueError("per_message_deflate threshold must not be negative")
        if not 9 <= self.server_max_window_bits <= 15:
            raise ValueError("server_max_window_bits must be between 9 and 15")
        if not 8 <= self.client_max_window_bits <= 15:
            raise ValueError("client_max_window_bits must be between 8 and 15")
        if not 1 <= self.mem_level <= 9:
            raise ValueError("mem_level must be between 1 and 9")
        if not 0 <= self.level <= 9:
            raise ValueError("level must be between 0 and 9")

    @classmethod
    def from_setting(cls, setting: DeflateSetting) -> DeflateOptions | None:
        """The options for ``per_message_deflate``: None or False (off), True (on, with
        the defaults), a mapping of option names, or options.

        :raises TypeError: an unknown option name, or a setting of another type.
        """
        return _options_from(cls, setting, "per_message_deflate")


DeflateSetting = DeflateOptions | Mapping[str, Any] | bool | None
"""What the ``per_message_deflate`` option accepts."""


@dataclass(frozen=True)
class EngineOptions:
    """Options of the Engine.IO layer.

    :param ping_interval: seconds between the server's pings.
    :param ping_timeout: seconds to wait for a pong before closing with "ping timeout".
    :param max_payload: largest HTTP body or WebSocket message accepted, in bytes.
    :param upgrade_timeout: seconds a started upgrade may take before it is abandoned.
    :param path: where Engine.IO is served.
    :param transports: transports a client may use.
    :param allow_upgrades: whether polling sessions may upgrade to WebSocket.
    :param cors_allowed_origins: ``None`` (same origin only), ``"*"``, a list, or a predicate.
    :param cors_credentials: send ``Access-Control-Allow-Credentials: true``.
    :param cookie: the ``io`` cookie, or ``None`` for no cookie.
    :param allow_request: called with the WSGI environ of each handshake (a request
        without a session id, as in the Node reference); returning False refuses it with
        403.
    :param max_buffer_size: bytes of outgoing packets a session may hold for a client
        that is not reading.
    :param slow_consumer_policy: what to do when that buffer is full.
    :param max_websocket_fragments: fragments one WebSocket message may be split into.
    :param extra_headers: headers added to every answer of the Engine.IO path.
    :param generate_id: makes the session id of each handshake from its WSGI environ
        (Node's ``generateId``); default: 120 random bits. An id that fails, is empty or
        is in use refuses the handshake (400, ``connection_error`` with the context name
        ``ID_GENERATION_ERROR``).
    :param http_compression: compress long-polling answers with gzip or deflate, as the
        client's ``Accept-Encoding`` prefers (Node's ``httpCompression``, on by default).
    :param compression_threshold: answers shorter than this many bytes are sent as they
        are (Node's ``httpCompression.threshold``).
    :param per_message_deflate: WebSocket compression (RFC 7692, Node's
        ``perMessageDeflate``): False (default), True, or a mapping of
        :class:`DeflateOptions` (``threshold``, ``server_no_context_takeover``...). Read
        back as :attr:`deflate`. A decompressed message counts against ``max_payload``.
    :param allow_eio3: also serve Engine.IO v3 clients (``EIO=3``: socket.io-client 2.x,
        with Socket.IO protocol v4), as Node's ``allowEIO3``; off by default, and such a
        client is then refused with 400 and code 5 ("Unsupported protocol version").
    """

    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_payload: int = 1_000_000
    upgrade_timeout: float = 10.0
    path: str = "/socket.io/"
    transports: tuple[Transport, ...] = (Transport.POLLING, Transport.WEBSOCKET)
    allow_upgrades: bool = True
    cors_allowed_origins: OriginPolicy = None
    cors_credentials: bool = True
    cookie: CookieOptions | None = None
    allow_request: AllowRequest | None = None
    max_buffer_size: int = 10_000_000
    slow_consumer_policy: SlowConsumerPolicy = SlowConsumerPolicy.DISCONNECT
    max_websocket_fragments: int = 1024
    extra_headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    generate_id: GenerateId | None = None
    http_compression: bool = True
    compression_threshold: int = 1024
    per_message_deflate: DeflateSetting = False
    allow_eio3: bool = False

    def __post_init__(self) -> None:
        path = self.path if self.path.startswith("/") else "/" + self.path
        if not path.endswith("/"):
            path += "/"
        object.__setattr__(self, "path", path)
        transports = tuple(Transport(t) for t in self.transports)
        if not transports:
            raise ValueError("transports must name at least one transport")
        object.__setattr__(self, "transports", transports)
        policy = SlowConsumerPolicy(self.slow_consumer_policy)
        object.__setattr__(self, "slow_consumer_policy", policy)
        for name in ("ping_interval", "ping_timeout", "upgrade_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_payload <= 0 or self.max_buffer_size <= 0:
            raise ValueError("max_payload and max_buffer_size must be positive")
        if self.compression_threshold < 0:
            raise ValueError("compression_threshold must not be negative")
        deflate = DeflateOptions.from_setting(self.per_message_deflate)
        object.__setattr__(self, "per_message_deflate", deflate)

    @property
    def deflate(self) -> DeflateOptions | None:
        """The permessage-deflate options, or None when WebSocket compression is off."""
        setting = self.per_message_deflate
        return setting if isinstance(setting, DeflateOptions) else None


@dataclass(frozen=True)
class RecoveryOptions:
    """Connection state recovery (Node's ``connectionStateRecovery``, in snake case).

    A client that loses its connection for less than ``max_disconnection_duration``
    comes back with the same socket id, its rooms, its ``socket.data`` and every
    broadcast it missed (see docs/recovery.md).

    :param max_disconnection_duration: seconds a disconnected session, and each packet
        kept for it, stay recoverable.
    :param skip_middlewares: a recovered socket skips the connection middlewares (its
        connect handler still runs, with ``socket.recovered`` True).
    :param max_buffered_packets: the most packets the in-memory adapter keeps for
        recovery per namespace (the oldest go first); a client that missed more than
        that gets a fresh session. Not in the Node reference, which bounds by time only.
    """

    max_disconnection_duration: float = 120.0
    skip_middlewares: bool = True
    max_buffered_packets: int = 10_000

    def __post_init__(self) -> None:
        if self.max_disconnection_duration <= 0:
            raise ValueError("max_disconnection_duration must be positive")
        if self.max_buffered_packets <= 0:
            raise ValueError("max_buffered_packets must be positive")

    @classmethod
    def from_setting(cls, setting: RecoverySetting) -> RecoveryOptions | None:
        """The options for the server's ``connection_state_recovery`` argument: None or
        False (off), True (on, with the defaults), a mapping of option names, or options.

        :raises TypeError: an unknown option name, or a setting of another type.
        """
        return _options_from(cls, setting, "connection_state_recovery")


RecoverySetting = RecoveryOptions | Mapping[str, Any] | bool | None
"""What the server's ``connection_state_recovery`` argument accepts."""
