"""Fixtures of the Socket.IO server tests."""

from __future__ import annotations

import pytest

from tests.server.sio_support import SioServerFactory


@pytest.fixture
def sio_server(serve_app) -> SioServerFactory:
    """``sio_server(legacy_app=None, **options) -> SioApp``: a live ``geventsio.Server``
    (``.sio``, ``.url``, ``.live``, ``.raw()``, ``.plan(...)``) with the leak check."""
    return SioServerFactory(serve_app)
