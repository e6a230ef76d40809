"""The deployment examples, started as their READMEs say, with real clients."""

from __future__ import annotations

import json
import signal

import pytest

from tests.deploy.processes import PYTHON, ROOT, Processes, Server, free_port
from tests.support import HttpClient
from tests.support.node import run_node

pytestmark = pytest.mark.e2e

LEGACY = ROOT / "examples" / "legacy_wsgi"
GUNICORN_EXAMPLE = ROOT / "examples" / "gunicorn"

# Connects, places a good and a bad order through the legacy app's form, and reports the
# HTTP answers and the notifications that arrived.
ORDER_CLIENT = """
import {{ io }} from "socket.io-client";
const url = {url};
const socket = io(url, {{ transports: [{transports}] }});
const created = [];
socket.on("order_created", (order) => created.push(order));
await new Promise((resolve) => socket.once("connect", resolve));
const post = (body) => fetch(url + "/orders", {{
  method: "POST", redirect: "manual", body,
  headers: {{ "Content-Type": "application/x-www-form-urlencoded" }},
}});
const good = await post("item=tea+cups&quantity=3");
const bad = await post("item=&quantity=2");
const deadline = Date.now() + 5000;
while (created.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 300));  // a notification for the bad order would be here
const page = await (await fetch(url + "/")).text();
socket.disconnect();
console.log(JSON.stringify({{
  good: [good.status, good.headers.get("location")], bad: bad.status, created,
  listed: page.includes("#1 3 x tea cups"), transport: socket.io.engine?.transport?.name,
}}));
process.exit(0);
"""


@pytest.fixture
def legacy_example(processes: Processes) -> Server:
    port = free_port()
    process = processes.start([PYTHON, str(LEGACY / "app.py"), "--port", str(port)], cwd=LEGACY)
    process.wait_for(r"serving on http://127\.0\.0\.1:\d+")
    return Server(process, port)


@pytest.mark.parametrize("transports", ['"polling"', '"polling", "websocket"'])
def test_legacy_app_notifies_successful_orders(legacy_example: Server, transports: str) -> None:
    script = ORDER_CLIENT.format(url=json.dumps(legacy_example.url), transports=transports)

    result = run_node(script, timeout=30)

    assert result["good"] == [303, "/orders/1"]
    assert result["bad"] == 400
    assert result["created"] == [{"url": "/orders/1", "item": "tea cups", "quantity": "3"}]
    assert result["listed"]


def test_legacy_example_serves_its_live_page_and_the_client(legacy_example: Server) -> None:
    with HttpClient("127.0.0.1", legacy_example.port) as http:
        page = http.get("/live")
        bundle = http.get("/socket.io.min.js")
        missing = http.get("/nowhere")

    assert page.status == 200 and b'socket.on("order_created"' in page.body
    assert page.header("Content-Type") == "text/html; charset=utf-8"
    assert bundle.status == 200 and bundle.header(
        "Content-Type",
    ) == ("text/javascript; charset=utf-8"), "run `npm ci` in examples/legacy_wsgi"
    assert missing.status == 404  # the legacy app's own answer


NOTICE_CLIENT = """
import { io } from "socket.io-client";
const socket = io(process.argv[2], { transports: [process.argv[3]] });
const welcome = new Promise((resolve) => socket.once("welcome", resolve));
const notice = new Promise((resolve) => socket.once("notice", resolve));
await new Promise((resolve) => socket.once("connect", resolve));
const ack = await socket.timeout(5000).emitWithAck("post", "hello board");
const result = { welcome: await welcome, ack, notice: await notice };
socket.disconnect();
console.log(JSON.stringify(result));
process.exit(0);
"""


def test_gunicorn_example_starts_with_its_config_and_serves(processes: Processes) -> None:
    server = processes.gunicorn("--config", "gunicorn.conf.py", app="app:app", cwd=GUNICORN_EXAMPLE)
    assert "Using worker: geventsio.serving.gunicorn.GeventWorker" in server.process.output

    for transport in ("polling", "websocket"):
        result = run_node(NOTICE_CLIENT, server.url, transport, timeout=30)
        assert result["ack"] == "posted"
        assert result["notice"] == "hello board"
        assert isinstance(result["welcome"]["worker"], int)
    with HttpClient("127.0.0.1", server.port) as http:
        assert http.get("/healthz").body == b"ok"

    server.process.signal(signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0
    assert "Traceback" not in server.process.output
    assert "monkey-patching" not in server.process.output
