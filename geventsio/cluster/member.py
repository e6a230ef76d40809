"""What every kind of cluster member does: name itself in new sids, listen for the
requests other members forward to it, and forward to the owner named in a sid.

A kind of member says only where it listens (:meth:`Member._listen`) and where another
member is (:meth:`Member.address_of`): an abstract unix socket on one host
(:mod:`~geventsio.cluster.local`), a TCP address found in Redis across hosts
(:mod:`~geventsio.cluster.redis`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gevent.pywsgi import WSGIServer

from geventsio._types import EngineSid
from geventsio.cluster.forward import Address, ConnectionPool, forward
from geventsio.cluster.sid import new_tag, owner_tag, tagged_sid
from geventsio.cluster.splice import forward_websocket
from geventsio.engine.http import EngineErrorCode, HttpResponse, error_response, parse_query
from geventsio.engine.routing import FORWARDED_KEY
from geventsio.engine.server import EngineServer
from geventsio.engine.takeover import upgrade_requested

logger = logging.getLogger(__name__)


class Member(ABC):
    """This process as one member of a cluster sharing its sessions.

    :param engine: the engine whose sessions are shared; :meth:`start` sets its router.
    """

    def __init__(self, engine: EngineServer) -> None:
        self.engine = engine
        self.tag = new_tag()
        self._server: WSGIServer | None = None
        self._pool = ConnectionPool()
        options = engine.options
        # The owner holds a long-poll up to ping_interval; the client gives up on the
        # session after ping_interval + ping_timeout: no forward waits longer.
        self._timeout = options.ping_interval + options.ping_timeout

    @abstractmethod
    def _listen(self) -> Any:
        """A listening socket for the requests other members forward to this one."""

    @abstractmethod
    def address_of(self, tag: str) -> Address | None:
        """Where the member tagged ``tag`` listens; None when that cannot be known."""

    def start(self) -> None:
        """Listen for forwarded requests and route the engine's sessions through this."""
        self._server = WSGIServer(self._listen(), self._serve, log=None, error_log=logger)
        self._server.start()
        self.engine.router = self

    def stop(self) -> None:
        """Stop listening (forwarded requests are then answered with code 1)."""
        if self._server is not None:
            self._server.stop(timeout=0)
            self._server = None
        self._pool.close()
        if self.engine.router is self:
            self.engine.router = None

    def _serve(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if "sid=" not in str(environ.get("QUERY_STRING", "")):
            # Members forward requests of open sessions only: a handshake here came from
            # something else that reached this address.
            response = error_response(EngineErrorCode.BAD_REQUEST)
            start_response(response.status_line, [("Content-Type", response.content_type)])
            return [response.body]
        environ[FORWARDED_KEY] = True
        return self.engine.handle_request(environ, start_response)

    # -- SessionRouter -----------------------------------------------------------------

    def new_sid(self) -> EngineSid:
        """A new session id naming this process."""
        return tagged_sid(self.tag)

    def check_new_polling(self) -> None:
        """Refuse a new long-polling session that could not be routed (a no-op here).

        :raises RemoteProtocolError: with the answer to give.
        """
        return None  # every member of one host can be reached

    def owner_elsewhere(self, sid: str) -> bool:
        """Whether ``sid`` names another member (of any tag but this one's)."""
        tag = owner_tag(sid)
        return tag is not None and tag != self.tag

    def forward(
        self, environ: Mapping[str, Any], start_response: Callable[..., Any]
    ) -> HttpResponse | None:
        """Forward the request to the owner named in its sid."""
        tag = owner_tag(parse_query(environ).get("sid", ""))
        address = None if tag is None else self.address_of(tag)
        if address is None:
            return error_response(EngineErrorCode.UNKNOWN_SID)
        if upgrade_requested(environ):
            return forward_websocket(address, environ, start_response, self.engine.hosts)
        return forward(
            address,
            environ,
            max_body=self.engine.options.max_payload,
            timeout=self._timeout,
            pool=self._pool,
        )
