"""Prometheus metrics: scraped over HTTP from a live server and parsed with
prometheus_client's own parser; each metric moves when the thing it counts happens."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pytest
import redis
from gevent.event import Event
from prometheus_client.parser import text_string_to_metric_families

import geventsio
from tests.redis.harness import RedisServer
from tests.server.sio_support import RawSio, SioApp
from tests.support import eio_target, open_websocket, upgrade, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Scraper:
    """A live server with ``metrics_path="/metrics"`` and a way to read its metrics."""

    def __init__(self, serve_app: Callable[..., Any], **options: Any) -> None:
        allow = options.pop("metrics_allow_request", None)
        self.sio = geventsio.Server(**options)
        self.app = geventsio.WSGIApp(self.sio, metrics_path="/metrics", metrics_allow_request=allow)
        self.live = serve_app(self.app, engine=self.sio.engine)
        self.sio_app = SioApp(self.sio, self.live)

    def scrape(self) -> Samples:
        response = self.live.http().get("/metrics")
        assert response.status == 200, response.body
        assert response.header("content-type").startswith("text/plain; version=0.0.4")
        samples: Samples = {}
        for family in text_string_to_metric_families(response.body.decode()):
            for sample in family.samples:
                samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
        return samples

    def value(self, name: str, **labels: str) -> float:
        return self.scrape().get((name, tuple(sorted(labels.items()))), 0.0)

    def wait_value(self, expected: float, name: str, **labels: str) -> None:
        wait_until(
            lambda: self.value(name, **labels) == expected,
            5,
            f"{name}{labels} == {expected} (is {self.value(name, **labels)})",
        )


@pytest.fixture
def metrics_server(serve_app) -> Callable[..., Scraper]:
    return lambda **options: Scraper(serve_app, **options)


def test_handshakes_upgrades_refusals_and_connected_clients(metrics_server):
    server = metrics_server()
    assert server.value("geventsio_handshakes_total", transport="polling") == 0
    client = server.live.polling()
    client.handshake()
    client.send("0")
    assert client.get()[0].data.startswith("0{")
    assert server.value("geventsio_handshakes_total", transport="polling") == 1
    assert server.value("geventsio_connected_clients", namespace="/", transport="polling") == 1
    assert server.value("geventsio_sessions", transport="polling") == 1

    ws = upgrade(client)
    server.wait_value(1, "geventsio_upgrades_total")
    assert server.value("geventsio_connected_clients", namespace="/", transport="websocket") == 1
    assert server.value("geventsio_connected_clients", namespace="/", transport="polling") == 0

    direct, _ = open_websocket(server.live)
    assert server.value("geventsio_handshakes_total", transport="websocket") == 1

    server.live.http().get("/socket.io/?EIO=4&transport=nope")
    server.live.http().get("/socket.io/?EIO=3&transport=polling")
    assert server.value("geventsio_refused_requests_total", code="0") == 1
    assert server.value("geventsio_refused_requests_total", code="5") == 1

    ws.send_text("1")
    server.wait_value(1, "geventsio_disconnects_total", reason="transport close")
    assert server.value("geventsio_connected_clients", namespace="/", transport="websocket") == 0
    direct.close()


def test_packets_and_bytes_by_type_and_handler_durations(metrics_server):
    server = metrics_server(max_queued_events=1000)
    server.sio.on("known", lambda socket, text: text.upper())
    client = server.sio_app.raw()
    client.connect()
    before = server.scrape()
    client.emit("known", "héllo", ack_id=1)  # not ASCII: bytes, not characters, are counted
    assert client.recv() == '31["HÉLLO"]'
    client.emit("no-handler-1")
    client.emit("no-handler-2")
    server.wait_value(2, "geventsio_handler_duration_seconds_count", event="_other")
    after = server.scrape()

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("geventsio_packets_received_total", type="event") == 3
    packets = ['421["known","héllo"]', '42["no-handler-1"]', '42["no-handler-2"]']
    sent = sum(len(packet.encode()) for packet in packets)
    assert moved("geventsio_bytes_received_total", type="event") == sent
    assert moved("geventsio_packets_sent_total", type="ack") == 1
    assert moved("geventsio_bytes_sent_total", type="ack") == len('431["HÉLLO"]'.encode())
    assert moved("geventsio_handler_duration_seconds_count", event="known") == 1
    assert moved("geventsio_handler_duration_seconds_bucket", event="known", le="+Inf") == 1
    assert after[("geventsio_handler_duration_seconds_sum", (("event", "known"),))] > 0
    client.ws.close()


def test_handler_labels_are_bounded(metrics_server, serve_app):
    server = Scraper(serve_app)
    server.app.metrics.observer.max_event_labels = 1
    for name in ("a", "b"):
        server.sio.on(name, lambda socket: None)
    client = server.sio_app.raw()
    client.connect()
    for name in ("a", "b", "a"):
        client.emit(name)
    server.wait_value(1, "geventsio_handler_duration_seconds_count", event="_other")
    samples = server.scrape()
    events = {
        dict(labels)["event"]
        for name, labels in samples
        if name == "geventsio_handler_duration_seconds_count"
    }
    assert events == {"a", "_other"}
    assert samples[("geventsio_handler_duration_seconds_count", (("event", "a"),))] == 2
    client.ws.close()


def test_ping_round_trip(metrics_server):
    server = metrics_server(ping_interval=0.05, ping_timeout=5)
    ws, _ = open_websocket(server.live)
    assert ws.recv() == "2"
    ws.send_text("3")
    server.wait_value(1, "geventsio_ping_rtt_seconds_count")
    assert server.value("geventsio_packets_received_total", type="pong") == 1
    assert server.value("geventsio_ping_rtt_seconds_sum") > 0
    ws.close()


def test_backpressure_pauses(metrics_server):
    server = metrics_server(max_queued_events=2)
    gate = Event()
    server.sio.on("slow", lambda socket, n: gate.wait(10))
    client = server.sio_app.raw()
    client.connect()
    for number in range(8):
        client.emit("slow", number)
    wait_until(lambda: server.value("geventsio_backpressure_pauses_total") >= 1)
    gate.set()
    client.ws.close()


@pytest.mark.parametrize(("policy", "metric"), [("disconnect", "disconnects"), ("drop", "drops")])
def test_slow_consumers(metrics_server, policy, metric):
    server = metrics_server(max_buffer_size=1000, slow_consumer_policy=policy)
    client = server.live.polling()
    client.handshake()
    client.send("0")
    client.get()  # the CONNECT acknowledgement; no more GETs: the buffer fills
    for _ in range(3):
        server.sio.emit("big", "x" * 600)
    server.wait_value(1 if policy == "disconnect" else 2, f"geventsio_slow_consumer_{metric}_total")
    if policy == "drop":
        client.close()


def test_the_endpoint_honours_allow_request_and_methods(metrics_server):
    server = metrics_server(metrics_allow_request=lambda environ: "HTTP_X_TOKEN" in environ)
    assert server.live.http().get("/metrics").status == 403
    allowed = server.live.http().get("/metrics", headers=[("X-Token", "1")])
    assert allowed.status == 200
    assert b"geventsio_handshakes_total" in allowed.body
    assert b"process_cpu_seconds_total" in allowed.body
    refused = server.live.http().post("/metrics", b"", headers=[("X-Token", "1")])
    assert refused.status == 405
    assert server.live.http().get(eio_target(server.live.path, "nope")).status == 400


def test_a_bare_engine_or_the_engine_path_is_refused():
    sio = geventsio.Server()
    with pytest.raises(ValueError, match="bare engine"):
        geventsio.WSGIApp(sio.engine, metrics_path="/metrics")
    with pytest.raises(ValueError, match=r"Engine\.IO path"):
        geventsio.WSGIApp(sio, metrics_path="/socket.io/")


def test_redis_link_reconnects_queue_and_malformed_drops(serve_app, key):
    own = RedisServer()
    server = Scraper(serve_app, adapter=geventsio.redis_adapter(own.url, key=key))
    try:
        raw = RawSio(*open_websocket(server.live))
        raw.connect()
        link = "geventsio_redis_link_up"
        wait_until(lambda: [v for (n, _), v in server.scrape().items() if n == link] == [1.0])
        assert any(n == "geventsio_redis_publish_queue_depth" for n, _ in server.scrape())

        publisher = redis.Redis.from_url(own.url, protocol=2)
        publisher.publish(f"{key}#/#", pickle.dumps("garbage"))
        publisher.close()
        wait_until(lambda: _total(server, "geventsio_redis_malformed_dropped_total") == 1)

        own.kill()
        wait_until(lambda: _total(server, link) == 0, 10)
        server.sio.emit("lost")  # published while down: a failure
        assert _total(server, "geventsio_redis_publish_failures_total") >= 1
        own.start()
        wait_until(lambda: _total(server, "geventsio_redis_reconnects_total") == 1, 15)
        assert _total(server, link) == 1
        raw.ws.close()
    finally:
        server.sio.shutdown()
        own.kill()


def _total(server: Scraper, name: str) -> float:
    return sum(v for (n, _), v in server.scrape().items() if n == name)
