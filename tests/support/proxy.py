"""TCP proxies on 127.0.0.1:0: one whose connections a test can cut, to lose a client's
transport without stopping the server (what a network switch or a sleeping phone does),
and one that records the bytes of each connection both ways (to see WebSocket frames as
they travel)."""

from __future__ import annotations

import contextlib
import socket as stdlib_socket
import struct
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


class RecordingProxy:
    """Forwards connections to ``target`` and keeps every byte of each, both ways."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.connections: list[tuple[bytearray, bytearray]] = []  # (up, down)
        self._server = StreamServer(("127.0.0.1", 0), self._handle)
        self._server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.stop(timeout=1)

    def websocket(self) -> tuple[bytes, bytes]:
        """The bytes of the one WebSocket connection: client to server, and back."""
        found = [
            (bytes(u), bytes(d))
            for u, d in self.connections
            if b"\r\nupgrade: websocket" in u.lower()
        ]
        assert len(found) == 1, f"{len(found)} WebSocket connections"
        return found[0]

    def _handle(self, client: Any, _address: Any) -> None:
        upstream = create_connection(self.target)
        up, down = bytearray(), bytearray()
        self.connections.append((up, down))
        pumping = gevent.spawn(self._pump, upstream, client, down)
        self._pump(client, upstream, up)
        pumping.join(5)
        upstream.close()

    @staticmethod
    def _pump(source: Any, sink: Any, record: bytearray) -> None:
        try:
            while data := source.recv(65536):
                record += data
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(stdlib_socket.SHUT_RDWR)


def frame_heads(stream: bytes) -> list[tuple[bool, int, int]]:
    """``(rsv1, opcode, payload length)`` of each frame after the HTTP head of a WebSocket
    connection's bytes in one direction."""
    pos = stream.index(b"\r\n\r\n") + 4
    heads = []
    while pos + 2 <= len(stream):
        b0, b1 = stream[pos], stream[pos + 1]
        length, pos = b1 & 0x7F, pos + 2
        if length == 126:
            (length,), pos = struct.unpack_from("!H", stream, pos), pos + 2
        elif length == 127:
            (length,), pos = struct.unpack_from("!Q", stream, pos), pos + 8
        pos += (4 if b1 & 0x80 else 0) + length
        heads.append((bool(b0 & 0x40), b0 & 0x0F, length))
    return heads
