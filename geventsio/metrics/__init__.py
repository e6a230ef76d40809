"""Prometheus metrics of a geventsio server (the ``metrics`` extra: ``prometheus_client``).

``WSGIApp(sio, metrics_path="/metrics")`` is all most applications need; :class:`Metrics`
gives the registry to serve it some other way.
"""

from geventsio.metrics.counters import MetricsObserver as MetricsObserver
from geventsio.metrics.exposition import Metrics as Metrics
from geventsio.metrics.exposition import metrics_endpoint as metrics_endpoint
