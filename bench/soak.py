"""Soak and churn: does the server's memory stay flat under churn, hostile clients and a
Redis restart, and do well-behaved clients notice nothing?

    python bench/soak.py                       # 5 minutes on the core, then 5 on flask_ext
    python bench/soak.py --minutes 3 --form core

For each form of the server (``bench/servers/soak_server.py``: geventsio's core, or the
same application on flask_ext, both with the Redis adapter), for ``--minutes``:

* ``--clients`` (2,000) churning clients, a third on WebSocket only, a third on
  long-polling only, a third upgrading: each connects, joins a random room, emits and
  asks for acknowledgements a few times (one action per ``--pace`` seconds, 15, on
  average), disconnects, waits, and starts again;
* 1% of them hostile instead, each rotating through the bad inputs geventsio must shrug
  off (:data:`ATTACKS`): a client-sent ping, malformed and oversize packets, too many
  attachments, deep JSON, hundreds of dynamic namespaces, bad queries, overlapping
  polls, an event flood, a client that never reads, a half-sent request;
* a few canary clients, connected throughout (they reconnect by themselves), that check
  every second that an echo comes back and that their own broadcast reaches them;
* the Redis the adapter uses (a ``redis-server`` of its own, on a free port) is
  restarted once, halfway.

It prints the server's RSS minute by minute (the median of each minute's samples) and
the growth from the second minute to the last (the target: under 5%), what the churning clients
did, every error a canary saw (none expected) and every traceback or ERROR line in the
server's log (none expected). The exit status is 1 when the growth is 5% or more, a
canary saw an error or the server logged one. Standard library, gevent and geventsio
only; ``redis-server`` must be on the PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.socket

import geventsio
from geventsio.protocol.websocket import encode_text

HERE = Path(__file__).resolve().parent
FORMS = ("core", "flask_ext")
CANARIES = 4
ROOMS = 50
TRANSPORTS = (["websocket"], ["polling"], ["polling", "websocket"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the processes ---------------------------------------------------------------------


class RedisProcess:
    """A ``redis-server`` of the soak's own (never the shared one), restartable."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            sys.exit("bench/soak.py needs redis-server on the PATH")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._answers():
            if time.monotonic() > deadline:
                sys.exit("redis-server did not start")
            gevent.sleep(0.05)

    def _answers(self) -> bool:
        try:
            address = ("127.0.0.1", self.port)
            with gevent.socket.create_connection(address, timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


class ServerProcess:
    """``bench/servers/soak_server.py`` in one form, on a free port."""

    def __init__(self, form: str, redis_url: str) -> None:
        env = dict(os.environ, SOAK_FORM=form, SOAK_REDIS=redis_url)
        script = HERE / "servers" / "soak_server.py"
        #: The server's log (stderr), read by :meth:`log_problems` at the end.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [sys.executable, str(script), "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("PORT "):
            sys.exit(f"the {form} server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def log_problems(self) -> list[str]:
        """The server's log lines that show a failure of its own (a traceback, ERROR)."""
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").splitlines()
        return [line for line in lines if "Traceback" in line or "ERROR" in line]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- what the clients count ------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One look at the server: its RSS and what it holds."""

    elapsed: float
    rss_kib: int
    sessions: int
    namespaces: int


@dataclass
class Tally:
    """What happened during one form's run."""

    counts: Counter[str] = field(default_factory=Counter)
    attacks: Counter[str] = field(default_factory=Counter)
    churn_errors: Counter[str] = field(default_factory=Counter)
    canary_errors: list[str] = field(default_factory=list)
    server_problems: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def canary_error(self, what: str) -> None:
        self.canary_errors.append(f"{time.monotonic() - self.started:7.1f}s {what}")


# -- well-behaved clients --------------------------------------------------------------


def churn(url: str, index: int, pace: float, stop: gevent.event.Event, tally: Tally) -> None:
    """One churning client: connect, join, emit, disconnect, pause; again until stop.
    It waits ``pace`` seconds on average between two of its actions."""
    rng = random.Random(index)
    transports = TRANSPORTS[index % 3]
    gevent.sleep(rng.uniform(0, pace))  # spread the first connections
    while not stop.is_set():
        client = geventsio.Client(reconnection=False)
        try:
            client.connect(url, transports=transports, wait_timeout=30)
            tally.counts["connects"] += 1
            room = f"room-{rng.randrange(ROOMS)}"
            client.call("join", room, timeout=30)
            for _ in range(rng.randint(1, 4)):
                if stop.wait(rng.uniform(0.5, 1.5) * pace):
                    break
                target = "all" if rng.random() < 0.01 else room
                client.call("say", target, "x" * rng.randrange(200), timeout=30)
                tally.counts["acks"] += 1
        except Exception as exc:  # counted, not raised: churn errors are load, not bugs
            tally.churn_errors[type(exc).__name__] += 1
        finally:
            client.disconnect()
        stop.wait(rng.uniform(0.1, 0.5) * pace)


def canary(url: str, index: int, stop: gevent.event.Event, tally: Tally) -> None:
    """A client connected throughout: every second an echo and a broadcast to itself
    must come back. Every failure is reported."""
    client = geventsio.Client(reconnection_delay=0.2, reconnection_delay_max=1)
    heard: set[int] = set()
    client.on("news", lambda data: heard.add(data) if isinstance(data, int) else None)

    def on_disconnect(reason: Any) -> None:
        if not stop.is_set():
            tally.canary_error(f"canary {index} disconnected: {reason}")

    client.on("disconnect", on_disconnect)
    client.on("connect", lambda: client.emit("join", "canary"))
    client.connect(url, transports=TRANSPORTS[index % 3], wait_timeout=30)
    for n in itertools.count(index * 1_000_000):
        if stop.wait(1.0):
            break
        try:
            if client.call("echo", n, timeout=10) != n:
                tally.canary_error(f"canary {index}: wrong echo")
            client.call("say", "canary", n, timeout=10)
            if not _wait(lambda n=n: n in heard, 10):
                tally.canary_error(f"canary {index}: its broadcast {n} never came")
            heard.discard(n)
            tally.counts["canary checks"] += 1
        except Exception as exc:
            tally.canary_error(f"canary {index}: {type(exc).__name__}: {exc}")
    client.disconnect()


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.01)
    return True


# -- hostile clients -------------------------------------------------------------------


class Raw:
    """A plain TCP connection to the server, for requests no real client sends."""

    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.sock = gevent.socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(20)
        self.sock.connect(("127.0.0.1", port))

    def request(self, method: str, target: str, body: bytes = b"", **headers: str) -> bytes:
        head = f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        if body or method == "POST":
            headers.setdefault("Content-Length", str(len(body)))
        head += "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
        self.sock.sendall(head.encode() + b"\r\n" + body)
        return self.read_to_end()

    def read_to_end(self, limit: float = 10) -> bytes:
        data = b""
        with gevent.Timeout(limit, False), contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                data += chunk
        return data

    def websocket(self, path: str = "/socket.io/?EIO=4&transport=websocket") -> None:
        key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"{key}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            head += chunk

    def send_text(self, text: str) -> None:
        self.sock.sendall(encode_text(text, mask=os.urandom(4)))

    def close(self) -> None:
        self.sock.close()


def handshake(port: int) -> str:
    """A polling session's sid."""
    body = Raw(port).request("GET", "/socket.io/?EIO=4&transport=polling")
    return body.split(b'"sid":"', 1)[1].split(b'"', 1)[0].decode()


def ws_session(port: int, *texts: str, rcvbuf: int | None = None) -> Raw:
    """A WebSocket session that sent ``texts`` (after its own CONNECT to "/")."""
    raw = Raw(port, rcvbuf)
    raw.websocket()
    for text in ("40", *texts):
        raw.send_text(text)
    return raw


def attack_client_ping_ws(port: int) -> None:
    ws_session(port, "2").read_to_end()


def attack_client_ping_polling(port: int) -> None:
    sid = handshake(port)
    Raw(port).request("POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", b"2")


def attack_malformed(port: int) -> None:
    ws_session(port, '42["x",').read_to_end()
    ws_session(port, "9nonsense").read_to_end()


def attack_oversize(port: int) -> None:
    sid = handshake(port)
    Raw(port).request(
        "POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", Content_Length="5000000"
    )


def attack_attachments(port: int) -> None:
    placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(100))
    ws_session(port, f'4100-["x",{placeholders}]').read_to_end()


