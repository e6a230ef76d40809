"""The exceptions flask_ext adds: Flask-SocketIO's refusal name, and unavailable options."""

from __future__ import annotations

from typing import Any

import geventsio

#: The message a client gets when a connect handler refuses without saying why (the one
#: Flask-SocketIO sends, so that front ends comparing it keep working).
DEFAULT_REFUSAL = "Connection rejected by server"


# Flask-SocketIO's name, kept for compatibility: it shadows the builtin in flask_ext only.
class ConnectionRefusedError(geventsio.ConnectionRefused):
    """Raise from a ``connect`` handler to refuse the connection, as in Flask-SocketIO.

    ``ConnectionRefusedError()`` sends ``"Connection rejected by server"``;
    ``ConnectionRefusedError(message)`` sends ``message``; ``ConnectionRefusedError(message,
    data)`` sends ``data`` too; more arguments are sent together as ``data``, a list. A dict
    given alone is sent as ``data`` under the default message (Flask-SocketIO would send its
    Python ``repr`` as the message). The client's ``connect_error`` handler receives an
    ``Error`` whose ``message`` and ``data`` are these.
    """

    def __init__(self, *args: Any) -> None:
        if not args:
            super().__init__(DEFAULT_REFUSAL)
        elif len(args) == 1 and isinstance(args[0], dict):
            super().__init__(DEFAULT_REFUSAL, args[0])
        elif len(args) == 1:
            super().__init__(str(args[0]))
        elif len(args) == 2:
            super().__init__(str(args[0]), args[1])
        else:
            super().__init__(str(args[0]), list(args[1:]))


class MessageQueueNotAvailable(NotImplementedError, ValueError):
    """``message_queue`` names a queue flask_ext cannot use (only Redis is supported).

    It is a :class:`ValueError` (a bad option value, as for the other options) and a
    :class:`NotImplementedError` (that kind of queue is not implemented).
    """
