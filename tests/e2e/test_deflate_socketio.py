"""``per_message_deflate`` under Socket.IO, with the real socket.io-client 4.8 in Node.js
(its WebSocket is ws, which offers permessage-deflate): large events travel compressed
both ways, and ``compress(False)`` -- on a socket and on a broadcast -- sends its event
as it is. A recording proxy between the two shows the frames."""

from __future__ import annotations

import pytest

from tests.server.sio_support import SioServerFactory, Step, events, run_plan
from tests.support.proxy import RecordingProxy, frame_heads

pytestmark = pytest.mark.e2e

BIG = "abc" * 2000  # 6 kB, well over the 1 KiB threshold


@pytest.fixture
def sio_server(serve_app) -> SioServerFactory:
    return SioServerFactory(serve_app)


def test_compress_false_is_honoured_and_the_rest_compressed(sio_server):
    app = sio_server(per_message_deflate=True)

    @app.sio.on("send-all")
    def send_all(socket, text):
        socket.join("room")
        socket.emit("plain", text)
        socket.compress(False).emit("raw", text)
        app.sio.to("room").compress(False).emit("raw-broadcast", text)
        app.sio.to("room").emit("plain-broadcast", text)
        return len(text)

    proxy = RecordingProxy((app.live.host, app.live.port))
    try:
        report = run_plan(
            proxy.url,
            [
                Step.connect("a"),
                Step.call("a", "send-all", BIG),
                Step.wait_event("a", "plain-broadcast"),
            ],
        )
    finally:
        proxy.stop()

    for name in ("plain", "raw", "raw-broadcast", "plain-broadcast"):
        assert events(report, "a", name) == [[BIG]], name
    up, down = proxy.websocket()
    from_client = [(rsv1, n) for rsv1, opcode, n in frame_heads(up) if opcode == 1]
    # The client's large event went compressed; nothing large went as it is.
    assert [rsv1 for rsv1, n in from_client if rsv1 or n > len(BIG)] == [True], from_client
    sizes = [(rsv1, n) for rsv1, opcode, n in frame_heads(down) if opcode == 1]
    compressed = [n for rsv1, n in sizes if rsv1]
    as_is = [n for rsv1, n in sizes if not rsv1 and n > len(BIG)]
    assert len(compressed) == 2 and all(n < len(BIG) // 10 for n in compressed), sizes
    assert len(as_is) == 2, sizes  # the two sent with compress(False)