def attack_deep_json(port: int) -> None:
    ws_session(port, '42["echo",' + "[" * 500 + "]" * 500 + "]").read_to_end()


def attack_namespaces(port: int) -> None:
    raw = ws_session(port, *(f"40/dyn-{random.randrange(10**9)}," for _ in range(300)))
    raw.send_text("40/nowhere,")
    gevent.sleep(1)
    raw.close()


def attack_bad_queries(port: int) -> None:
    for query in (
        "EIO=3&transport=polling",
        "EIO=4&transport=carrier-pigeon",
        "EIO=4&transport=polling&sid=nope",
        "EIO=4&transport=polling&" + "&".join(["a=b"] * 1000),
    ):
        Raw(port).request("GET", f"/socket.io/?{query}")


def attack_overlapping_gets(port: int) -> None:
    sid = handshake(port)
    target = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    first = gevent.spawn(Raw(port).request, "GET", target)
    gevent.sleep(0.1)
    Raw(port).request("GET", target)
    first.join(10)


def attack_event_flood(port: int) -> None:
    raw = ws_session(port, *(f'42["slow",{i}]' for i in range(2000)))
    raw.close()


def attack_non_reader(port: int) -> None:
    raw = ws_session(port, '42["join","all"]', rcvbuf=4096)
    gevent.sleep(15)  # receiving broadcasts to "all", reading none of them
    raw.close()


def attack_half_request(port: int) -> None:
    raw = Raw(port)
    raw.sock.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost:")
    gevent.sleep(5)
    raw.close()


