"""Session ids that name their owner: ``<128 random bits>.<tag>``.

The random part is what makes a sid unguessable, as it is without a cluster; the tag is
no secret: it only says which process to ask. The owner checks the whole sid itself.
"""

from __future__ import annotations

import re
import secrets

from geventsio._types import EngineSid

_TAG = re.compile(r"[A-Za-z0-9_-]{1,16}")
_SEPARATOR = "."  # never in token_urlsafe's alphabet


def new_tag() -> str:
    """A new process tag (48 random bits: unique among the processes of a cluster)."""
    return secrets.token_urlsafe(6)


def tagged_sid(tag: str) -> EngineSid:
    """A new session id owned by the process tagged ``tag``."""
    return EngineSid(f"{secrets.token_urlsafe(16)}{_SEPARATOR}{tag}")


def owner_tag(sid: str) -> str | None:
    """The tag of the process that owns ``sid``; None for an id with no valid tag."""
    _, separator, tag = sid.rpartition(_SEPARATOR)
    if not separator or _TAG.fullmatch(tag) is None:
        return None
    return tag
