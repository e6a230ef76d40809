"""Chained emit options of one socket, as Node's ``socket.timeout(ms).volatile.emit()``.

:class:`SocketEmitter` only collects options; the socket sends. Each option returns a
new emitter, so a partly configured one can be kept and reused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol


class EmittingSocket(Protocol):
    """What an emitter needs of its socket (:class:`~geventsio.server.socket.Socket`)."""

    def emit(
        self,
        event: str,
        *args: Any,
        callback: Callable[..., Any] | None = None,
        timeout: float | None = None,
        volatile: bool = False,
        compress: bool = True,
    ) -> None:
        """Send an event to this client."""

    def call(self, event: str, *args: Any, timeout: float | None = 60.0) -> Any:
        """Send an event and wait for the acknowledgement."""


@dataclass(frozen=True)
class SocketEmitter:
    """Options for the next emit to one client (see :meth:`Socket.timeout`,
    :attr:`Socket.volatile`, :meth:`Socket.compress`)."""

    socket: EmittingSocket
    seconds: float | None = None
    is_volatile: bool = False
    compressed: bool = True

    def timeout(self, seconds: float) -> SocketEmitter:
        """Expect the acknowledgement within ``seconds``.

        :raises ValueError: ``seconds`` is not positive.
        """
        if not seconds > 0:
            raise ValueError(f"timeout must be positive, not {seconds!r}")
        return replace(self, seconds=seconds)

    @property
    def volatile(self) -> SocketEmitter:
        """Drop the event if the client cannot take it right now."""
        return replace(self, is_volatile=True)

    def compress(self, compress: bool) -> SocketEmitter:
        """The compression flag (False: sent as it is where the transport compresses)."""
        return replace(self, compressed=bool(compress))

    def emit(self, event: str, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """:meth:`Socket.emit` with these options; with a timeout, ``callback`` gets
        ``(error, *args)``, ``error`` None or :class:`~geventsio.AckTimeout`."""
        self.socket.emit(
            event,
            *args,
            callback=callback,
            timeout=self.seconds,
            volatile=self.is_volatile,
            compress=self.compressed,
        )

    def send(self, *args: Any, callback: Callable[..., Any] | None = None) -> None:
        """Emit a ``message`` event with these options."""
        self.emit("message", *args, callback=callback)

    def call(self, event: str, *args: Any) -> Any:
        """:meth:`Socket.call` with this timeout (60 s without one).

        :raises AckTimeout: no acknowledgement in time.
        """
        seconds = 60.0 if self.seconds is None else self.seconds
        return self.socket.call(event, *args, timeout=seconds)
