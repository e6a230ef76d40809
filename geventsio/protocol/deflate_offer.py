"""The server's side of negotiating permessage-deflate (RFC 7692, section 7.1).

A client lists its offers in ``Sec-WebSocket-Extensions`` (RFC 6455, section 9.1): a
comma-separated list of extensions, each with ``;``-separated parameters whose values
are tokens or quoted strings. :func:`negotiate` accepts the first ``permessage-deflate``
offer it can honour, within the server's :class:`~geventsio.options.DeflateOptions`, and
says what to answer. An offer that is malformed (bad syntax, an unknown or repeated
parameter, a bad value) or that asks for what zlib cannot do (a server window of 256
bytes) is declined; a header with no acceptable offer means no extension, never an
error: the connection then runs without compression.

What the server answers, parameter by parameter:

* ``server_no_context_takeover``: when offered (the client's decompressor will forget
  each message) or when the server's options ask for it.
* ``client_no_context_takeover``: when offered (the client announces it will) or when the
  server's options ask for it. Either way the server keeps no decompressor between
  messages.
* ``server_max_window_bits``: the smaller of the offered value and the server's option,
  sent when offered or below 15.
* ``client_max_window_bits``: only when offered (the client may then be limited): the
  smaller of the offered value (15 when it has none) and the server's option, sent when
  below 15 or when the offer named a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from geventsio.exceptions import RemoteProtocolError
from geventsio.options import DeflateOptions
from geventsio.protocol.deflate import Deflater, Inflater

__all__ = [
    "CLIENT_OFFER",
    "EXTENSION",
    "DeflateAgreement",
    "negotiate",
    "parse_answer",
    "parse_extensions",
]

#: The extension's name in ``Sec-WebSocket-Extensions``.
EXTENSION = "permessage-deflate"
#: What the Python client offers: the defaults, and any window the server may ask of it.
CLIENT_OFFER = "permessage-deflate; client_max_window_bits"

_SERVER_NO_TAKEOVER = "server_no_context_takeover"
_CLIENT_NO_TAKEOVER = "client_no_context_takeover"
_SERVER_BITS = "server_max_window_bits"
_CLIENT_BITS = "client_max_window_bits"
_KNOWN = frozenset((_SERVER_NO_TAKEOVER, _CLIENT_NO_TAKEOVER, _SERVER_BITS, _CLIENT_BITS))
_WINDOW_BITS = re.compile(r"(?:[89]|1[0-5])\Z")  # RFC 7692: no leading zeros
#: zlib refuses a raw deflate window of 8 bits when compressing.
_SMALLEST_SERVER_BITS = 9

# RFC 7230, section 3.2.6: a token, a quoted string (with its escapes), separators.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_LEXEME = re.compile(rf"[ \t]*(?:({_TOKEN})|({_QUOTED})|([,;=]))[ \t]*")
_ESCAPE = re.compile(r"\\(.)")

#: An offer: its extension name and its parameters, in order (``None``: no value).
Offer = tuple[str, list[tuple[str, str | None]]]


@dataclass(frozen=True, slots=True)
class DeflateAgreement:
    """The parameters both ends use, and the ``Sec-WebSocket-Extensions`` answer.

    :param server_no_context_takeover: the server starts every message afresh.
    :param client_no_context_takeover: the client does.
    :param server_max_window_bits: the window the server compresses with.
    :param client_max_window_bits: the largest window the client may compress with.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    response: str = EXTENSION

    def deflater(self, options: DeflateOptions) -> Deflater:
        """The server's compressor (allocated on its first message)."""
        return Deflater(
            self.server_max_window_bits,
            self.server_no_context_takeover,
            level=options.level,
            mem_level=options.mem_level,
        )

    def inflater(self) -> Inflater:
        """The server's decompressor (allocated on the first compressed message)."""
        return Inflater(self.client_max_window_bits, self.client_no_context_takeover)

    def client_codecs(self) -> tuple[Deflater | None, Inflater]:
        """The client's compressor (None when the server asked for a window of 8 bits,
        which zlib cannot compress with: the client then sends uncompressed) and
        decompressor."""
        deflater = None
        if self.client_max_window_bits >= _SMALLEST_SERVER_BITS:
            deflater = Deflater(self.client_max_window_bits, self.client_no_context_takeover)
        return deflater, Inflater(self.server_max_window_bits, self.server_no_context_takeover)


def _lexemes(value: str) -> list[str] | None:
    """The tokens, quoted-string values (unescaped) and separators of ``value``, or
    None when it does not follow the grammar. Values are prefixed: ``t`` token, ``q``
    quoted, ``s`` separator."""
    out: list[str] = []
    pos = 0
    while pos < len(value):
        match = _LEXEME.match(value, pos)
        if match is None or match.end() == pos:
            return None
        token, quoted, separator = match.groups()
        if token is not None:
            out.append("t" + token)
        elif quoted is not None:
            out.append("q" + _ESCAPE.sub(r"\1", quoted[1:-1]))
        else:
            out.append("s" + separator)
        pos = match.end()
    return out


