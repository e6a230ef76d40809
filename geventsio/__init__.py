"""geventsio: a Socket.IO server (Engine.IO v4, Socket.IO v5) for Python on gevent."""

from typing import TYPE_CHECKING, Any

from geventsio._types import DisconnectReason as DisconnectReason
from geventsio._types import EngineSid as EngineSid
from geventsio._types import Room as Room
from geventsio._types import SocketId as SocketId
from geventsio.client import Client as Client
from geventsio.client import ConnectFailed as ConnectFailed
from geventsio.client import NamespaceRefused as NamespaceRefused
from geventsio.exceptions import AckTimeout as AckTimeout
from geventsio.exceptions import BadNamespace as BadNamespace
from geventsio.exceptions import ConnectionRefused as ConnectionRefused
from geventsio.exceptions import GeventsioError as GeventsioError
from geventsio.exceptions import LocalProtocolError as LocalProtocolError
from geventsio.exceptions import NotConnected as NotConnected
from geventsio.exceptions import RemoteProtocolError as RemoteProtocolError
from geventsio.options import EngineOptions as EngineOptions
from geventsio.server.broadcast import BroadcastOperator as BroadcastOperator
from geventsio.server.handshake import Handshake as Handshake
from geventsio.server.namespace import Namespace as Namespace
from geventsio.server.namespace import ParentNamespace as ParentNamespace
from geventsio.server.server import Server as Server
from geventsio.server.socket import NO_ACK as NO_ACK
from geventsio.server.socket import Socket as Socket
from geventsio.serving import serve as serve
from geventsio.wsgi import WSGIApp as WSGIApp

if TYPE_CHECKING:
    from geventsio.adapters.redis import RedisAdapter as RedisAdapter
    from geventsio.adapters.redis import RedisEmitter as RedisEmitter
    from geventsio.adapters.redis import RedisUnavailable as RedisUnavailable
    from geventsio.adapters.redis import redis_adapter as redis_adapter

__version__ = "0.1.0"

#: Names served from geventsio.adapters.redis, imported only when asked for, so that
#: redis-py and msgpack stay optional (the ``redis`` extra).
_REDIS_NAMES = frozenset({"redis_adapter", "RedisAdapter", "RedisEmitter", "RedisUnavailable"})


def __getattr__(name: str) -> Any:
    if name in _REDIS_NAMES:
        from geventsio.adapters import redis

        return getattr(redis, name)
    raise AttributeError(f"module 'geventsio' has no attribute {name!r}")
