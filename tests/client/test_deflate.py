"""``Client(per_message_deflate=True)`` offers WebSocket compression: against the Node
reference server (ws) and geventsio's own, large messages travel compressed both ways
(RSV1 seen by a recording proxy) and arrive intact; a server that does not agree gets
plain frames."""

from __future__ import annotations

from typing import Any

import pytest

import geventsio
from tests.client.conftest import ClientFactory, NodeServerFactory
from tests.support.proxy import RecordingProxy, frame_heads

BIG = "0123456789abcdef" * 500  # 8 kB


@pytest.fixture
def proxy_to() -> Any:
    proxies: list[RecordingProxy] = []

    def start(port: int) -> RecordingProxy:
        proxies.append(RecordingProxy(("127.0.0.1", port)))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.stop()


def large_frames(stream: bytes) -> list[tuple[bool, int]]:
    """``(rsv1, length)`` of the data frames of a WebSocket that carry ``BIG`` one way or
    another: compressed, or longer than it."""
    return [
        (rsv1, n)
        for rsv1, opcode, n in frame_heads(stream)
        if opcode in (1, 2) and (rsv1 or n > len(BIG))
    ]


def echo_through(
    proxy: RecordingProxy, make_client: ClientFactory, **options: Any
) -> tuple[bytes, bytes]:
    client = make_client(**options)
    client.connect(proxy.url, transports=["websocket"])
    assert client.call("echo", BIG, b"\x00" * 5000) == (BIG, b"\x00" * 5000)
    client.disconnect()
    return proxy.websocket()


def test_against_the_node_reference(node_server_factory: NodeServerFactory, make_client, proxy_to):
    server = node_server_factory(per_message_deflate=True)
    up, down = echo_through(proxy_to(server.port), make_client, per_message_deflate=True)
    assert b"permessage-deflate" in down.split(b"\r\n\r\n")[0].lower()
    # The event (text) and its attachment (binary), each compressed, both ways.
    assert [rsv1 for rsv1, _ in large_frames(up)] == [True, True], frame_heads(up)
    assert all(n < len(BIG) // 5 for _, n in large_frames(up))
    # Node compresses every message, whatever its size.
    from_server = [(rsv1, n) for rsv1, opcode, n in frame_heads(down) if opcode in (1, 2)]
    assert all(rsv1 for rsv1, _ in from_server), from_server
    assert sum(n for _, n in from_server) < len(BIG) // 5


def test_against_geventsio(serve_app, make_client, proxy_to):
    sio = geventsio.Server(per_message_deflate=True)
    sio.on("echo", lambda socket, *args: args)
    live = serve_app(geventsio.WSGIApp(sio), engine=sio.engine)
    up, down = echo_through(proxy_to(live.port), make_client, per_message_deflate=True)
    assert [rsv1 for rsv1, _ in large_frames(up)] == [True, True]
    assert [rsv1 for rsv1, _ in large_frames(down)] == [True, True]


@pytest.mark.parametrize("offer", [True, False], ids=["offered", "not-offered"])
def test_no_compression_unless_both_agree(node_server_factory, make_client, proxy_to, offer):
    server = node_server_factory(per_message_deflate=not offer)
    up, down = echo_through(proxy_to(server.port), make_client, per_message_deflate=offer)
    assert b"sec-websocket-extensions" not in down.split(b"\r\n\r\n")[0].lower()
    assert not any(rsv1 for rsv1, _ in large_frames(up) + large_frames(down))
