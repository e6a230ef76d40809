"""Fixtures for the Flask extension: a fresh Flask application and its SocketIO."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from flask import Flask

from flask_ext import SocketIO

#: The loggers the ``logger``/``engineio_logger`` options and ``run()`` may configure.
CONFIGURABLE_LOGGERS = (
    "geventsio.server",
    "geventsio.engine",
    "flask_ext",
    "geventsio.serving.access",
)


@pytest.fixture
def app() -> Flask:
    """A Flask application with a secret key (cookie sessions need one)."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test secret", TESTING=True)
    return app


@pytest.fixture
def socketio(app: Flask) -> SocketIO:
    """The application's SocketIO, with the defaults."""
    return SocketIO(app)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo what logging options did to the library's loggers."""
    saved = {}
    for name in CONFIGURABLE_LOGGERS:
        log = logging.getLogger(name)
        saved[name] = (log.level, list(log.handlers), log.propagate)
    yield
    for name, (level, handlers, propagate) in saved.items():
        log = logging.getLogger(name)
        log.setLevel(level)
        log.handlers[:] = handlers
        log.propagate = propagate
