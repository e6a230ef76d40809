"""The example nginx configuration (``ip_hash``) in front of three geventsio servers that
share rooms through Redis.

Stickiness is observed, not assumed: each client sends from an address of its own
(127.0.N.1, chosen so that ip_hash spreads them over all three servers), each server
says who it is (``whoami``), and nginx logs, for every request, the client's address
and the server that answered. Every request of a client must reach one server, the one
that client's ``whoami`` names, and no request may be refused.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from tests.nginx.harness import (
    NAMES,
    Backend,
    Nginx,
    Request,
    by_name,
    nginx_binary,
    nginx_command,
    render_config,
    run_clients,
    spread_addresses,
)
from tests.redis.harness import free_port
from tests.support.engineio import eio_target
from tests.support.http import HttpClient

#: Echo events (each acknowledged) every client sends.
EMITS = 25

BOTH = ["polling", "websocket"]


def check_served(records: dict[str, dict[str, Any]], backends: list[Backend], emits: int) -> None:
    """Every client connected, got every acknowledgement and no error; the servers say
    which of them each client reached; together, the clients reached all three."""
    pids = {backend.name: backend.pid for backend in backends}
    for record in records.values():
        assert record["connected"] and record["errors"] == [], record
        assert record["acks"] == emits, record
        assert record["whoami"]["pid"] == pids[record["whoami"]["node"]], record
    served = Counter(record["whoami"]["node"] for record in records.values())
    assert set(served) == set(NAMES), f"ip_hash did not spread the clients: {served}"


def last_transport_logged(requests: list[Request], record: dict[str, Any]) -> bool:
    """Whether the log has the client's request on the transport it ended on."""
    mine = [r for r in requests if r.addr == record["address"]]
    if record["transport"] == "websocket":
        return any(r.transport == "websocket" and r.status == 101 for r in mine)
    return bool(mine)


def check_sticky(
    nginx: Nginx, records: dict[str, dict[str, Any]], backends: list[Backend]
) -> list[Request]:
    """In nginx's log: every request of a client went to the server its ``whoami``
    names, and none was refused. Returns the log.

    nginx logs a request when its response is complete, a WebSocket (101) only once it
    closed: the check starts when every client's last transport is in the log.
    """
    address_of = {backend.name: backend.address for backend in backends}
    requests = nginx.wait_requests(
        lambda logged: all(last_transport_logged(logged, r) for r in records.values()),
        "every client's requests, its WebSocket's too",
    )
    for record in records.values():
        mine = {r.upstream for r in requests if r.addr == record["address"]}
        assert mine == {address_of[record["whoami"]["node"]]}, (record, mine)
    # 499 is nginx's "client closed the request": the GET pending when a client leaves.
    assert [r for r in requests if r.status >= 400 and r.status != 499] == []
    assert not re.search(r"\[(error|crit|alert|emerg)\]", nginx.errors()), nginx.errors()
    for backend in backends:
        assert "unknown session id" not in backend.stderr()
    return requests


def test_polling_clients_stay_on_their_server(backends: list[Backend], nginx: Nginx) -> None:
    addresses = spread_addresses(per_server=2)
    clients = [
        {"name": f"poll-{i}", "address": address, "transports": ["polling"]}
        for i, address in enumerate(addresses)
    ]
    result = run_clients(nginx.url, clients, emits=EMITS)
    assert result["failure"] is None, result["failure"]
    records = by_name(result)
    check_served(records, backends, EMITS)
    for record in records.values():
        assert record["transport"] == "polling" == record["whoami"]["transport"]
        # What the proxy tells the server: the client's address, scheme and public host.
        assert record["whoami"]["headers"] == {
            "host": f"127.0.0.1:{nginx.port}",
            "x-forwarded-for": record["address"],
            "x-forwarded-proto": "http",
            "upgrade": None,
        }
        assert record["whoami"]["address"] == record["address"]  # through ProxyFix

    # Each emit is one POST and its acknowledgement one GET: many requests per session.
    def all_posts_logged(requests: list[Request]) -> bool:
        posts = Counter(r.addr for r in requests if r.method == "POST")
        return all(posts[address] >= EMITS for address in addresses)

    nginx.wait_requests(all_posts_logged, f"{EMITS} POSTs of every client")
    requests = check_sticky(nginx, records, backends)
    assert {r.transport for r in requests} == {"polling"}


