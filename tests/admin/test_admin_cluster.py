"""The Admin UI across a Redis cluster: a UI connected to one server sees the sockets and
the stats of every server."""

from __future__ import annotations

import pytest

import geventsio
from tests.support.node import run_node

# A user connects to server B, then the UI logs in on server A and waits until it has
# the list of sockets and the stats of both servers.
SCENARIO = """
import { io } from "socket.io-client";
const [a, b] = process.argv.slice(2);
const user = io(b, { transports: ["websocket"], forceNew: true });
await new Promise((resolve) => user.once("connect", resolve));
const userId = user.id;
const admin = io(a + "/admin", { auth: { username: "admin", password: "pw" }, forceNew: true });
const got = [];
admin.onAny((event, ...args) => got.push([event, ...args]));
const servers = () => new Set(got.filter((e) => e[0] === "server_stats").map((e) => e[1].serverId));
const deadline = Date.now() + 15000;
while ((servers().size < 2 || !got.some((e) => e[0] === "all_sockets")) && Date.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
admin.disconnect();
user.disconnect();
console.log(JSON.stringify({ userId, servers: [...servers()], got }));
process.exit(0);
"""


@pytest.mark.e2e
def test_a_ui_on_one_server_sees_every_server(serve_app, redis_url: str, key: str) -> None:
    password = geventsio.hash_password("pw", rounds=4)
    servers = []
    for name in ("A", "B"):
        sio = geventsio.Server(adapter=geventsio.redis_adapter(redis_url, key=key))
        sio.instrument(auth={"username": "admin", "password": password}, server_id=name)
        servers.append((sio, serve_app(geventsio.WSGIApp(sio), engine=sio.engine)))
    try:
        (_, a), (_, b) = servers
        result = run_node(SCENARIO, a.url, b.url, timeout=40)
    finally:
        for sio, _ in servers:
            sio.shutdown()

    assert sorted(result["servers"]) == ["A", "B"]
    [listed] = [e[1] for e in result["got"] if e[0] == "all_sockets"]
    [user] = [s for s in listed if s["nsp"] == "/"]
    assert user["id"] == result["userId"]
    assert user["transport"] == "websocket"  # from the remote socket's data
    assert isinstance(user["clientId"], str) and len(user["clientId"]) == 12
    assert user["rooms"] == [result["userId"]]
    assert user["handshake"]["query"]["transport"] == "websocket"
