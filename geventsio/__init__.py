"""geventsio: a Socket.IO server (Engine.IO v4, Socket.IO v5) for Python on gevent.

The public API is what ``__all__`` names (documented in README.md, "The public API"),
plus the :mod:`geventsio.testing` module. Everything else is internal and may change;
``flask_ext`` is held to this list by an import-linter contract and by mypy, which sees
only these names as exported.
"""

from typing import TYPE_CHECKING, Any

from geventsio._types import DisconnectReason as DisconnectReason
from geventsio._types import EngineSid as EngineSid
from geventsio._types import Room as Room
from geventsio._types import SocketId as SocketId
from geventsio.client import Client as Client
from geventsio.client import ConnectFailed as ConnectFailed
from geventsio.client import NamespaceRefused as NamespaceRefused
from geventsio.engine.observer import EngineError as EngineError
from geventsio.exceptions import AckTimeout as AckTimeout
from geventsio.exceptions import BadNamespace as BadNamespace
from geventsio.exceptions import ConnectionRefused as ConnectionRefused
from geventsio.exceptions import GeventsioError as GeventsioError
from geventsio.exceptions import LocalProtocolError as LocalProtocolError
from geventsio.exceptions import NotConnected as NotConnected
from geventsio.exceptions import NotSerialisable as NotSerialisable
from geventsio.exceptions import RemoteProtocolError as RemoteProtocolError
from geventsio.options import CookieOptions as CookieOptions
from geventsio.options import DeflateOptions as DeflateOptions
from geventsio.options import EngineOptions as EngineOptions
from geventsio.server.admin import AdminUI as AdminUI
from geventsio.server.admin import hash_password as hash_password
from geventsio.server.broadcast import BroadcastOperator as BroadcastOperator
from geventsio.server.handlers import positional_capacity as positional_capacity
from geventsio.server.handshake import Handshake as Handshake
from geventsio.server.namespace import Namespace as Namespace
from geventsio.server.namespace import ParentNamespace as ParentNamespace
from geventsio.server.observer import Observer as Observer
from geventsio.server.server import Server as Server
from geventsio.server.socket import NO_ACK as NO_ACK
from geventsio.server.socket import Socket as Socket
from geventsio.serving import make_server as make_server
from geventsio.serving import serve as serve
from geventsio.wsgi import WSGIApp as WSGIApp

if TYPE_CHECKING:
    from geventsio.adapters.redis import RedisAdapter as RedisAdapter
    from geventsio.adapters.redis import RedisEmitter as RedisEmitter
    from geventsio.adapters.redis import RedisUnavailable as RedisUnavailable
    from geventsio.adapters.redis import redis_adapter as redis_adapter

__version__ = "0.1.0"

__all__ = [
    "NO_ACK",
    "AckTimeout",
    "AdminUI",
    "BadNamespace",
    "BroadcastOperator",
    "Client",
    "ConnectFailed",
    "ConnectionRefused",
    "CookieOptions",
    "DeflateOptions",
    "DisconnectReason",
    "EngineError",
    "EngineOptions",
    "EngineSid",
    "GeventsioError",
    "Handshake",
    "LocalProtocolError",
    "Namespace",
    "NamespaceRefused",
    "NotConnected",
    "NotSerialisable",
    "Observer",
    "ParentNamespace",
    "RedisAdapter",
    "RedisEmitter",
    "RedisUnavailable",
    "RemoteProtocolError",
    "Room",
    "Server",
    "Socket",
    "SocketId",
    "WSGIApp",
    "hash_password",
    "make_server",
    "positional_capacity",
    "redis_adapter",
    "serve",
]

#: Names served from geventsio.adapters.redis, imported only when asked for, so that
#: redis-py and msgpack stay optional (the ``redis`` extra).
_REDIS_NAMES = frozenset({"redis_adapter", "RedisAdapter", "RedisEmitter", "RedisUnavailable"})

#: The one line a missing optional dependency of the Redis adapter raises.
_REDIS_EXTRA_MISSING = (
    "geventsio's Redis support needs the redis and msgpack packages "
    "({missing} is not installed): pip install geventsio[redis]"
)


def __getattr__(name: str) -> Any:
    if name in _REDIS_NAMES:
        try:
            from geventsio.adapters import redis
        except ModuleNotFoundError as exc:
            if exc.name not in ("redis", "msgpack"):
                raise
            raise ModuleNotFoundError(
                _REDIS_EXTRA_MISSING.format(missing=exc.name), name=exc.name
            ) from None
        return getattr(redis, name)
    raise AttributeError(f"module 'geventsio' has no attribute {name!r}")
