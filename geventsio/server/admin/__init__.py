"""The Socket.IO Admin UI's server side: ``Server.instrument(...)`` (see :mod:`.ui`)."""

from geventsio.server.admin.auth import hash_password as hash_password
from geventsio.server.admin.ui import AdminUI as AdminUI
