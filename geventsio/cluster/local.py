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
from typing import Any

import gevent.socket

from geventsio.cluster.member import Member
from geventsio.engine.server import EngineServer

logger = logging.getLogger(__name__)


def socket_name(group: str, tag: str) -> str:
    """The abstract unix socket of the process tagged ``tag`` in ``group``."""
    return f"\0geventsio.{group}.{tag}"


class LocalCluster(Member):
    """This process as one of several on this host, sharing sessions.

    :param engine: the engine whose sessions are shared; :meth:`start` sets its router.
    :param group: what the processes of one cluster have in common, and no other process
        of the host (under gunicorn: the arbiter's pid).
    """

    def __init__(self, engine: EngineServer, group: str) -> None:
        super().__init__(engine)
        self.group = group

    @staticmethod
    def supported() -> bool:
        """Whether this platform has abstract unix sockets (Linux)."""
        return sys.platform.startswith("linux")

    def _listen(self) -> Any:
        listener = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(socket_name(self.group, self.tag))
        listener.listen(256)
        logger.info("cluster %s: this process is %s", self.group, self.tag)
        return listener

    def address_of(self, tag: str) -> str:
        """The abstract unix socket of the process tagged ``tag``."""
        return socket_name(self.group, tag)
