"""Flask-SocketIO's options, translated once into geventsio's.

Every option a Flask-SocketIO application may pass has an entry in :data:`_TRANSLATORS`;
geventsio's own server options pass through unchanged; anything else is a
:class:`TypeError` naming it, never silently ignored. The few options that have no
meaning here are accepted, logged at DEBUG, and listed in ``docs/flask_ext.md``.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import geventsio
from flask_ext.exceptions import MessageQueueNotAvailable

logger = logging.getLogger(__name__)

#: ``logger`` and ``engineio_logger``: True, False, or a logger to send the records to.
LoggerSetting = bool | logging.Logger

#: The options geventsio's Server takes itself (its own and the Engine.IO ones).
GEVENTSIO_OPTIONS = frozenset(
    [f.name for f in dataclasses.fields(geventsio.EngineOptions)]
    + [
        name
        for name, parameter in inspect.signature(geventsio.Server).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY
    ]
)

_ASYNC_MODES = (None, "gevent")


#: The key of ``SocketIO.server_options`` where Flask-SocketIO code reads the queue back.
CLIENT_MANAGER = "client_manager"


@dataclass(frozen=True)
class MessageQueue:
    """``server_options["client_manager"]``: the message queue in use, as Flask-SocketIO
    exposes it (``write_only``: a SocketIO without an application, emitting only)."""

    url: str
    channel: str
    write_only: bool


@dataclass(frozen=True)
class Settings:
    """The translated options.

    :param server_options: keyword arguments for :class:`geventsio.Server`.
    :param manage_session: keep a per-connection copy of the Flask session.
    :param namespaces: namespaces to accept besides those with handlers (``"*"``: any).
    :param logger: the Socket.IO layer's logging, as Flask-SocketIO's ``logger``.
    :param engineio_logger: the Engine.IO layer's logging.
    :param message_queue: the Redis URL servers share rooms and broadcasts through.
    :param channel: the key prefix of the Redis channels (the Node adapter's default).
    :param metrics_path: serve Prometheus metrics at this path (see ``geventsio.WSGIApp``).
    :param metrics_allow_request: ``f(environ) -> bool`` guarding the metrics path.
    """

    server_options: Mapping[str, Any] = field(default_factory=dict)
    manage_session: bool = True
    namespaces: tuple[str, ...] = ()
    logger: LoggerSetting = False
    engineio_logger: LoggerSetting = False
    message_queue: str | None = None
    channel: str = "socket.io"
    metrics_path: str | None = None
    metrics_allow_request: Any = None


class _Builder:
    """Collects translated values, refusing two options that set the same thing."""

    def __init__(self) -> None:
        # namespaces="*" accepts any name: its children go when their last client leaves.
        self.server: dict[str, Any] = {
            "async_handlers": False,
            "cleanup_empty_child_namespaces": True,
        }
        self.settings: dict[str, Any] = {}
        self._given_as: dict[str, str] = {}

    def server_option(self, name: str, value: Any, given_as: str) -> None:
        previous = self._given_as.get(name)
        if previous is not None and previous != given_as:
            raise TypeError(
                f"SocketIO options {previous!r} and {given_as!r} both set {name!r}; "
                "pass only one of them"
            )
        self._given_as[name] = given_as
        self.server[name] = value


Translator = Callable[[_Builder, str, Any], None]


def _ignored(reason: str) -> Translator:
    def translate(builder: _Builder, name: str, value: Any) -> None:
        logger.debug("SocketIO option %s=%r accepted and ignored: %s", name, value, reason)

    return translate


def _renamed(target: str) -> Translator:
    def translate(builder: _Builder, name: str, value: Any) -> None:
        builder.server_option(target, value, name)

    return translate


def _path(builder: _Builder, name: str, value: Any) -> None:
    if value is not None:  # None: the default, as in Flask-SocketIO
        builder.server_option("path", value, name)


def _setting(builder: _Builder, name: str, value: Any) -> None:
    builder.settings[name] = value


def _async_mode(builder: _Builder, name: str, value: Any) -> None:
    if value not in _ASYNC_MODES:
        raise ValueError(
            f"SocketIO option async_mode={value!r} is not supported: flask_ext "
            "runs on gevent only; pass async_mode='gevent' or leave it out"
        )


def _ping_interval(builder: _Builder, name: str, value: Any) -> None:
    # Flask-SocketIO also takes (interval, grace): the grace period has no equivalent.
    if isinstance(value, tuple | list):
        value = value[0]
    builder.server_option("ping_interval", value, name)


def _cors(builder: _Builder, name: str, value: Any) -> None:
    if isinstance(value, list | tuple | set):
        origins = list(value)
        # [] means "no CORS checks" in Flask-SocketIO: every origin passes.
        value = "*" if not origins or "*" in origins else tuple(origins)
    elif isinstance(value, str) and value != "*":
        value = (value,)
    builder.server_option("cors_allowed_origins", value, name)


_COOKIE_ATTRIBUTES = {
    "name": "name",
    "path": "path",
    "httponly": "http_only",
    "http_only": "http_only",
    "samesite": "same_site",
    "same_site": "same_site",
    "secure": "secure",
}


def _cookie(builder: _Builder, name: str, value: Any) -> None:
    if isinstance(value, str):
        value = geventsio.CookieOptions(name=value)
    elif isinstance(value, dict):
        unknown = sorted(set(value) - set(_COOKIE_ATTRIBUTES))
        if unknown:
            raise TypeError(f"SocketIO option cookie: unknown attribute(s) {unknown}")
        value = geventsio.CookieOptions(**{_COOKIE_ATTRIBUTES[k]: v for k, v in value.items()})
    elif value is not None and not isinstance(value, geventsio.CookieOptions):
        raise TypeError(f"SocketIO option cookie must be a name, a dict or None, not {value!r}")
    builder.server_option("cookie", value, name)


_QUEUE_SCHEMES = ("redis://", "rediss://", "unix://")


def _message_queue(builder: _Builder, name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.startswith(_QUEUE_SCHEMES):
        raise MessageQueueNotAvailable(
            f"SocketIO option message_queue={value!r}: only Redis is supported as a message "
            "queue (redis://, rediss:// or unix:// URLs), through geventsio's Redis adapter"
        )
    builder.settings["message_queue"] = value


def _channel(builder: _Builder, name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError("SocketIO option channel must be a non-empty string")
    builder.settings["channel"] = value


def _logger(builder: _Builder, name: str, value: Any) -> None:
    if not isinstance(value, bool | logging.Logger) and value is not None:
        raise TypeError(f"SocketIO option {name} must be True, False or a logging.Logger")
    builder.settings[name] = bool(value) if value is None else value


def _json(builder: _Builder, name: str, value: Any) -> None:
    if not (callable(getattr(value, "dumps", None)) and callable(getattr(value, "loads", None))):
        raise TypeError("SocketIO option json must be a module with dumps() and loads()")
    logger.debug(
        "SocketIO option json=%r accepted and ignored: geventsio always uses orjson", value
    )


def _transports(builder: _Builder, name: str, value: Any) -> None:
    builder.server_option("transports", (value,) if isinstance(value, str) else tuple(value), name)


def _namespaces(builder: _Builder, name: str, value: Any) -> None:
    builder.settings["namespaces"] = ("*",) if value == "*" else tuple(value)


_TRANSLATORS: dict[str, Translator] = {
    "async_mode": _async_mode,
    "ping_interval": _ping_interval,
    "max_http_buffer_size": _renamed("max_payload"),
    "cors_allowed_origins": _cors,
    "cookie": _cookie,
    "path": _path,
    "resource": _path,
    "manage_session": _setting,
    "message_queue": _message_queue,
    "channel": _channel,
    "logger": _logger,
    "engineio_logger": _logger,
    "json": _json,
    "always_connect": _ignored(
        "events emitted by a connect handler always reach the "
        "client after its connection is acknowledged"
    ),
    "transports": _transports,
    "monitor_clients": _ignored("every session has its own heartbeat timer"),
    "namespaces": _namespaces,
    "metrics_path": _setting,
    "metrics_allow_request": _setting,
}


def translate(options: Mapping[str, Any]) -> Settings:
    """Translate the keyword arguments given to ``SocketIO()`` and ``init_app()``.

    :raises TypeError: an option is unknown, or has a value of the wrong kind.
    :raises ValueError: an option's value is not supported (``async_mode="eventlet"``;
        a ``message_queue`` that is not Redis, as
        :class:`~flask_ext.exceptions.MessageQueueNotAvailable`).
    """
    builder = _Builder()
    for name, value in options.items():
        translator = _TRANSLATORS.get(name)
        if translator is not None:
            translator(builder, name, value)
        elif name in GEVENTSIO_OPTIONS:
            builder.server_option(name, value, name)
        else:
            raise TypeError(
                f"SocketIO got an unknown option {name!r} (see docs/flask_ext.md "
                "for the options flask_ext takes)"
            )
    return Settings(server_options=builder.server, **builder.settings)
