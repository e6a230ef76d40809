"""Who may open the Admin UI: a username and a bcrypt-hashed password, as the hosted UI
and the Node reference's ``@socket.io/admin-ui`` expect.

The UI sends ``{"username", "password"}`` in its CONNECT auth payload; on success the
server gives it a session id (the ``session`` event), which it sends instead
(``{"sessionId"}``) when it reconnects. Hashes are checked in gevent's thread pool:
bcrypt takes tens of milliseconds on purpose, and the hub must not wait for it.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import gevent

logger = logging.getLogger("geventsio.admin")

#: A bcrypt hash as bcrypt and bcryptjs write them ($2a$, $2b$, $2y$; cost; 53 characters).
BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$")
#: Session ids kept at most (the oldest are forgotten first).
MAX_SESSIONS = 10_000

AuthOption = Mapping[str, str] | Iterable[Mapping[str, str]] | Callable[[Any], bool] | None | bool


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt hash of ``password``, for ``instrument(auth={"password": ...})``."""
    import bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


class Authenticator:
    """Checks the UI's CONNECT auth payload.

    :param auth: ``None`` or ``False`` (no authentication), a dict ``{"username",
        "password"}`` (the password a bcrypt hash; ``"type": "basic"`` may be given, as in
        Node), a list of such dicts, or ``f(auth_payload) -> bool``.
    :raises ValueError: a password is not a bcrypt hash, or the option has another shape.
    """

    def __init__(self, auth: AuthOption) -> None:
        self.enabled = auth is not None and auth is not False
        self._check: Callable[[Any], bool] | None = None
        self._users: dict[str, bytes] = {}
        self._sessions: dict[str, None] = {}
        if not self.enabled:
            return
        if callable(auth):
            self._check = auth
            return
        entries = [auth] if isinstance(auth, Mapping) else list(auth)  # type: ignore[arg-type]
        for entry in entries:
            self._add_user(entry)
        if not self._users:
            raise ValueError("auth: give at least one {'username', 'password'} entry")

    def _add_user(self, entry: Any) -> None:
        if not isinstance(entry, Mapping) or entry.get("type", "basic") != "basic":
            raise ValueError("auth entries are {'username': ..., 'password': <bcrypt hash>}")
        username, password = entry.get("username"), entry.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise ValueError("auth entries need a string username and password")
        if not BCRYPT_HASH.match(password):
            raise ValueError(
                "the auth password must be a bcrypt hash (geventsio.hash_password makes one)"
            )
        self._users[username] = password.encode()

    def allows(self, payload: Any) -> bool:
        """Whether the CONNECT auth payload lets the UI in (may wait for the thread pool)."""
        if not self.enabled:
            return True
        if not isinstance(payload, Mapping):
            return False
        if self._check is not None:
            return bool(self._check(payload))
        session = payload.get("sessionId")
        if isinstance(session, str) and session in self._sessions:
            return True
        hashed = self._users.get(payload.get("username"))  # type: ignore[arg-type]
        password = payload.get("password")
        if hashed is None or not isinstance(password, str):
            return False
        return bool(gevent.get_hub().threadpool.apply(_checkpw, (password.encode(), hashed)))

    def new_session(self) -> str | None:
        """A session id for a UI that just logged in with a password (None without auth
        or with a custom check: nothing to remember)."""
        if not self._users:
            return None
        session = secrets.token_hex(8)
        self._sessions[session] = None
        if len(self._sessions) > MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        return session


def _checkpw(password: bytes, hashed: bytes) -> bool:
    import bcrypt

    try:
        return bool(bcrypt.checkpw(password, hashed))
    except ValueError:
        return False
