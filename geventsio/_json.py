"""JSON for the wire, with orjson.

orjson writes compact JSON in dict insertion order, as ``JSON.stringify`` does, and is
several times faster than :mod:`json`. What it accepts differs from :mod:`json`, and
those differences are part of our contract:

- dict keys must be ``str`` (we do not set ``OPT_NON_STR_KEYS``: it doubles the cost of
  every dict, and ``{1: ...}`` silently becoming ``{"1": ...}`` hides bugs);
- integers must fit in 64 bits (JavaScript loses precision beyond 2**53 anyway); read,
  larger ones become floats, as they do in JavaScript;
- ``NaN`` and infinities are written as ``null``, as ``JSON.stringify`` does;
- dataclasses, enums, ``datetime`` and ``UUID`` are written natively;
- nesting deeper than 255 levels is refused when writing, 1024 when reading;
- a string holding a lone UTF-16 surrogate, raw or ``\\u`` escaped, is refused both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from geventsio.exceptions import NotSerialisable


def dumps(obj: Any) -> str:
    """Serialise ``obj`` to compact JSON text.

    :param obj: the value to serialise.
    :raises NotSerialisable: ``obj`` holds something JSON cannot represent; the message
        says what.
    """
    try:
        return orjson.dumps(obj).decode()
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise NotSerialisable(f"data is not JSON-serialisable: {exc}") from exc


#: Parse one JSON document, given as ``str`` or UTF-8 ``bytes``; raises ``ValueError``
#: (``orjson.JSONDecodeError``, a :class:`json.JSONDecodeError`) unless it is exactly one
#: valid document. orjson's own function, with no Python call in between: it is on the hot
#: path of every incoming packet.
loads: Callable[[str | bytes], Any] = orjson.loads

#: Serialise to compact JSON as UTF-8 ``bytes``; raises ``TypeError`` (orjson's
#: ``JSONEncodeError``) where :func:`dumps` raises :class:`NotSerialisable`. orjson's own
#: function, for the hot paths that build wire bytes directly and fall back to
#: :func:`dumps` (for its precise error) when this raises.
dumps_utf8: Callable[[Any], bytes] = orjson.dumps
