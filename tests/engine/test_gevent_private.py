"""What geventsio reads from gevent's private API: whether a pywsgi log would write."""

from __future__ import annotations

import logging

import pytest
from gevent import pywsgi
from gunicorn.config import Config
from gunicorn.glogging import Logger as GunicornLogger

from geventsio.engine.gevent_private import PYWSGI_FAST_PATH, is_noop_log

pytestmark = pytest.mark.skipif(not PYWSGI_FAST_PATH, reason="pywsgi's internals differ")


def gunicorn_logger(level: str) -> GunicornLogger:
    cfg = Config()
    cfg.set("loglevel", level)
    return GunicornLogger(cfg)


def test_pywsgis_noop_log_writes_nothing():
    assert is_noop_log(pywsgi._NoopLog())


@pytest.mark.parametrize(("level", "silent"), [(logging.WARNING, True), (logging.INFO, False)])
def test_an_adapter_over_a_logger_is_silent_when_its_level_is_not_enabled(level, silent):
    logger = logging.getLogger("tests.gevent_private.adapter")
    logger.setLevel(level)
    assert is_noop_log(pywsgi.LoggingLogAdapter(logger, logging.INFO)) is silent


@pytest.mark.parametrize(("level", "silent"), [("warning", True), ("info", False)])
def test_gunicorns_logger_as_gevent_websockets_worker_hands_it(level, silent):
    """gevent-websocket's gunicorn worker gives pywsgi gunicorn's Logger (no isEnabledFor:
    its error log decides)."""
    assert is_noop_log(pywsgi.LoggingLogAdapter(gunicorn_logger(level))) is silent


def test_a_logger_that_cannot_tell_is_written_to():
    class Anything:
        def log(self, level: int, msg: str) -> None:
            pass

    assert not is_noop_log(pywsgi.LoggingLogAdapter(Anything()))
    assert not is_noop_log(None)