def _parse_offer(lexemes: list[str]) -> Offer | None:
    """One list element: ``name *( ";" param [ "=" value ] )``, or None if malformed."""
    if not lexemes or lexemes[0][0] != "t":
        return None
    params: list[tuple[str, str | None]] = []
    rest = lexemes[1:]
    while rest:
        if rest[0] != "s;" or len(rest) < 2 or rest[1][0] != "t":
            return None
        name, rest = rest[1][1:], rest[2:]
        value: str | None = None
        if rest and rest[0] == "s=":
            if len(rest) < 2 or rest[1][0] not in "tq":
                return None
            value, rest = rest[1][1:], rest[2:]
            if not re.fullmatch(_TOKEN, value):  # a quoted value must still be a token
                return None
        params.append((name.lower(), value))
    return lexemes[0][1:].lower(), params


def parse_extensions(header: str) -> list[Offer | None]:
    """The offers of a ``Sec-WebSocket-Extensions`` value, in order; a malformed one is
    ``None`` in its place (a header whose quotes do not close is one malformed offer)."""
    lexemes = _lexemes(header)
    if lexemes is None:
        return [None]
    offers: list[Offer | None] = []
    element: list[str] = []
    for lexeme in [*lexemes, "s,"]:
        if lexeme != "s,":
            element.append(lexeme)
            continue
        if element:  # RFC 7230's list rule allows empty elements
            offers.append(_parse_offer(element))
        element = []
    return offers


def _params(offer: Offer) -> dict[str, str | None] | None:
    """The offer's parameters by name, or None if one is unknown, repeated, or has a
    value it may not have."""
    params: dict[str, str | None] = {}
    for name, value in offer[1]:
        if name not in _KNOWN or name in params:
            return None
        params[name] = value
    for flag in (_SERVER_NO_TAKEOVER, _CLIENT_NO_TAKEOVER):
        if flag in params and params[flag] is not None:
            return None
    if _SERVER_BITS in params and not _WINDOW_BITS.match(params[_SERVER_BITS] or ""):
        return None
    client_bits = params.get(_CLIENT_BITS)
    if client_bits is not None and not _WINDOW_BITS.match(client_bits):
        return None
    return params


def _accept(params: dict[str, str | None], options: DeflateOptions) -> DeflateAgreement | None:
    answer = [EXTENSION]
    server_no_takeover = _SERVER_NO_TAKEOVER in params or options.server_no_context_takeover
    if server_no_takeover:
        answer.append(_SERVER_NO_TAKEOVER)
    client_no_takeover = _CLIENT_NO_TAKEOVER in params or options.client_no_context_takeover
    if client_no_takeover:
        answer.append(_CLIENT_NO_TAKEOVER)
    offered = params.get(_SERVER_BITS)
    server_bits = min(int(offered or 15), options.server_max_window_bits)
    if server_bits < _SMALLEST_SERVER_BITS:
        return None
    if offered is not None or server_bits < 15:
        answer.append(f"{_SERVER_BITS}={server_bits}")
    client_bits = 15
    if _CLIENT_BITS in params:
        offered = params[_CLIENT_BITS]
        client_bits = min(int(offered or 15), options.client_max_window_bits)
        if offered is not None or client_bits < 15:
            answer.append(f"{_CLIENT_BITS}={client_bits}")
    return DeflateAgreement(
        server_no_takeover, client_no_takeover, server_bits, client_bits, "; ".join(answer)
    )


def parse_answer(header: str) -> DeflateAgreement:
    """What the server agreed to, from the ``Sec-WebSocket-Extensions`` of its ``101``,
    for a client that sent :data:`CLIENT_OFFER` (RFC 7692, 7.1: the client fails the
    connection on an answer it cannot accept).

    :raises RemoteProtocolError: not exactly one ``permessage-deflate`` with valid
        parameters (``client_max_window_bits`` then with a value).
    """
    offers = parse_extensions(header)
    params = None
    if len(offers) == 1 and offers[0] is not None and offers[0][0] == EXTENSION:
        params = _params(offers[0])
    if params is None or (_CLIENT_BITS in params and params[_CLIENT_BITS] is None):
        raise RemoteProtocolError(f"unacceptable Sec-WebSocket-Extensions {header[:60]!r}")
    return DeflateAgreement(
        _SERVER_NO_TAKEOVER in params,
        _CLIENT_NO_TAKEOVER in params,
        int(params.get(_SERVER_BITS) or 15),
        int(params.get(_CLIENT_BITS) or 15),
        header,
    )


def negotiate(header: str | None, options: DeflateOptions) -> DeflateAgreement | None:
    """Accept the first ``permessage-deflate`` offer of ``header`` that the server can
    honour; None when there is none (answer without the extension).

    :param header: the request's ``Sec-WebSocket-Extensions`` (several header lines
        joined with commas), or None when absent.
    :param options: what the server accepts and asks for.
    """
    if not header:
        return None
    for offer in parse_extensions(header):
        if offer is None or offer[0] != EXTENSION:
            continue
        params = _params(offer)
        agreement = None if params is None else _accept(params, options)
        if agreement is not None:
            return agreement
    return None
