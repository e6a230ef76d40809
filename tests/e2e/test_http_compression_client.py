"""The real engine.io-client (Node.js) polling through ``fetch``, which asks for and
decompresses gzip: compressed answers reach it intact."""

from __future__ import annotations

import pytest

from tests.support import assert_still_serving
from tests.support.node import run_node

pytestmark = pytest.mark.e2e

# Polls with the Fetch transport (Node's fetch sends Accept-Encoding and decompresses),
# echoes one large and one small message, and reports the Content-Encoding of every GET.
SCENARIO = r"""
import { Socket, Fetch } from "engine.io-client";
const [url, path] = process.argv.slice(2);
const encodings = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (resource, init) => {
  const response = await realFetch(resource, init);
  if ((init?.method ?? "GET") === "GET") encodings.push(response.headers.get("content-encoding"));
  return response;
};
const large = "x".repeat(100_000);
const echoes = [];
const guard = setTimeout(() => done({ ok: false, error: "timed out" }), 15_000);
function done(result) {
  clearTimeout(guard);
  console.log(JSON.stringify({ ...result, echoes, encodings }));
  setTimeout(() => process.exit(0), 2_000).unref();
}
const socket = new Socket(url, { path, transports: [Fetch] });
socket.on("open", () => { socket.send(large); socket.send("small"); });
socket.on("message", (data) => {
  echoes.push(data === large ? "large" : data);
  if (echoes.length === 2) { socket.close(); done({ ok: true }); }
});
socket.on("error", (error) => done({ ok: false, error: String(error) }));
"""


@pytest.mark.parametrize("compression", [True, False], ids=["on", "off"])
def test_fetch_polling_client_reads_compressed_answers(eio_server, compression):
    server = eio_server(ping_timeout=1.0, http_compression=compression)
    result = run_node(SCENARIO, server.url, server.path, timeout=30)

    assert result["ok"], result
    assert result["echoes"] == ["large", "small"]
    assert ("gzip" in result["encodings"]) is compression, result["encodings"]
    assert server.handler.messages_of(server.handler.connected[0].sid) == ["x" * 100_000, "small"]
    assert_still_serving(server)
