"""flask_ext passes the observability options through: ``SocketIO(app, metrics_path=...)``
and ``socketio.instrument(...)``."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from flask_ext import SocketIO


def test_metrics_path_serves_the_metrics_guarded_by_allow_request(app: Flask) -> None:
    socketio = SocketIO(
        app, metrics_path="/metrics", metrics_allow_request=lambda environ: "HTTP_X_OK" in environ
    )

    @socketio.on("chat")
    def chat(text: str) -> str:
        return text

    client = socketio.test_client(app)
    assert client.emit("chat", "hi", callback=True) == "hi"
    http = app.test_client()
    assert http.get("/metrics").status_code == 403
    response = http.get("/metrics", headers={"X-Ok": "1"})
    assert response.status_code == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }
    assert samples[("geventsio_handler_duration_seconds_count", (("event", "chat"),))] == 1
    assert http.get("/elsewhere").status_code == 404  # the Flask app still answers the rest
    client.disconnect()


def test_instrument_after_init_app(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    socketio = SocketIO()
    with pytest.raises(RuntimeError, match="after init_app"):
        socketio.instrument(auth=None)
    socketio.init_app(app)
    with caplog.at_level(logging.WARNING, "geventsio.admin"):
        admin = socketio.instrument(auth=None, mode="production", read_only=True)
    assert "has no authentication" in caplog.text
    client = socketio.test_client(app, namespace="/admin")
    received = client.get_received("/admin")
    assert {"name": "config", "args": [{"supportedFeatures": ["AGGREGATED_EVENTS"]}],
            "namespace": "/admin"} in received  # fmt: skip
    client.disconnect(namespace="/admin")
    admin.close()
