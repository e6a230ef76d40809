"""permessage-deflate against Node's `ws` client: what the 101 agrees, RSV1 on the frames
the server sends, fewer bytes on the wire both ways, and a decompression bomb refused
with the server's memory bounded."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from geventsio.engine.socket import EngineSocket
from geventsio.protocol.outgoing import OutgoingPacket
from tests.deploy.processes import PYTHON, Processes
from tests.support import assert_still_serving
from tests.support.node import run_node
from tests.support.server import RecordingEcho

pytestmark = pytest.mark.e2e

TEXT, BINARY = 1, 2
#: What the script sends (see tests/js/deflate_ws.mjs): its large JSON text, in bytes.
LARGE_TEXT_MIN = 60_000
BINARY_SIZE = 100_000


def ws_url(port: int, path: str = "/socket.io/") -> str:
    return f"ws://127.0.0.1:{port}{path}?EIO=4&transport=websocket"


def echo(server, options: object = True) -> dict:
    result = run_node(
        "deflate_ws.mjs", ws_url(server.port, server.path), "echo", json.dumps(options), timeout=60
    )
    assert result["ok"], result
    assert [e["same"] for e in result["echoes"]] == [True, True, True], result["echoes"]
    return result


def data_frames(result: dict) -> list[dict]:
    """The data frames the server sent, the open packet first."""
    return [f for f in result["frames"] if f["opcode"] in (TEXT, BINARY)]


def test_large_messages_are_compressed_both_ways(eio_server):
    server = eio_server(per_message_deflate=True)
    result = echo(server)

    # ws offers "permessage-deflate; client_max_window_bits": nothing to limit.
    assert result["extensions"] == "permessage-deflate"
    opened, large_text, binary, small = data_frames(result)
    assert not opened["rsv1"]  # under the 1024-byte threshold
    assert large_text["rsv1"] and large_text["length"] < LARGE_TEXT_MIN // 5
    assert binary["rsv1"] and binary["length"] < BINARY_SIZE // 20
    assert not small["rsv1"] and small["length"] == len("4small")
    # The client compressed too: far fewer bytes left it than its messages hold.
    assert result["bytesWritten"] < result["sent"] // 5, result
    assert result["bytesRead"] < result["sent"] // 5, result
    sid = server.handler.connected[0].sid
    messages = server.handler.messages_of(sid)
    assert [len(m) for m in messages[1:]] == [BINARY_SIZE, len("small")]
    assert json.loads(messages[0])["rows"][1999]["name"] == "user-1999"
    assert_still_serving(server)


def test_off_by_default_no_extension_in_the_101(eio_server):
    server = eio_server()
    result = echo(server)
    assert result["extensions"] is None
    assert not any(f["rsv1"] for f in result["frames"])
    assert result["bytesWritten"] > result["sent"]
    assert_still_serving(server)


def test_the_client_may_decline_it(eio_server):
    server = eio_server(per_message_deflate=True)
    result = echo(server, False)
    assert result["extensions"] is None
    assert not any(f["rsv1"] for f in result["frames"])


def test_no_context_takeover_both_ways(eio_server):
    server = eio_server(
        per_message_deflate={"server_no_context_takeover": True, "client_no_context_takeover": True}
    )
    result = echo(server)
    assert result["extensions"] == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    )
    assert [f["rsv1"] for f in data_frames(result)] == [False, True, True, False], result
    assert result["bytesWritten"] < result["sent"] // 5


def test_window_bits_asked_by_the_client_and_the_server(eio_server):
    server = eio_server(per_message_deflate={"client_max_window_bits": 10})
    result = echo(server, {"serverMaxWindowBits": 11, "clientMaxWindowBits": True})
    assert result["extensions"] == (
        "permessage-deflate; server_max_window_bits=11; client_max_window_bits=10"
    )
    assert [f["rsv1"] for f in data_frames(result)] == [False, True, True, False]


class UncompressedEcho(RecordingEcho):
    """Echoes with the packet's compress flag off (Socket.IO's ``compress(False)``)."""

    def on_engine_message(self, socket: EngineSocket, data: str | bytes) -> None:
        self.messages.append((socket.sid, data))
        socket.send_packets((OutgoingPacket.message(data, compress=False),))


@pytest.mark.parametrize(
    ("handler", "options"),
    [(UncompressedEcho, True), (RecordingEcho, {"threshold": 1_000_000})],
    ids=["compress-false", "under-threshold"],
)
def test_packets_that_may_not_be_compressed_go_as_they_are(eio_server, handler, options):
    server = eio_server(handler(), per_message_deflate=options)
    result = echo(server)
    assert result["extensions"] == "permessage-deflate"
    assert not any(f["rsv1"] for f in result["frames"])
    assert data_frames(result)[2]["length"] == BINARY_SIZE
    assert result["bytesWritten"] < result["sent"] // 5  # the client still compresses


# -- a decompression bomb -----------------------------------------------------------------


@pytest.fixture
def processes() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.kill_all()


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None, status
    return int(match.group(1))


def test_a_100_mb_bomb_is_refused_with_memory_bounded(processes):
    process = processes.start([PYTHON, "-m", "tests.e2e.deflate_server", "true"])
    port = int(process.wait_for(r"serving on http://127\.0\.0\.1:(\d+)").group(1))
    before = peak_rss_kib(process.pid)

    result = run_node("deflate_ws.mjs", ws_url(port), "bomb", timeout=90)

    grown = peak_rss_kib(process.pid) - before
    assert result["closeCode"] == 1009, result  # message too big
    assert result["ok"], result
    assert result["bytesWritten"] < 1_000_000  # 100 MB went as ~100 kB compressed
    assert grown < 20 * 1024, f"the server's peak RSS grew by {grown} KiB"
