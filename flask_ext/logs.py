"""``logger`` and ``engineio_logger``: logging set up only when the application asks.

geventsio never touches logging configuration by itself; these two options are the
application asking, as they are in Flask-SocketIO. ``True`` shows the layer's records at
INFO (on stderr when logging is not configured at all); a :class:`logging.Logger` receives
them instead, at that logger's level; ``False`` leaves logging alone.
"""

from __future__ import annotations

import logging

from flask_ext.options import LoggerSetting

#: The loggers behind ``logger`` (the Socket.IO layer and this extension) and
#: ``engineio_logger`` (the Engine.IO layer and the transports).
SOCKETIO_LOGGERS = ("geventsio.server", "flask_ext")
ENGINEIO_LOGGERS = ("geventsio.engine",)


class _Forward(logging.Handler):
    """Hands records to the application's logger."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        if self.target.isEnabledFor(record.levelno):
            self.target.handle(record)


def configure(names: tuple[str, ...], setting: LoggerSetting) -> None:
    """Apply one logging option to the loggers ``names``."""
    if setting is False:
        return
    for name in names:
        source = logging.getLogger(name)
        if isinstance(setting, logging.Logger):
            _forward(source, setting)
        else:
            source.setLevel(logging.INFO)
            if not source.handlers and not logging.getLogger().handlers:
                source.addHandler(logging.StreamHandler())


def _forward(source: logging.Logger, target: logging.Logger) -> None:
    for handler in source.handlers:
        if isinstance(handler, _Forward) and handler.target is target:
            return
    source.addHandler(_Forward(target))
    source.setLevel(target.getEffectiveLevel())
    source.propagate = False  # the target propagates them itself
