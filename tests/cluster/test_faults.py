"""Faults of a cluster of real processes: two geventsio servers on one Redis (each
``tests/nginx/backend.py --cluster``: ``run_server`` with the Redis adapter alone), with
``ping_interval`` 1 s and ``ping_timeout`` 5 s, so that no forward waits over 6 s.

- the owner of a session is killed: a request for it through the other server is
  answered with code 1 at once (nothing listens at its address any more);
- the owner hangs (stopped, its listener still accepting): code 1 within
  ping_interval + ping_timeout;
- a WebSocket upgrade spliced through the other server: when the server in the middle
  is killed the owner closes the session; when the owner is killed the client's
  WebSocket ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

import gevent
import orjson
import pytest

from tests.nginx.harness import Backend
from tests.support import HttpClient, wait_until
from tests.support.engineio import eio_target
from tests.support.ws import ConnectionEnded, WsClient

pytestmark = pytest.mark.e2e

#: The backends' ping_interval + ping_timeout: the longest a forward may wait.
FORWARD_BOUND = 1.0 + 5.0
#: Seconds added to every bound (a loaded 2-core machine).
MARGIN = 10.0


@pytest.fixture
def two(redis_url: str, key: str) -> Iterator[tuple[Backend, Backend]]:
    """Two servers sharing sessions through Redis, both listening and registered."""
    started = [Backend(name, redis_url, key, cluster=True) for name in ("A", "B")]
    try:
        gevent.joinall([gevent.spawn(backend.ready) for backend in started], raise_error=True)
        yield started[0], started[1]
    finally:
        for backend in started:
            if backend.pid:
                with contextlib.suppress(ProcessLookupError):  # killed by the test
                    os.kill(backend.pid, signal.SIGCONT)
            backend.stop()


def _get(backend: Backend, target: str, timeout: float = 5.0) -> Any:
    with HttpClient("127.0.0.1", backend.port, timeout=timeout) as http:
        return http.get(target)


def open_polling(owner: Backend) -> str:
    """A new polling session on ``owner``; its sid (the handshake is served once the
    owner registered in Redis: the first request joins the cluster)."""
    opened = _get(owner, eio_target("/socket.io/", "polling"))
    assert opened.status == 200, opened
    sid: str = orjson.loads(opened.body[1:])["sid"]
    return sid


def upgrade_through(middle: Backend, sid: str) -> WsClient:
    """The WebSocket upgrade of session ``sid``, sent to ``middle`` (spliced to the owner)."""
    ws = WsClient.connect(
        "127.0.0.1", middle.port, eio_target("/socket.io/", "websocket", sid), timeout=5.0
    )
    ws.send_text("2probe")
    assert ws.recv() == "3probe"
    ws.send_text("5")
    ws.send_text("40")
    first = ws.recv()
    assert isinstance(first, str) and first.startswith("40{"), first
    return ws


def test_a_request_for_a_killed_owner_is_answered_code_1_at_once(two) -> None:
    owner, other = two
    sid = open_polling(owner)
    target = eio_target("/socket.io/", "polling", sid)
    assert _get(other, target).status == 200  # forwarded while the owner lives

    os.kill(owner.pid, signal.SIGKILL)
    owner.process.wait()

    answer = _get(other, target, timeout=MARGIN)  # refused at once: no 2 s connect wait
    assert answer.status == 400, answer
    assert answer.json() == {"code": 1, "message": "Session ID unknown"}


def test_a_request_for_a_hung_owner_is_answered_code_1_within_the_ping_bound(two) -> None:
    owner, other = two
    sid = open_polling(owner)
    target = eio_target("/socket.io/", "polling", sid)
    assert _get(other, target).status == 200  # the other knows the owner's address now

    os.kill(owner.pid, signal.SIGSTOP)  # its listener's backlog still accepts

    # The reader's own timeout is the bound: a hang raises here instead of answering.
    # (4 s of slack over a 6 s timer; a forward retried after its timeout takes 12 s.)
    answer = _get(other, target, timeout=FORWARD_BOUND + 4.0)
    assert answer.status == 400, answer
    assert answer.json() == {"code": 1, "message": "Session ID unknown"}
    # The other server still serves everything else meanwhile.
    assert _get(other, eio_target("/socket.io/", "polling")).status == 200


def test_the_owner_closes_the_session_when_the_splicing_server_is_killed(two) -> None:
    owner, middle = two
    sid = open_polling(owner)
    ws = upgrade_through(middle, sid)
    ws.send_text('421["echo","spliced"]')
    assert ws.recv() == '431[["spliced"]]'  # the owner's handler answers through the splice
    target = eio_target("/socket.io/", "polling", sid)
    assert _get(owner, target).json()["code"] != 1  # upgraded: polling refused, not unknown

    os.kill(middle.pid, signal.SIGKILL)
    middle.process.wait()

    with pytest.raises((ConnectionEnded, ConnectionResetError)):  # not a timeout
        ws.recv(timeout=MARGIN)
    # The owner saw its end of the splice close: the session is gone, not left open.
    wait_until(
        lambda: _get(owner, target).json() == {"code": 1, "message": "Session ID unknown"},
        MARGIN,
        "the owner closes the session of the killed splice",
    )


def test_the_clients_websocket_ends_when_the_owner_is_killed_mid_splice(two) -> None:
    owner, middle = two
    sid = open_polling(owner)
    ws = upgrade_through(middle, sid)

    os.kill(owner.pid, signal.SIGKILL)
    owner.process.wait()

    with pytest.raises((ConnectionEnded, ConnectionResetError)):  # not a timeout
        ws.recv(timeout=MARGIN)
    # The server in the middle goes on serving.
    assert _get(middle, eio_target("/socket.io/", "polling")).status == 200
