"""nginx round-robin (no ``ip_hash``) in front of three geventsio servers that share
their sessions through Redis (``RedisCluster``): every transport mode works, and a
broadcast reaches every client once.

Round-robin over three servers, with one nginx worker, sends consecutive requests to
consecutive servers: most requests of a polling session reach a server that does not own
it, and are forwarded to the owner.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.nginx.harness import NAMES, Backend, StartNginx, by_name, run_clients

MODES = {"polling": ["polling"], "upgrade": ["polling", "websocket"], "websocket": ["websocket"]}


def test_every_transport_mode_without_stickiness(
    cluster_backends: list[Backend], start_nginx: StartNginx
) -> None:
    nginx = start_nginx(cluster_backends, balance=None)
    clients = [
        {"name": f"{mode}-{i}", "address": "127.0.0.1", "transports": transports, "rooms": ["all"]}
        for mode, transports in MODES.items()
        for i in range(3)
    ]
    names = [client["name"] for client in clients]
    broadcasters = ["polling-0", "upgrade-1", "websocket-2"]
    broadcasts = [{"from": name, "room": "all", "members": names} for name in broadcasters]
    result = run_clients(nginx.url, clients, emits=5, broadcasts=broadcasts)

    assert result["failure"] is None, result["failure"]
    records = by_name(result)
    for name, record in records.items():
        assert record["connected"] and record["errors"] == [], record
        assert record["acks"] == 5, record
        expected = "polling" if name.startswith("polling") else "websocket"
        assert record["transport"] == expected, record
        assert record["whoami"]["node"] in NAMES
    origins = [records[name]["whoami"]["node"] for name in broadcasters]
    for name in names:
        news = [(m["from"], m["text"]) for m in records[name]["news"]]
        assert news == [(origins[n], f"all-{n}") for n in range(3)], name

    # Without stickiness indeed: the requests of one session reached several servers.
    upstreams: dict[str, set[str]] = {}
    for request in nginx.requests():
        sid = parse_qs(urlsplit(request.uri).query).get("sid")
        if sid:
            upstreams.setdefault(sid[0], set()).add(request.upstream)
    assert any(len(servers) > 1 for servers in upstreams.values()), upstreams