ATTACKS: dict[str, Callable[[int], None]] = {
    name.removeprefix("attack_"): function
    for name, function in list(globals().items())
    if name.startswith("attack_")
}


def hostile(port: int, index: int, stop: gevent.event.Event, tally: Tally) -> None:
    """One hostile client, rotating through :data:`ATTACKS`."""
    names = list(ATTACKS)
    random.Random(index).shuffle(names)
    for name in itertools.cycle(names):
        if stop.wait(random.uniform(0.5, 2)):
            return
        with contextlib.suppress(OSError):  # the server closing on it: the right answer
            ATTACKS[name](port)
        tally.attacks[name] += 1


# -- one run ---------------------------------------------------------------------------


def run_form(form: str, minutes: float, clients: int, pace: float) -> tuple[list[Sample], Tally]:
    """Soak one form of the server; returns its RSS samples and the tally."""
    redis = RedisProcess()
    server = ServerProcess(form, redis.url)
    stop = gevent.event.Event()
    tally = Tally()
    hostiles = max(1, clients // 100)
    greenlets = [
        gevent.spawn(churn, server.url, i, pace, stop, tally) for i in range(clients - hostiles)
    ]
    greenlets += [gevent.spawn(hostile, server.port, i, stop, tally) for i in range(hostiles)]
    greenlets += [gevent.spawn(canary, server.url, i, stop, tally) for i in range(CANARIES)]
    samples: list[Sample] = []
    duration = minutes * 60
    restarted = False
    observer = geventsio.Client()
    observer.connect(server.url, transports=["websocket"], wait_timeout=30)
    try:
        while (elapsed := time.monotonic() - tally.started) < duration:
            try:
                held = observer.call("stats", timeout=5)
            except Exception:
                held = {"sessions": -1, "namespaces": -1}
            samples.append(Sample(elapsed, server.rss_kib(), held["sessions"], held["namespaces"]))
            if not restarted and elapsed >= duration / 2:
                print(f"  {elapsed:5.0f}s restarting Redis", flush=True)
                redis.restart()
                restarted = True
            gevent.sleep(5)
    finally:
        stop.set()
        observer.disconnect()
        gevent.joinall(greenlets, timeout=60)
        gevent.killall([g for g in greenlets if not g.dead])
        server.stop()
        redis.stop()
        tally.server_problems = server.log_problems()
        server.log.close()
    return samples, tally


def per_minute(samples: list[Sample], field: str) -> list[int]:
    """The median of one field of each whole minute's samples."""
    minutes: dict[int, list[int]] = {}
    for sample in samples:
        minutes.setdefault(int(sample.elapsed // 60), []).append(getattr(sample, field))
    return [int(statistics.median(minutes[m])) for m in sorted(minutes)]


def report(form: str, samples: list[Sample], tally: Tally) -> bool:
    """Print one form's figures; True when the memory stayed flat and canaries are fine."""
    curve = per_minute(samples, "rss_kib")
    sessions = per_minute(samples, "sessions")
    namespaces = per_minute(samples, "namespaces")
    print(f"\n== {form}: the server, median of each minute")
    print("  minute      " + "".join(f"{i + 1:>8}" for i in range(len(curve))))
    print("  RSS MiB     " + "".join(f"{kib / 1024:8.1f}" for kib in curve))
    print("  sessions    " + "".join(f"{n:8}" for n in sessions))
    print("  namespaces  " + "".join(f"{n:8}" for n in namespaces))
    flat = True
    if len(curve) >= 3:
        growth = (curve[-1] - curve[1]) / curve[1] * 100
        flat = growth < 5
        print(f"  growth from minute 2 to minute {len(curve)}: {growth:+.1f}% (target < 5%)")
    else:
        print("  (fewer than 3 minutes: no growth figure; run with --minutes 3 or more)")
    print(f"  churn: {dict(tally.counts)}; churn errors: {dict(tally.churn_errors) or 'none'}")
    print(f"  hostile attacks: {sum(tally.attacks.values())} ({dict(tally.attacks)})")
    print(f"  canary errors: {len(tally.canary_errors)}")
    for error in tally.canary_errors:
        print(f"    {error}")
    print(f"  server log: {len(tally.server_problems)} tracebacks or ERROR lines")
    for line in tally.server_problems[:10]:
        print(f"    {line}")
    return flat and not tally.canary_errors and not tally.server_problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="per form (default 5)")
    parser.add_argument("--clients", type=int, default=2000, help="churning + hostile")
    parser.add_argument("--form", choices=[*FORMS, "both"], default="both")
    parser.add_argument(
        "--pace", type=float, default=15.0, help="mean seconds between a client's actions"
    )
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    forms = FORMS if args.form == "both" else (args.form,)
    ok = True
    for form in forms:
        what = f"{args.minutes:g} min, {args.clients} clients, an action per {args.pace:g} s"
        print(f"soak: {form}, {what}", flush=True)
        samples, tally = run_form(form, args.minutes, args.clients, args.pace)
        ok = report(form, samples, tally) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
