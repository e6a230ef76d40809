"""The cluster seam: how the engine lets sessions it does not own reach their owner.

A process that is one of several behind one address (gunicorn ``-w N``, several hosts)
gets requests for sessions another process opened. With a :class:`SessionRouter` set as
``EngineServer.router`` the engine asks it for every new session id (which then names
its owner) and hands it the requests whose session is another's: the router forwards a
polling request to the owner and returns the owner's answer, and splices an upgrade to
a WebSocket with the owner's. The owner checks the
sid itself, as for any request; a forwarded request is marked with
:data:`FORWARDED_KEY` by the owner's side, so it is never forwarded again.

The mechanism lives in :mod:`geventsio.cluster`; the engine knows only this protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from geventsio._types import EngineSid
from geventsio.engine.http import HttpResponse

FORWARDED_KEY = "geventsio.forwarded"
"""Environ key set on a request that reached this process from another of its cluster
(by the process's own listener, never from anything the client sends)."""


class SessionRouter(Protocol):
    """Names the owner of each new session and forwards requests to owners."""

    def new_sid(self) -> EngineSid:
        """A new unguessable session id that names this process as its owner."""

    def check_new_polling(self) -> None:
        """Raise the :class:`~geventsio.exceptions.RemoteProtocolError` to answer when a
        new long-polling session could not be routed (WebSocket sessions need no routing)."""

    def owner_elsewhere(self, sid: str) -> bool:
        """Whether ``sid`` names another process of the cluster as its owner."""

    def forward(
        self, environ: Mapping[str, Any], start_response: Callable[..., Any]
    ) -> HttpResponse | None:
        """Send this request to the owner of its session and return the owner's answer
        (Node's code 1, "Session ID unknown", when the owner cannot be reached); None
        when the connection was taken over (a WebSocket upgrade, spliced to the owner's)."""
