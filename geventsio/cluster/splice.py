"""Forward a WebSocket upgrade to the session's owner and splice the two connections.

A polling session's upgrade that reaches another process than its owner: this process
sends the client's upgrade request to the owner's cluster listener and reads its
answer. A refusal is relayed as it came. An accepted upgrade (``101``) is completed with
the client by this process (the same ``Sec-WebSocket-Accept``: the key is the client's),
and from then on the bytes are copied both ways untouched, until either side closes:
the owner frames, checks and limits the WebSocket as it would its own client's.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any

import gevent
import gevent.socket

from geventsio.cluster.forward import (
    CONNECT_TIMEOUT,
    Address,
    ForwardError,
    connect,
    request_bytes,
)
from geventsio.engine.http import EngineErrorCode, HttpResponse, error_response
from geventsio.engine.takeover import Hosts, TakenOver

logger = logging.getLogger(__name__)

#: The largest answer head the owner may send to an upgrade request.
_MAX_HEAD = 16384
_CHUNK = 65536


def _read_head(sock: Any) -> tuple[int, bytes, bytes]:
    """The owner's status code, its answer head and the bytes that came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(_CHUNK)
        if not chunk:
            raise ForwardError("the owner closed before answering")
        data += chunk
        if len(data) > _MAX_HEAD and b"\r\n\r\n" not in data[:_MAX_HEAD]:
            raise ForwardError("the owner's answer head is too long")
    head, _, rest = data.partition(b"\r\n\r\n")
    parts = head.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ForwardError(f"no HTTP answer: {head[:64]!r}")
    return int(parts[1]), head, rest


def _refusal(head: bytes, rest: bytes) -> HttpResponse:
    """The owner's refusal of the upgrade, to relay (its body is what came with it)."""
    content_type = "text/plain; charset=UTF-8"
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-type":
            content_type = value.strip()
    status = int(head.split(None, 2)[1])
    return HttpResponse(status, rest[:_MAX_HEAD], content_type=content_type)


def forward_websocket(
    address: Address,
    environ: Mapping[str, Any],
    start_response: Callable[..., Any],
    hosts: Hosts,
) -> HttpResponse | None:
    """Forward the upgrade in ``environ`` to the owner at ``address``.

    :returns: the owner's refusal (code 1 when it cannot be reached) to answer with; or
        None once the client's connection was taken over and spliced to the owner's.
    """
    try:
        owner = connect(address)
    except OSError as exc:
        logger.info("could not forward an upgrade to %r: %s", address, exc)
        return error_response(EngineErrorCode.UNKNOWN_SID)
    try:
        owner.settimeout(CONNECT_TIMEOUT)
        owner.sendall(request_bytes(environ, b"", upgrade=True))
        status, head, rest = _read_head(owner)
    except (OSError, ForwardError) as exc:
        owner.close()
        logger.info("could not forward an upgrade to %r: %s", address, exc)
        return error_response(EngineErrorCode.UNKNOWN_SID)
    if status != 101:
        owner.close()
        return _refusal(head, rest)
    owner.settimeout(None)
    try:
        taken = hosts.take_over(environ, start_response)
    except Exception:
        owner.close()
        raise
    if taken.detached:
        gevent.spawn(_splice, taken, owner, rest)
    else:
        _splice(taken, owner, rest)
    return None


def _splice(client: TakenOver, owner: Any, from_owner: bytes) -> None:
    """Copy bytes both ways until either side ends, then end both."""

    def owner_to_client() -> None:
        with contextlib.suppress(OSError):
            if from_owner:
                client.sock.sendall(from_owner)
            while data := owner.recv(_CHUNK):
                client.sock.sendall(data)
        # The owner ended (or died): so does the client's connection, at once, not when
        # the client next sends (a listening client may send nothing for a long while).
        _end(client.sock)

    back = gevent.spawn(owner_to_client)
    try:
        with contextlib.suppress(OSError):
            while data := client.reader.read1(_CHUNK):
                owner.sendall(data)
    finally:
        _end(owner)
        _end(client.sock)
        back.join()
        owner.close()
        if client.owns_socket:
            client.sock.close()
            client.reader.close()  # a reader may hold the socket open (takeover.hand_over)


def _end(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
