"""The Python client: a blocking, gevent-based Socket.IO v5 client with reconnection.

It never imports the server side (``geventsio.engine``, ``server``, ``adapters``...);
it shares only the sans-IO protocol modules, the options and the exceptions.
"""

from geventsio.backoff import Backoff as Backoff
from geventsio.client.ack import Ack as Ack
from geventsio.client.client import Client as Client
from geventsio.client.errors import ClientDisconnectReason as ClientDisconnectReason
from geventsio.client.errors import ConnectFailed as ConnectFailed
from geventsio.client.errors import EmitBufferFull as EmitBufferFull
from geventsio.client.errors import NamespaceRefused as NamespaceRefused

__all__ = [
    "Ack",
    "Backoff",
    "Client",
    "ClientDisconnectReason",
    "ConnectFailed",
    "EmitBufferFull",
    "NamespaceRefused",
]
