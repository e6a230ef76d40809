"""A TCP proxy on 127.0.0.1:0 whose connections a test can cut, to lose a client's
transport without stopping the server (what a network switch or a sleeping phone does)."""

from __future__ import annotations

import contextlib
import socket as stdlib_socket
from typing import Any

import gevent
from gevent.server import StreamServer
from gevent.socket import create_connection


class CuttableProxy:
    """Forwards every connection to ``target``; :meth:`cut` drops them all and refuses
    new ones until :meth:`resume`.

    :param target: ``(host, port)`` of the real server.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._open: set[Any] = set()
        self._refusing = False
        self._server = StreamServer(("127.0.0.1", 0), self._handle)
        self._server.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy."""
        return f"http://127.0.0.1:{self._server.server_port}"

    def cut(self) -> None:
        """Drop every forwarded connection (both ends) and refuse new ones."""
        self._refusing = True
        for sock in list(self._open):
            self._close(sock)

    def resume(self) -> None:
        """Forward new connections again."""
        self._refusing = False

    def stop(self) -> None:
        """Stop listening and drop everything."""
        self.cut()
        self._server.stop(timeout=1)

    def _handle(self, client: Any, _address: Any) -> None:
        if self._refusing:
            client.close()
            return
        try:
            upstream = create_connection(self.target)
        except OSError:
            client.close()
            return
        self._open.update((client, upstream))
        pump = gevent.spawn(self._pump, upstream, client)
        self._pump(client, upstream)
        pump.join()

    def _pump(self, source: Any, sink: Any) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source)
            self._close(sink)

    def _close(self, sock: Any) -> None:
        self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(stdlib_socket.SHUT_RDWR)
        sock.close()
