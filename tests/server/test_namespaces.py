"""Namespaces in process: registration misuse, and dynamic children as server-wide
namespaces (reachable by name, shut down with the server)."""

from __future__ import annotations

import re

import pytest

import geventsio
from geventsio import LocalProtocolError
from geventsio.adapters.memory import InMemoryAdapter


def test_names_are_normalised_and_namespaces_created_once():
    sio = geventsio.Server()
    assert sio.of("chat") is sio.of("/chat")
    assert sio.of("/chat").name == "/chat"


def test_registration_misuse_fails_at_once():
    sio = geventsio.Server()
    with pytest.raises(LocalProtocolError, match="not callable"):
        sio.on("chat", "not a function")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="compiled pattern or a callable"):
        sio.of(42)  # type: ignore[arg-type]


class ClosingAdapter(InMemoryAdapter):
    """An in-memory adapter that records its close (as a cluster adapter must close)."""

    closed: list[str] = []

    def close(self) -> None:
        ClosingAdapter.closed.append(self.namespace.name)


def test_shutdown_closes_the_adapter_of_every_namespace(sio_server, monkeypatch):
    # dynamic children included: a cluster adapter holds connections to close
    monkeypatch.setattr(ClosingAdapter, "closed", [])
    app = sio_server(adapter=ClosingAdapter)
    app.sio.of(re.compile(r"^/dyn-\d+$"))
    app.sio.of("/static")
    raw = app.raw()
    raw.connect("/dyn-1")

    app.sio.shutdown()

    assert sorted(ClosingAdapter.closed) == ["/", "/dyn-1", "/static"]