def test_websocket_and_upgrading_clients(backends: list[Backend], nginx: Nginx) -> None:
    addresses = spread_addresses(per_server=2)
    clients = [
        {
            "name": f"{'ws' if i % 2 else 'upgrade'}-{i}",
            "address": address,
            "transports": ["websocket"] if i % 2 else BOTH,
        }
        for i, address in enumerate(addresses)
    ]
    result = run_clients(nginx.url, clients, emits=EMITS)
    assert result["failure"] is None, result["failure"]
    records = by_name(result)
    check_served(records, backends, EMITS)
    for record in records.values():
        assert record["transport"] == "websocket" == record["whoami"]["transport"], record
        assert record["whoami"]["headers"]["x-forwarded-for"] == record["address"]
        assert record["whoami"]["address"] == record["address"]

    requests = check_sticky(nginx, records, backends)
    for record in records.values():
        transports = [r.transport for r in requests if r.addr == record["address"]]
        if record["name"].startswith("ws"):
            assert transports == ["websocket"], record
        else:  # the polling handshake and requests, then the upgrade: one server
            assert transports[0] == "polling" and "websocket" in transports, record


def test_room_broadcast_reaches_clients_of_every_server(
    backends: list[Backend], nginx: Nginx
) -> None:
    # Three members per server over the three transports' modes; one outsider.
    addresses = spread_addresses(per_server=3)
    modes = [["polling"], ["websocket"], BOTH]
    clients = [
        {
            "name": f"member-{i}",
            "address": address,
            "transports": modes[i % 3],
            "rooms": ["game", "all"],
        }
        for i, address in enumerate(addresses[1:])
    ]
    clients.append(
        {"name": "outsider", "address": addresses[0], "transports": BOTH, "rooms": ["all"]}
    )
    members = [client["name"] for client in clients[:-1]]
    # One member of each server asks its server to broadcast; then a last broadcast to
    # everyone, which reaches the outsider after anything its server sent it before.
    broadcasters = ["member-1", "member-4", "member-7"]
    broadcasts = [{"from": name, "room": "game", "members": members} for name in broadcasters]
    broadcasts.append({"from": "member-0", "room": "all", "members": [*members, "outsider"]})
    result = run_clients(nginx.url, clients, emits=2, broadcasts=broadcasts)
    assert result["failure"] is None, result["failure"]
    records = by_name(result)
    check_served(records, backends, 2)

    origins = [records[name]["whoami"]["node"] for name in broadcasters]
    assert sorted(origins) == sorted(NAMES), "one broadcast from each server"
    last = records["member-0"]["whoami"]["node"]
    for name in members:
        news = [(m["from"], m["text"]) for m in records[name]["news"]]
        assert news == [
            (origins[0], "game-0"),
            (origins[1], "game-1"),
            (origins[2], "game-2"),
            (last, "all-3"),
        ], name
    assert records["outsider"]["news"] == [{"from": last, "text": "all-3"}]
    check_sticky(nginx, records, backends)


def test_same_origin_check_sees_the_public_host(backends: list[Backend], nginx: Nginx) -> None:
    """The example forwards ``Host`` with its port ($http_host): a page served through
    nginx passes the servers' default same-origin check, another origin does not."""
    target = eio_target("/socket.io/")
    client = HttpClient("127.0.0.1", nginx.port)
    same = client.get(target, headers=[("Origin", nginx.url)])
    assert same.status == 200 and same.text.startswith('0{"sid":'), same
    other = client.get(target, headers=[("Origin", "http://127.0.0.1:1")])
    assert other.status == 403, other
    assert other.json() == {"code": 4, "message": "Forbidden"}


def test_example_config_is_valid(tmp_path: Path) -> None:
    """``nginx -t`` accepts the example (its ports and paths replaced)."""
    backends = ["127.0.0.1:5001", "10.0.0.12:5001", "[::1]:8000"]
    (tmp_path / "nginx.conf").write_text(render_config(tmp_path, free_port(), backends))
    (tmp_path / "temp").mkdir()
    checked = subprocess.run(
        nginx_command(nginx_binary(), tmp_path, "-t"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr
