"""The counts of :mod:`~geventsio.metrics.counters` as Prometheus metrics, and the WSGI
endpoint that serves them in the exposition format.

Gauges (connected clients, Redis links) are read from the server when Prometheus
scrapes; counters and histograms come from the :class:`MetricsObserver`. Nothing here
runs between two scrapes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from geventsio.metrics.counters import Histogram, MetricsObserver

if TYPE_CHECKING:
    from geventsio.server.server import Server

logger = logging.getLogger(__name__)

PREFIX = "geventsio"
#: The text format every Prometheus reads (``generate_latest`` writes it for our names).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
AllowRequest = Callable[[Mapping[str, Any]], bool]


def _counter(name: str, doc: str, values: Mapping[Any, int], label: str) -> Metric:
    family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=[label])
    for key, value in values.items():
        family.add_metric([str(getattr(key, "value", key))], value)
    return family


def _histogram(name: str, doc: str, histograms: Mapping[str, Histogram], label: str) -> Metric:
    family = HistogramMetricFamily(f"{PREFIX}_{name}", doc, labels=[label] if label else None)
    for key, histogram in histograms.items():
        buckets = histogram.cumulative()
        family.add_metric([key] if label else [], buckets, histogram.sum)
    return family


#: The metrics of each Redis link: family, name, help, and how to read it off the link.
_REDIS_FAMILIES: tuple[tuple[Any, str, str, Callable[[Any], float]], ...] = (
    (
        GaugeMetricFamily,
        "redis_link_up",
        "1 while subscribed to Redis, else 0",
        lambda link: 1 if link.up else 0,
    ),
    (
        GaugeMetricFamily,
        "redis_publish_queue_depth",
        "Messages waiting to be published",
        lambda link: link.queue_depth,
    ),
    (
        CounterMetricFamily,
        "redis_reconnects",
        "Links to Redis re-established",
        lambda link: link.reconnects,
    ),
    (
        CounterMetricFamily,
        "redis_publish_failures",
        "Messages that could not be published (link down or queue full)",
        lambda link: link.publish_failures,
    ),
    (
        CounterMetricFamily,
        "redis_malformed_dropped",
        "Messages from Redis dropped as malformed",
        lambda link: link.drops.total,
    ),
)


class ServerCollector(Collector):
    """Yields every geventsio metric of one server.

    :param server: the Socket.IO server.
    :param observer: the observer counting its events (added to the server).
    """

    def __init__(self, server: Server, observer: MetricsObserver) -> None:
        self.server = server
        self.observer = observer

    def collect(self) -> Iterable[Metric]:
        """Called by the registry at each scrape."""
        yield from self._engine_metrics()
        yield from self._socketio_metrics()
        yield from self._redis_metrics()

    def _engine_metrics(self) -> Iterator[Metric]:
        o = self.observer
        yield _counter("handshakes", "Engine.IO handshakes", o.handshakes, "transport")
        yield CounterMetricFamily(
            f"{PREFIX}_upgrades", "Polling sessions upgraded to WebSocket", value=o.upgrades
        )
        yield _counter(
            "refused_requests", "Requests refused, by Engine.IO error code", o.refusals, "code"
        )
        yield _counter(
            "disconnects", "Engine.IO sessions closed, by reason", o.disconnects, "reason"
        )
        for name, direction in (("received", o.received), ("sent", o.sent)):
            tallies = direction.by_label
            packets = {label: tally[0] for label, tally in tallies.items()}
            size = {label: tally[1] for label, tally in tallies.items()}
            yield _counter(f"packets_{name}", f"Packets {name}, by type", packets, "type")
            yield _counter(f"bytes_{name}", f"Bytes of the packets {name}, by type", size, "type")
        yield _histogram(
            "ping_rtt_seconds", "Seconds from a ping to its pong", {"": o.ping_rtt}, ""
        )
        sessions = GaugeMetricFamily(
            f"{PREFIX}_sessions", "Open Engine.IO sessions, by transport", labels=["transport"]
        )
        by_transport: dict[str, int] = {"polling": 0, "websocket": 0}
        for session in list(self.server.engine.sessions.values()):
            by_transport[session.transport.value] += 1
        for transport, count in by_transport.items():
            sessions.add_metric([transport], count)
        yield sessions

    def _socketio_metrics(self) -> Iterator[Metric]:
        o = self.observer
        clients = GaugeMetricFamily(
            f"{PREFIX}_connected_clients",
            "Connected Socket.IO clients, by namespace and transport",
            labels=["namespace", "transport"],
        )
        counts: dict[tuple[str, str], int] = {}
        for connection in list(self.server.connections.values()):
            transport = connection.engine.transport.value
            for name in list(connection.sockets):
                counts[name, transport] = counts.get((name, transport), 0) + 1
        for (name, transport), count in sorted(counts.items()):
            clients.add_metric([name, transport], count)
        yield clients
        yield _histogram(
            "handler_duration_seconds",
            "Seconds an event spent in its handler, by event (events without a handler of "
            "their own, and any past the label limit, as _other)",
            o.handlers,
            "event",
        )
        yield CounterMetricFamily(
            f"{PREFIX}_backpressure_pauses",
            "Times a client was read no further until its handlers caught up",
            value=o.pauses,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_slow_consumer_disconnects",
            "Sessions closed because their outgoing buffer was full",
            value=o.slow_consumer_disconnects,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_slow_consumer_drops",
            "Packets dropped because their session's outgoing buffer was full",
            value=o.slow_consumer_drops,
        )

    def _redis_links(self) -> list[Any]:
        links: dict[int, Any] = {}
        for namespace in self.server.all_namespaces():
            link = getattr(namespace.adapter, "link", None)
            if link is not None:
                links[id(link)] = link
        return list(links.values())

    def _redis_metrics(self) -> Iterator[Metric]:
        links = self._redis_links()
        if not links:
            return
        families = [
            (kind(f"{PREFIX}_{name}", doc, labels=["link"]), read)
            for kind, name, doc, read in _REDIS_FAMILIES
        ]
        for link in links:
            for family, read in families:
                family.add_metric([link.uid], read(link))
        yield from (family for family, _ in families)


class Metrics:
    """Prometheus metrics of one server: an observer that counts, and a registry.

    :param server: the Socket.IO server to measure.
    :param registry: where the metrics are registered (default: a registry of their
        own, with the process and garbage-collector metrics too).
    :param max_event_labels: distinct event names in the handler histogram.
    :param known_event: ``f(socket, event) -> bool`` choosing the events that earn a
        label (see :class:`MetricsObserver`).
    """

    def __init__(
        self,
        server: Server,
        registry: CollectorRegistry | None = None,
        *,
        max_event_labels: int = 100,
        known_event: Callable[..., bool] | None = None,
    ) -> None:
        self.observer = MetricsObserver(max_event_labels, known_event)
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            GCCollector(registry=registry)
        self.registry = registry
        registry.register(ServerCollector(server, self.observer))
        server.add_observer(self.observer)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text exposition format."""
        return generate_latest(self.registry)


def metrics_endpoint(
    metrics: Metrics, allow_request: AllowRequest | None = None
) -> Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]:
    """A WSGI application answering GET with the metrics (403 when ``allow_request``
    returns False or raises, 405 for another method)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"GET only\n")
        if allow_request is not None and not _allowed(allow_request, environ):
            return _plain(start_response, "403 Forbidden", b"Forbidden\n")
        body = metrics.exposition()
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))]
        )
        return [body] if environ["REQUEST_METHOD"] == "GET" else []

    return app


def _allowed(allow_request: AllowRequest, environ: Mapping[str, Any]) -> bool:
    try:
        return bool(allow_request(environ))
    except Exception:
        logger.exception("the metrics allow_request raised; refusing the scrape")
        return False


def _plain(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
