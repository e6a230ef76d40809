"""The real engine.io-client (Node.js) against a live geventsio echo server."""

from __future__ import annotations

import pytest

from tests.support import assert_still_serving
from tests.support.node import run_node

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("gevent_websocket", [False, True], ids=["geventsio", "gevent-ws"])
@pytest.mark.parametrize(
    ("mode", "first", "last"),
    [
        ("polling", "polling", "polling"),
        ("websocket", "websocket", "websocket"),
        ("upgrade", "polling", "websocket"),
    ],
)
def test_engineio_client_echo(eio_server, mode, first, last, gevent_websocket):
    # The client closes from its message handler, with no GET waiting: geventsio then
    # keeps the session until ping_timeout (see the xfail test in tests/engine), so keep
    # that short here.
    server = eio_server(gevent_websocket=gevent_websocket, ping_timeout=1.0)
    result = run_node("eio_echo.mjs", server.url, server.path, mode, timeout=30)

    assert result["ok"], result
    assert (result["openTransport"], result["finalTransport"]) == (first, last)
    assert result["upgraded"] is (mode == "upgrade")
    assert [e["type"] for e in result["echoes"]] == ["text", "text", "binary", "text", "binary"]
    handler = server.handler
    assert len(handler.connected) == 1
    sid = handler.connected[0].sid
    assert handler.messages_of(sid)[:2] == ["hello", "unicode é ✓ 🚀"]
    server.wait_sessions(0)
    assert str(handler.closed[sid]) == "transport close"
    assert_still_serving(server)


def test_run_node_accepts_inline_source():
    result = run_node("console.log(JSON.stringify({args: process.argv.slice(2)}))", "a", 1)
    assert result == {"args": ["a", "1"]}
