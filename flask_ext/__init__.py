"""flask_ext: the Flask extension of geventsio, a drop-in for Flask-SocketIO.

Change ``from flask_socketio import ...`` to ``from flask_ext import ...``: the names are
the same. See ``docs/flask_ext.md`` for the differences.
"""

from flask_ext.exceptions import ConnectionRefusedError as ConnectionRefusedError
from flask_ext.exceptions import MessageQueueNotAvailable as MessageQueueNotAvailable
from flask_ext.extension import SocketIO as SocketIO
from flask_ext.helpers import call as call
from flask_ext.helpers import close_room as close_room
from flask_ext.helpers import disconnect as disconnect
from flask_ext.helpers import emit as emit
from flask_ext.helpers import join_room as join_room
from flask_ext.helpers import leave_room as leave_room
from flask_ext.helpers import rooms as rooms
from flask_ext.helpers import send as send
from flask_ext.namespace import Namespace as Namespace
from flask_ext.testing import SocketIOTestClient as SocketIOTestClient

__all__ = [
    "ConnectionRefusedError",
    "MessageQueueNotAvailable",
    "Namespace",
    "SocketIO",
    "SocketIOTestClient",
    "call",
    "close_room",
    "disconnect",
    "emit",
    "join_room",
    "leave_room",
    "rooms",
    "send",
]
