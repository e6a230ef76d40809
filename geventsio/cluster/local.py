"""The processes of one host (gunicorn ``-w N``): owners reached on abstract unix sockets.

Each process listens on the abstract unix socket ``geventsio.<group>.<tag>``, where
``group`` names the set of processes that share sessions (under gunicorn: the arbiter's
pid) and ``tag`` is the process's own (in every sid it opens). A dead process's socket
is gone with it: a request forwarded to it is refused at once, and answered with code 1.

What arrives on that socket is served by the engine as any request, marked forwarded:
the owner checks the sid itself, and never forwards it again.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import gevent.socket
from gevent.pywsgi import WSGIServer

from geventsio._types import EngineSid
from geventsio.cluster.forward import forward
from geventsio.cluster.sid import new_tag, owner_tag, tagged_sid
from geventsio.cluster.splice import forward_websocket
from geventsio.engine.http import HttpResponse, parse_query
from geventsio.engine.routing import FORWARDED_KEY
from geventsio.engine.server import EngineServer
from geventsio.engine.takeover import upgrade_requested

logger = logging.getLogger(__name__)

#: Seconds a forwarded request may wait beyond the owner's longest long-poll.
FORWARD_MARGIN = 5.0


def socket_name(group: str, tag: str) -> str:
    """The abstract unix socket of the process tagged ``tag`` in ``group``."""
    return f"\0geventsio.{group}.{tag}"


class LocalCluster:
    """This process as one of several on this host, sharing sessions.

    :param engine: the engine whose sessions are shared; :meth:`start` sets its router.
    :param group: what the processes of one cluster have in common, and no other process
        of the host (under gunicorn: the arbiter's pid).
    """

    def __init__(self, engine: EngineServer, group: str) -> None:
        self.engine = engine
        self.group = group
        self.tag = new_tag()
        self._server: WSGIServer | None = None
        options = engine.options
        self._timeout = options.ping_interval + options.ping_timeout + FORWARD_MARGIN

    @staticmethod
    def supported() -> bool:
        """Whether this platform has abstract unix sockets (Linux)."""
        return sys.platform.startswith("linux")

    def start(self) -> None:
        """Listen for forwarded requests and route the engine's sessions through this."""
        listener = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(socket_name(self.group, self.tag))
        listener.listen(256)
        self._server = WSGIServer(listener, self._serve, log=None, error_log=logger)
        self._server.start()
        self.engine.router = self
        logger.info("cluster %s: this process is %s", self.group, self.tag)

    def stop(self) -> None:
        """Stop listening (forwarded requests are then answered with code 1)."""
        if self._server is not None:
            self._server.stop(timeout=0)
            self._server = None
        if self.engine.router is self:
            self.engine.router = None

    def _serve(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        environ[FORWARDED_KEY] = True
        return self.engine.handle_request(environ, start_response)

    # -- SessionRouter -----------------------------------------------------------------

    def new_sid(self) -> EngineSid:
        """A new session id naming this process."""
        return tagged_sid(self.tag)

    def owner_elsewhere(self, sid: str) -> bool:
        """Whether ``sid`` names another process (of any tag but this one's)."""
        tag = owner_tag(sid)
        return tag is not None and tag != self.tag

    def forward(
        self, environ: Mapping[str, Any], start_response: Callable[..., Any]
    ) -> HttpResponse | None:
        """Forward the request to the owner named in its sid."""
        tag = owner_tag(parse_query(environ).get("sid", ""))
        assert tag is not None
        address = socket_name(self.group, tag)
        if upgrade_requested(environ):
            return forward_websocket(address, environ, start_response, self.engine.hosts)
        return forward(
            address,
            environ,
            max_body=self.engine.options.max_payload,
            timeout=self._timeout,
        )
