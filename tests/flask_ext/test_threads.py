"""``socketio.emit`` from real OS threads (not greenlets; nothing monkey-patched for
them): handed to the server's gevent hub, none lost, each thread's order kept."""

from __future__ import annotations

from flask import Flask

from flask_ext import SocketIO
from tests.support.os_threads import emit_from_os_threads


def test_socketio_emit_from_eight_os_threads(app: Flask, socketio: SocketIO) -> None:
    received = emit_from_os_threads(socketio.require_server(), socketio.emit, 8, 200)
    for thread in range(8):
        assert [i for t, i in received if t == thread] == list(range(200))
