"""permessage-deflate: what it saves on the wire, what it costs in CPU and in memory.

    python bench/deflate.py [--connections 200] [--broadcasts 100]

0. What zlib allocates for one compressor and one decompressor (``tracemalloc``), for
   window bits and ``mem_level`` one may choose.
1. A 10 KiB JSON broadcast (a new update each time, alike as updates are) to
   ``connections`` WebSockets: a server (this script with ``--serve``, in a process of
   its own) encodes each update once and sends it to every connection; the figures are
   the server's CPU time (``/proc/PID/stat``) per recipient and the bytes each recipient
   reads, with deflate off, on (each connection keeps its context: compressed once per
   recipient), and on with ``server_no_context_takeover`` (compressed once for all).
2. Idle memory per connection: the server's resident memory (``VmRSS``) before and
   after ``connections`` WebSockets that offer permessage-deflate, in KiB per
   connection: deflate off, negotiated but never used, after one 10 KiB message each
   way (contexts held), and the same with no context takeover either way (contexts
   dropped after each message); each "after" case against deflate off after the same
   exchange.

Prints one line per figure, the on/off ratios, and ``/proc/loadavg``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geventsio.protocol import websocket as ws  # noqa: E402
from geventsio.protocol import websocket_handshake as handshake  # noqa: E402
from geventsio.protocol.deflate import Deflater, Inflater  # noqa: E402
from geventsio.protocol.outgoing import encode_for_engine  # noqa: E402
from geventsio.protocol.socketio import Packet, PacketType  # noqa: E402


def event(n: int) -> list[Any]:
    """The ``n``-th update: 170 rows, about 10 KiB of JSON, some values changed."""
    rows = [
        {"id": i, "name": f"user-{i}", "score": (i * 37 + n * i) % 1000, "online": (i + n) % 3 == 0}
        for i in range(170)
    ]
    return ["update", {"seq": n, "rows": rows}]


EVENT = event(0)
OFFER = "permessage-deflate; client_max_window_bits"
MEMORY_CASES: list[tuple[str, Any, bool]] = [
    ("off", False, False),
    ("off, after 10 KiB each way", False, True),
    ("on, idle (negotiated, unused)", True, False),
    ("on, after 10 KiB each way", True, True),
    (
        "on, no context takeover, after 10 KiB each way",
        {"server_no_context_takeover": True, "client_no_context_takeover": True},
        True,
    ),
]


# -- 0. zlib's allocations ----------------------------------------------------------------


def bench_zlib() -> None:
    import tracemalloc

    print("allocated by zlib per context (tracemalloc):")
    tracemalloc.start()
    kept = []
    for bits, mem_level in ((15, 8), (15, 9), (12, 8), (10, 6), (9, 1)):
        start = tracemalloc.get_traced_memory()[0]
        deflater = Deflater(bits, False, mem_level=mem_level)
        payload = deflater.deflate(b"y" * 5000)
        deflated = tracemalloc.get_traced_memory()[0]
        inflater = Inflater(bits, False)
        inflater.inflate(payload, True, 1 << 20)
        inflated = tracemalloc.get_traced_memory()[0]
        kept.append((deflater, inflater))
        print(
            f"  window bits {bits:2d}, mem_level {mem_level}: compressor "
            f"{(deflated - start) / 1024:6.1f} KiB, "
            f"decompressor {(inflated - deflated) / 1024:5.1f} KiB"
        )
    tracemalloc.stop()


# -- the server and its clients ------------------------------------------------------------


def serve(options: str) -> None:
    """Serve Engine.IO on 127.0.0.1 (port printed): echoes every message, but ``bcast``,
    which broadcasts the next update to every connection (encoded once)."""
    from geventsio.engine.server import EngineServer
    from geventsio.options import EngineOptions
    from geventsio.serving import make_server
    from geventsio.wsgi import WSGIApp

    sockets: set[Any] = set()
    sequence = iter(range(1 << 30))

    class Handler:
        def on_engine_connect(self, socket: Any) -> None:
            sockets.add(socket)

        def on_engine_message(self, socket: Any, data: str | bytes) -> None:
            if data != "bcast":
                socket.send(data)
                return
            packets = encode_for_engine(Packet(PacketType.EVENT, "/", event(next(sequence))))
            for each in sockets:
                each.send_packets(packets)

        def on_engine_close(self, socket: Any, reason: Any) -> None:
            sockets.discard(socket)

    deflate = json.loads(options)
    engine = EngineServer(Handler(), EngineOptions(per_message_deflate=deflate))  # type: ignore[arg-type]
    server = make_server(WSGIApp(engine), "127.0.0.1", 0)
    server.start()
    print(f"port {server.server_port}", flush=True)
    server.serve_forever()


class Server:
    """``--serve`` in a child process."""

    def __init__(self, options: Any) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", json.dumps(options)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline().split()[1])

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert match is not None
        return int(match.group(1))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


class Client:
    """A blocking raw WebSocket that offers permessage-deflate."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        key = handshake.new_client_key()
        target = "/socket.io/?EIO=4&transport=websocket"
        extra = [("Sec-WebSocket-Extensions", OFFER)]
        request = handshake.client_handshake_request(f"127.0.0.1:{port}", target, key, extra)
        self.sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        head, _, rest = head.partition(b"\r\n\r\n")
        self.agreed = b"permessage-deflate" in head.lower()
        self.parser = ws.FrameParser(
            max_message_size=1 << 24, expect_masked=False, inflater=Inflater(15, False)
        )
        self.events = self.parser.feed(rest)
        self.deflater = Deflater(15, False)
        self.received = 0
        self.receive()  # the open packet

    def receive(self) -> None:
        while not self.events:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.received += len(data)
            self.events = self.parser.feed(data)
        self.events.pop(0)

    def send(self, text: str) -> None:
        """Send ``text``, compressed when agreed."""
        data, mask = text.encode(), os.urandom(4)
        if self.agreed:
            frame = ws.encode_compressed(self.deflater.deflate(data), text=True, mask=mask)
        else:
            frame = ws.encode_text(data, mask=mask)
        self.sock.sendall(frame)


