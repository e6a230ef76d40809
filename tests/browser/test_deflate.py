"""Debian's Chromium offers permessage-deflate by default: with the option on, large
messages travel compressed both ways (RSV1 on the frames, seen by a recording proxy
between the browser and the server), and come back intact."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.proxy import RecordingProxy, frame_heads

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
PAGE = b"<!doctype html><title>deflate</title><p>deflate"

# Opens an Engine.IO WebSocket, sends a large JSON text, a large binary and a small text,
# and checks each echo. Returns the negotiated extensions and what was sent.
SCENARIO = """
async (path) => {
  const ws = new WebSocket(`ws://${location.host}${path}?EIO=4&transport=websocket`);
  ws.binaryType = "arraybuffer";
  const rows = Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `user-${i}` }));
  const text = "4" + JSON.stringify({ rows });
  const binary = new Uint8Array(100000).map((_, i) => i % 251);
  const sent = text.length + binary.length + 6;
  return await new Promise((resolve, reject) => {
    const got = [];
    setTimeout(() => reject(new Error("timed out")), 10000);
    ws.onerror = () => reject(new Error("WebSocket error"));
    ws.onmessage = (event) => {
      if (got.length === 0 && typeof event.data === "string" && event.data[0] === "0") {
        got.push("open");
        ws.send(text);
        ws.send(binary);
        ws.send("4small");
        return;
      }
      got.push(event.data);
      if (got.length < 4) return;
      const echoed = new Uint8Array(got[2]);
      const same = echoed.length === binary.length && echoed.every((b, i) => b === binary[i]);
      ws.close();
      resolve({ extensions: ws.extensions, text: got[1] === text, binary: same,
                small: got[3] === "4small", sent });
    };
  });
}
"""


def serve_page(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(PAGE)))])
    return [PAGE]


def exchange(browser: Any, eio_server: Any, options: object) -> tuple[dict, bytes, bytes]:
    server = eio_server(wsgi_app=serve_page, per_message_deflate=options)
    proxy = RecordingProxy((server.host, server.port))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(proxy.url + "/")
        result = page.evaluate(SCENARIO, server.path)
    finally:
        context.close()
        proxy.stop()
    assert (result["text"], result["binary"], result["small"]) == (True, True, True), result
    return result, *proxy.websocket()


def data_frames(stream: bytes) -> list[tuple[bool, int, int]]:
    return [head for head in frame_heads(stream) if head[1] in (1, 2)]


def test_chromium_exchanges_large_messages_compressed_both_ways(browser, eio_server):
    result, up, down = exchange(browser, eio_server, True)

    assert result["extensions"] == "permessage-deflate"
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in down
    # From the browser: all three compressed (Chromium has no threshold).
    assert [rsv1 for rsv1, _, _ in data_frames(up)] == [True, True, True]
    # From the server: the open packet and the small echo under the threshold.
    assert [rsv1 for rsv1, _, _ in data_frames(down)] == [False, True, True, False]
    sent = result["sent"]
    assert sum(n for _, _, n in data_frames(up)) < sent // 5
    assert sum(n for _, _, n in data_frames(down)) < sent // 5


def test_chromium_gets_no_extension_when_the_option_is_off(browser, eio_server):
    result, up, down = exchange(browser, eio_server, False)

    assert result["extensions"] == ""
    assert b"Sec-WebSocket-Extensions" not in down
    assert not any(rsv1 for rsv1, _, _ in frame_heads(up) + frame_heads(down))
    assert sum(n for _, _, n in data_frames(down)) > result["sent"]
