"""Test helpers: raw HTTP and WebSocket clients, live servers, bounded waits, Node runner.

Import from here: ``from tests.support import wait_until, open_websocket, ...``.
"""

from tests.support.engineio import (
    PollingClient,
    assert_still_serving,
    decode_open,
    eio_target,
    messages,
    open_websocket,
    payload,
    upgrade,
)
from tests.support.http import HttpClient, HttpResponse, PeerClosed, build_request, chunk
from tests.support.server import LiveServer, RecordingEcho, live_greenlets
from tests.support.waiting import elapsed, wait_until
from tests.support.ws import ConnectionEnded, HandshakeRefused, WsClient

__all__ = [
    "ConnectionEnded",
    "HandshakeRefused",
    "HttpClient",
    "HttpResponse",
    "LiveServer",
    "PeerClosed",
    "PollingClient",
    "RecordingEcho",
    "WsClient",
    "assert_still_serving",
    "build_request",
    "chunk",
    "decode_open",
    "eio_target",
    "elapsed",
    "live_greenlets",
    "messages",
    "open_websocket",
    "payload",
    "upgrade",
    "wait_until",
]