def _connect(port: int, count: int, options: Any) -> list[Client]:
    clients = [Client(port) for _ in range(count)]
    if any(c.agreed for c in clients) is not bool(options):
        raise AssertionError(f"per_message_deflate={options!r}: negotiation not as expected")
    return clients


# -- 1. the broadcast ----------------------------------------------------------------------


def bench_broadcast(connections: int, broadcasts: int) -> None:
    cases = {
        "off": False,
        "on": True,
        "on, server_no_context_takeover": {"server_no_context_takeover": True},
    }
    size = len(encode_for_engine(Packet(PacketType.EVENT, "/", EVENT))[0].ws_frame())
    print(
        f"broadcast of a {size}-byte JSON update to {connections} WebSockets, {broadcasts} times:"
    )
    cpu: dict[str, float] = {}
    wire: dict[str, float] = {}
    for name, options in cases.items():
        server = Server(options)
        try:
            clients = _connect(server.port, connections, options)
            read_before = sum(c.received for c in clients)
            cpu_before = server.cpu_seconds()
            for _ in range(broadcasts):
                clients[0].send("4bcast")
                for client in clients:
                    client.receive()
            cpu[name] = (server.cpu_seconds() - cpu_before) / broadcasts / connections * 1e6
            wire[name] = (sum(c.received for c in clients) - read_before) / broadcasts / connections
            for client in clients:
                client.sock.close()
        finally:
            server.stop()
        print(
            f"  deflate {name:32} server CPU {cpu[name]:7.1f} us per recipient  "
            f"{wire[name]:7.0f} bytes each  CPU on/off {cpu[name] / max(cpu['off'], 1e-9):5.2f}  "
            f"bytes on/off {wire[name] / wire['off']:5.3f}"
        )


# -- 2. idle memory per connection ---------------------------------------------------------


def bench_memory(connections: int) -> None:
    message = "4" + json.dumps(EVENT)
    print(f"server memory (VmRSS) per idle WebSocket connection, {connections} connections:")
    figures: dict[str, float] = {}
    for name, options, exchange in MEMORY_CASES:
        server = Server(options)
        try:
            warm = _connect(server.port, 20, options)  # the first connections grow pools
            for client in warm:
                if exchange:
                    client.send(message)
                    client.receive()
            time.sleep(0.5)
            before = server.rss_kib()
            clients = _connect(server.port, connections, options)
            for client in clients:
                if exchange:
                    client.send(message)
                    client.receive()
            time.sleep(0.5)  # let the server finish what it is doing
            figures[name] = (server.rss_kib() - before) / connections
            for client in warm + clients:
                client.sock.close()
        finally:
            server.stop()
        base = figures["off, after 10 KiB each way" if exchange else "off"]
        extra = "" if not options else f"  deflate's extra {figures[name] - base:6.1f} KiB"
        print(f"  deflate {name:48} {figures[name]:6.1f} KiB per connection{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--broadcasts", type=int, default=100)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    print("loadavg before:", Path("/proc/loadavg").read_text().strip())
    bench_zlib()
    bench_broadcast(args.connections, args.broadcasts)
    bench_memory(args.connections)
    print("loadavg after: ", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
