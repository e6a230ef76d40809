"""socket.io-client 2.x (the npm package's browser bundle) in Debian's Chromium against
``allow_eio3=True``. A browser's XMLHttpRequest takes binary, so on long-polling binary
travels in Engine.IO v3's *binary payloads* (``application/octet-stream`` both ways),
which socket.io-client 2.x under Node never uses (it asks for ``b64``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.processes import PYTHON, ROOT, Processes, Server, free_port

pytestmark = pytest.mark.e2e

SCRIPT = """
([transports]) => new Promise((resolve, reject) => {
  const socket = io({transports, forceNew: true, reconnection: false});
  const out = {};
  socket.on("error", (e) => reject(new Error("error " + JSON.stringify(e))));
  socket.on("connect_error", (e) => reject(e));
  socket.on("echoed", (text, blob) => {
    out.echoed = [text, Array.from(new Uint8Array(blob))];
  });
  socket.on("connect", () => {
    out.id = socket.id;
    out.engineId = socket.io.engine.id;
    socket.emit("echo", "héllo 😀", new Uint8Array([0, 1, 254, 255]).buffer, (text, blob) => {
      out.ack = [text, Array.from(new Uint8Array(blob))];
      out.transport = socket.io.engine.transport.name;
      const done = () => { socket.disconnect(); resolve(out); };
      if (out.echoed) done(); else socket.on("echoed", () => setTimeout(done, 0));
    });
  });
})
"""


@pytest.fixture
def server(processes: Processes) -> Server:
    port = free_port()
    script = ROOT / "tests" / "browser" / "eio3_server.py"
    process = processes.start([PYTHON, str(script), str(port)])
    process.wait_for(r"serving on http://127\.0\.0\.1:\d+")
    return Server(process, port)


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], ["polling", "websocket"]])
def test_binary_both_ways_from_the_browser(browser: Any, server: Server, transports) -> None:
    page = browser.new_context().new_page()
    page.set_default_timeout(10_000)
    polling: list[tuple[str, str, str]] = []

    def record(response: Any) -> None:
        if "transport=polling" in response.url and "sid=" in response.url:
            sent = response.request.headers.get("content-type", "")
            polling.append((response.request.method, sent, response.headers["content-type"]))

    page.on("response", record)
    try:
        page.goto(server.url + "/")
        out = page.evaluate(SCRIPT, [transports])
    finally:
        page.context.close()

    assert out["ack"] == ["héllo 😀", [0, 1, 254, 255]]
    assert out["echoed"] == ["héllo 😀", [0, 1, 254, 255]]
    assert out["id"] == out["engineId"]
    if transports == ["polling"]:
        assert out["transport"] == "polling"
        octet = "application/octet-stream"
        assert ("POST", octet, "text/plain; charset=UTF-8") in polling, polling
        assert any(method == "GET" and got == octet for method, _, got in polling), polling
