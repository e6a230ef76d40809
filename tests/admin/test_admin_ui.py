"""The Socket.IO Admin UI: the admin namespace driven by the real socket.io-client exactly
as the hosted UI drives it, and what it receives compared field by field with what the
Node reference with ``@socket.io/admin-ui`` sends for the same scenario."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent import subprocess

import geventsio
from tests.support.node import node_executable, run_node

JS_ADMIN = Path(__file__).resolve().parents[1] / "js_admin"
SCENARIO = JS_ADMIN / "admin_scenario.mjs"
USERNAME, PASSWORD = "admin", "s3cret"


@pytest.fixture(scope="module")
def password_hash() -> str:
    return geventsio.hash_password(PASSWORD, rounds=4)  # cheap rounds: the check is the same


def build_app(password_hash: str, **instrument: Any) -> tuple[geventsio.Server, Any]:
    sio = geventsio.Server(cors_allowed_origins="*")

    @sio.on("hello")
    def hello(socket: geventsio.Socket, arg: str) -> str:
        socket.emit("welcome", {"to": socket.id})
        return f"hello {arg}"

    admin = sio.instrument(
        auth={"username": USERNAME, "password": password_hash}, server_id="python", **instrument
    )
    return sio, admin


def run_scenario(url: str, **options: Any) -> dict[str, Any]:
    if not (JS_ADMIN / "node_modules").is_dir():
        pytest.fail("tests/js_admin/node_modules is missing: run `npm ci` in tests/js_admin")
    report = run_node(
        SCENARIO,
        json.dumps({"url": url, "username": USERNAME, "password": PASSWORD, **options}),
        timeout=40,
    )
    assert report["ok"], report
    return report


@pytest.fixture
def geventsio_admin(serve_app, password_hash) -> Iterator[Any]:
    def start(**instrument: Any) -> tuple[Any, Any]:
        sio, admin = build_app(password_hash, **instrument)
        live = serve_app(geventsio.WSGIApp(sio), engine=sio.engine)
        started.append(sio)
        return live, admin

    started: list[geventsio.Server] = []
    yield start
    for sio in started:
        sio.shutdown()


def events(report: dict[str, Any], name: str) -> list[list[Any]]:
    return [entry[1:] for entry in report["received"] if entry[0] == name]


@pytest.mark.e2e
def test_the_ui_logs_in_lists_sockets_sees_events_and_acts(geventsio_admin):
    live, _ = geventsio_admin()
    report = run_scenario(live.url)

    assert report["refusal"] == {"message": "invalid credentials", "data": None}
    assert report["sessionId"] == "string" and report["reused"] is True
    [[config]] = events(report, "config")
    assert config == {
        "supportedFeatures": [
            "EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT",
            "AGGREGATED_EVENTS", "ALL_EVENTS",
        ]
    }  # fmt: skip
    [[all_sockets]] = events(report, "all_sockets")
    assert [s["nsp"] for s in all_sockets] == ["/admin"]  # the UI itself

    user = report["user"]
    assert user["ack"] == "hello world"
    assert [e[0] for e in user["received"]] == ["welcome", "announce"]
    assert user["disconnectReason"] == "io server disconnect"

    connected = [e for e in events(report, "socket_connected") if e[0]["nsp"] == "/"]
    [[socket, when]] = connected
    assert socket["id"] == user["id"] and socket["transport"] == "polling"
    assert socket["rooms"] == [user["id"]] and socket["data"] == {}
    assert when.endswith("Z")
    assert ["/", user["id"], ["hello", "world"]] == events(report, "event_received")[0][:3]
    sent = [e[:3] for e in events(report, "event_sent")]
    assert ["/", user["id"], ["welcome", {"to": user["id"]}]] in sent
    assert ["/", user["id"], ["announce", "to the vip room"]] in sent
    assert ["/", "vip", user["id"]] in [e[:3] for e in events(report, "room_joined")]
    assert ["/", "vip", user["id"]] in [e[:3] for e in events(report, "room_left")]
    disconnected = [e[:3] for e in events(report, "socket_disconnected")]
    assert ["/", user["id"], "server namespace disconnect"] in disconnected
    stats = events(report, "server_stats")[0][0]
    assert stats["serverId"] == "python"
    assert {"name": "/admin", "socketsCount": 1} in stats["namespaces"]


@pytest.mark.e2e
def test_read_only_production_mode_offers_no_actions_and_no_event_stream(geventsio_admin):
    live, _ = geventsio_admin(read_only=True, mode="production")
    report = run_scenario(live.url)
    [[config]] = events(report, "config")
    assert config == {"supportedFeatures": ["AGGREGATED_EVENTS"]}
    names = {entry[0] for entry in report["received"]}
    assert names == {"session", "config", "server_stats"}
    assert "disconnectReason" not in report["user"]


def test_no_auth_logs_a_warning_and_a_plain_password_is_refused(caplog):
    sio = geventsio.Server()
    with caplog.at_level(logging.WARNING, "geventsio.admin"):
        admin = sio.instrument(auth=None)
    admin.close()
    assert "has no authentication" in caplog.text
    with pytest.raises(ValueError, match="bcrypt hash"):
        geventsio.Server().instrument(auth={"username": "a", "password": "plain"})
    with pytest.raises(ValueError, match="mode"):
        geventsio.Server().instrument(auth=None, mode="staging")


# -- the Node reference, side by side -----------------------------------------------------


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return ["list", *sorted({json.dumps(shape(item), sort_keys=True) for item in value})]
    return type(value).__name__ if value is not None else "null"


#: Parts whose inner keys depend on the client's request or the machine, not the server.
FREE_FORM = ("headers", "query")


def normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("object" if k in FREE_FORM else normalise(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    return value


@pytest.fixture
def node_admin(password_hash) -> Iterator[str]:
    process = subprocess.Popen(
        [node_executable(), str(JS_ADMIN / "node_admin_server.mjs"), USERNAME, password_hash,
         "development"],
        stdout=subprocess.PIPE,
        cwd=str(JS_ADMIN),
    )  # fmt: skip
    try:
        with gevent.Timeout(20):
            line = process.stdout.readline().decode()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        process.wait()


@pytest.mark.e2e
def test_every_event_has_the_fields_node_sends(geventsio_admin, node_admin):
    live, _ = geventsio_admin()
    ours = run_scenario(live.url)
    node = run_scenario(node_admin)

    for key in ("refusal", "sessionId", "reused"):
        assert ours[key] == node[key], key
    assert [e[0] for e in ours["user"]["received"]] == [e[0] for e in node["user"]["received"]]
    assert ours["user"]["disconnectReason"] == node["user"]["disconnectReason"]
    names = sorted({entry[0] for entry in node["received"]})
    assert sorted({entry[0] for entry in ours["received"]}) == names
    for name in names:
        if name == "server_stats":
            continue  # below: its aggregated events depend on timing
        node_shape = {json.dumps(shape(normalise(e)), sort_keys=True) for e in events(node, name)}
        our_shape = {json.dumps(shape(normalise(e)), sort_keys=True) for e in events(ours, name)}
        assert our_shape == node_shape, name
    [[config_ours]], [[config_node]] = events(ours, "config"), events(node, "config")
    assert config_ours == config_node
    kinds = {e["type"] for s in events(node, "server_stats") for e in s[0]["aggregatedEvents"]}
    our_kinds = {e["type"] for s in events(ours, "server_stats") for e in s[0]["aggregatedEvents"]}
    assert our_kinds == kinds
    stats_ours, stats_node = (
        {k: v for k, v in events(report, "server_stats")[0][0].items() if k != "aggregatedEvents"}
        for report in (ours, node)
    )
    assert shape(stats_ours) == shape(stats_node)
