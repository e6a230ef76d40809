"""The client's options, with the JavaScript client's defaults. Times are in seconds."""

from __future__ import annotations

import math
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from geventsio.protocol.serializers import Serializer, serializer_named


@dataclass(frozen=True)
class ClientOptions:
    """Options of a :class:`~geventsio.client.Client`; see its docstring for each one."""

    reconnection: bool = True
    reconnection_attempts: float = math.inf
    reconnection_delay: float = 1.0
    reconnection_delay_max: float = 5.0
    randomization_factor: float = 0.5
    max_buffered_emits: int = 1000
    request_timeout: float = 20.0
    ack_timeout: float | None = None
    upgrade_timeout: float = 10.0
    max_message_size: int = 100 * 1024 * 1024
    ssl_context: ssl.SSLContext | None = None
    random: Callable[[], float] = field(default=random.random, repr=False)
    serializer: str = "json"
    per_message_deflate: bool = False

    @property
    def codec(self) -> Serializer:
        """The packet format named by ``serializer``."""
        return serializer_named(self.serializer)

    def __post_init__(self) -> None:
        serializer_named(self.serializer)  # ValueError (ImportError) now, not at connect
        if self.reconnection_attempts < 0:
            raise ValueError("reconnection_attempts must not be negative")
        if self.reconnection_delay < 0 or self.reconnection_delay_max < self.reconnection_delay:
            raise ValueError("need 0 <= reconnection_delay <= reconnection_delay_max")
        if not 0 <= self.randomization_factor <= 1:
            raise ValueError("randomization_factor must be in [0, 1]")
        if self.max_buffered_emits < 0:
            raise ValueError("max_buffered_emits must not be negative")
        for name in ("request_timeout", "upgrade_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.ack_timeout is not None and self.ack_timeout <= 0:
            raise ValueError("ack_timeout must be positive (or None)")
        if self.max_message_size <= 0:
            raise ValueError("max_message_size must be positive")
