"""examples/monitoring started as its README says: the chat works, /metrics counts it,
and the Admin UI's namespace lets the admin in and lists the chat's socket."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.processes import PYTHON, ROOT, Processes, Server, free_port
from tests.support import HttpClient
from tests.support.node import run_node

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "monitoring"

# A chat user joins a room and says something; then the admin logs in and reports what
# it was sent: the config and every socket.
SCENARIO = """
import {{ io }} from "socket.io-client";
const url = {url};
const user = io(url, {{ auth: {{ nickname: "ann" }} }});
await new Promise((resolve) => user.once("connect", resolve));
const joined = await user.emitWithAck("join", "lobby");
const said = await user.emitWithAck("chat", "hello");
const userId = user.id;
const admin = io(url + "/admin", {{ auth: {{ username: "admin", password: "change-me" }} }});
const got = {{}};
admin.onAny((event, ...args) => {{ got[event] = args; }});
const deadline = Date.now() + 10000;
while (!got.all_sockets && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
admin.disconnect();
user.disconnect();
console.log(JSON.stringify({{ joined, said, userId, got }}));
process.exit(0);
"""


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with HttpClient("127.0.0.1", port) as http:
        response = http.get("/metrics")
    assert response.status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.body.decode())
        for sample in family.samples
    }


def test_the_monitoring_example_serves_chat_metrics_and_the_admin_ui(
    processes: Processes,
) -> None:
    port = free_port()
    process = processes.start(
        [PYTHON, str(EXAMPLE / "app.py"), "--port", str(port)],
        cwd=EXAMPLE,
        env={"ADMIN_PASSWORD": "change-me"},
    )
    process.wait_for(r"serving on http://127\.0\.0\.1:\d+")
    server = Server(process, port)
    with HttpClient("127.0.0.1", port) as http:
        assert b'socket.emit("chat"' in http.get("/").body

    result = run_node(SCENARIO.format(url=json.dumps(server.url)), timeout=30)

    assert result["joined"] == {"room": "lobby"} and result["said"] == "ok"
    assert result["got"]["config"][0]["supportedFeatures"][-1] == "ALL_EVENTS"
    listed = {(s["nsp"], s["id"]) for s in result["got"]["all_sockets"][0]}
    assert ("/", result["userId"]) in listed
    samples = scrape(port)
    assert samples[("geventsio_packets_received_total", (("type", "event"),))] >= 2
    assert samples[("geventsio_handler_duration_seconds_count", (("event", "chat"),))] == 1
    # The admin namespace shares the user's connection (the client multiplexes them).
    assert samples[("geventsio_handshakes_total", (("transport", "polling"),))] == 1
    # Every metric the Grafana dashboard charts is one the server serves (the Redis link's
    # only with the Redis adapter).
    dashboard = json.loads((EXAMPLE / "grafana-dashboard.json").read_text())
    charted = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"geventsio_[a-z_]+", target["expr"])
    }
    with HttpClient("127.0.0.1", port) as http:
        exposition = http.get("/metrics").body.decode()
    missing = {n for n in charted if "redis" not in n and n not in exposition}
    assert not missing
    assert len(charted) > 15
