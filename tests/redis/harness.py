"""Child processes for the Redis tests: geventsio servers, Node servers and Node clients,
each spoken to in JSON lines, and redis-server instances the tests may kill.

Every child is killed at teardown (the fixtures in ``conftest.py`` see to it); every wait
is bounded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import gevent
import orjson
import pytest
import redis
from gevent import subprocess

from tests.support.waiting import wait_until

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
JS_DIR = REPO / "tests" / "js_redis"
NODE_SCRIPT = HERE / "cluster_node.py"

#: Seconds a child may take to start.
START_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_executable() -> str:
    """``node``; skips the test when Node.js is missing, fails when packages are."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: these tests need `node` (20+)")
    if not (JS_DIR / "node_modules").is_dir():
        pytest.fail("tests/js_redis/node_modules is missing: run `npm ci` in tests/js_redis")
    return node


class JsonLinesProcess:
    """A child that reads JSON commands on stdin and writes JSON lines on stdout.

    :param argv: the command line.
    :param name: for messages.
    :param cwd: the working directory.
    """

    def __init__(self, argv: list[str], name: str, cwd: Path = REPO) -> None:
        self.name = name
        self.messages: list[dict[str, Any]] = []
        self._ids = count(1)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in stop()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            argv,
            cwd=str(cwd),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._reader = gevent.spawn(self._read)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                message = orjson.loads(line)
                if isinstance(message, dict):
                    self.messages.append(message)

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def stderr(self) -> str:
        """Everything the child wrote on stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def wait_message(
        self,
        predicate: Callable[[dict[str, Any]], Any],
        timeout: float = 5.0,
        what: str = "a message",
    ) -> dict[str, Any]:
        """The first message (already received or to come) that satisfies ``predicate``."""

        def find() -> dict[str, Any] | None:
            if not self.alive and not self._reader.dead:
                gevent.sleep(0.05)
            for message in self.messages:
                if predicate(message):
                    return message
            assert self.alive or not self._reader.dead, (
                f"{self.name} exited ({self.process.returncode}) waiting for {what}\n"
                f"{self.stderr()}"
            )
            return None

        return wait_until(find, timeout, f"{self.name}: {what}")

    def command(self, cmd: str, *, wait: float = 10.0, **fields: Any) -> Any:
        """Send a command and return its result (waiting at most ``wait`` seconds).

        :raises AssertionError: the child answered with an error, or not in time.
        """
        command_id = next(self._ids)
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps({"id": command_id, "cmd": cmd, **fields}) + b"\n")
        self.process.stdin.flush()
        answer = self.wait_message(lambda m: m.get("id") == command_id, wait, f"answer to {cmd}")
        if "error" in answer:
            raise AssertionError(f"{self.name}: {cmd} failed: {answer['error']}\n{self.stderr()}")
        return answer.get("result")

    def stop(self) -> None:
        """Kill the child (if running) and reap it."""
        if self.alive:
            self.process.kill()
        with gevent.Timeout(5, False):
            self.process.wait()
        self._reader.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._stderr.close()


class ClusterNode(JsonLinesProcess):
    """A geventsio server (``cluster_node.py``) in a Redis cluster."""

    def __init__(self, name: str, redis_url: str, key: str, *extra: str) -> None:
        argv = [
            sys.executable,
            str(NODE_SCRIPT),
            "--redis",
            redis_url,
            "--key",
            key,
            "--name",
            name,
            *extra,
        ]
        super().__init__(argv, name)
        self.port = 0
        self.uid = ""

    def ready(self) -> ClusterNode:
        """Wait until it listens; then its link must come up."""
        hello = self.wait_message(lambda m: "port" in m, START_TIMEOUT, "listening")
        self.port, self.uid = hello["port"], hello["uid"]
        return self

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def wait_up(self, timeout: float = 10.0) -> None:
        """Wait until its link to Redis is up."""
        wait_until(lambda: self.command("state")["up"], timeout, f"{self.name}: Redis link up")


class NodeServer(JsonLinesProcess):
    """The Node reference server with the Node Redis adapter (``node_server.mjs``)."""

    def __init__(self, name: str, redis_url: str, key: str) -> None:
        argv = [node_executable(), str(JS_DIR / "node_server.mjs"), redis_url, key, name]
        super().__init__(argv, name, JS_DIR)
        self.port = 0

    def ready(self) -> NodeServer:
        """Wait until it listens."""
        self.port = self.wait_message(lambda m: "port" in m, START_TIMEOUT, "listening")["port"]
        return self

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"


class Clients(JsonLinesProcess):
    """socket.io-client instances in one Node process (``clients.mjs``)."""

    def __init__(self) -> None:
        super().__init__([node_executable(), str(JS_DIR / "clients.mjs")], "clients", JS_DIR)
        self.wait_message(lambda m: m.get("ready"), START_TIMEOUT, "ready")

    def connect(
        self,
        client: str,
        server: ClusterNode | NodeServer,
        *,
        namespace: str = "/",
        rooms: list[str] | None = None,
    ) -> str:
        """Connect a client (auth ``{name, rooms}``) and return its socket id."""
        result = self.command(
            "connect",
            client=client,
            url=server.url,
            namespace=namespace,
            auth={"name": client, "rooms": rooms or []},
        )
        return str(result["sid"])

    def events(self, client: str, event: str | None = None) -> list[list[Any]]:
        """The arguments of every event ``client`` received (of one name, if given)."""
        return [
            m["event"]["args"] if event else [m["event"]["event"], *m["event"]["args"]]
            for m in self.messages
            if "event" in m
            and m["event"]["client"] == client
            and (event is None or m["event"]["event"] == event)
        ]

    def wait_event(
        self, client: str, event: str, count: int = 1, timeout: float = 5.0
    ) -> list[list[Any]]:
        """Wait until ``client`` received ``event`` ``count`` times; return the arguments."""
        wait_until(
            lambda: len(self.events(client, event)) >= count,
            timeout,
            f"{client} receives {event!r} x{count} (got {self.events(client)})",
        )
        return self.events(client, event)

    def disconnected(self, client: str) -> str | None:
        """The reason ``client`` was disconnected, or None."""
        for message in self.messages:
            if "disconnect" in message and message["disconnect"]["client"] == client:
                return str(message["disconnect"]["reason"])
        return None


class RedisServer:
    """A redis-server of the test's own, on a free port, that can be killed and restarted;
    with ``persist_dir``, it writes every change to an append-only file there first, so a
    restart finds what it had."""

    def __init__(self, persist_dir: Path | None = None) -> None:
        self.persist_dir = persist_dir
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(self.binary):
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (on the same port as before) and wait until it answers PING."""
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *self._persistence(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, protocol=2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(answers, 10.0, f"redis-server on port {self.port} answers")
        finally:
            client.close()

    def _persistence(self) -> list[str]:
        if self.persist_dir is None:
            return ["--appendonly", "no"]
        return ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.persist_dir)]

    def kill(self) -> None:
        """Kill it at once (SIGKILL) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def redis_answers(url: str) -> bool:
    """Whether a Redis answers PING at ``url`` (within half a second)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5, protocol=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class StreamsServer(JsonLinesProcess):
    """A server of a Redis Streams cluster with connection state recovery: geventsio's
    (``streams_node.py``) or the Node reference's (``streams_node.mjs``)."""

    def __init__(self, name: str, redis_url: str, stream: str, *, node: bool = False) -> None:
        if node:
            argv = [node_executable(), str(JS_DIR / "streams_node.mjs"), redis_url, stream, name]
            super().__init__(argv, name, JS_DIR)
        else:
            script = str(HERE / "streams_node.py")
            argv = [sys.executable, script, "--redis", redis_url, "--stream", stream]
            super().__init__([*argv, "--name", name], name)
        self.port = 0

    def ready(self) -> StreamsServer:
        """Wait until it listens."""
        self.port = self.wait_message(lambda m: "port" in m, START_TIMEOUT, "listening")["port"]
        return self

    @property
    def address(self) -> tuple[str, int]:
        """``("127.0.0.1", port)``."""
        return ("127.0.0.1", self.port)

    def connections(self) -> list[dict[str, Any]]:
        """Every connection it reported: ``{id, recovered}``."""
        return [m["connection"] for m in self.messages if "connection" in m]

    def seen(self, socket_id: str) -> list[Any]:
        """The ``seen`` events of one socket, in order."""
        return [m["seen"][1] for m in self.messages if "seen" in m and m["seen"][0] == socket_id]

    def disconnects(self) -> list[dict[str, Any]]:
        """Every disconnect it reported: ``{id, reason}``."""
        return [m["disconnect"] for m in self.messages if "disconnect" in m]

    def emit(self, event: str, *args: Any, to: list[str] | None = None) -> None:
        """Broadcast from this server."""
        self.command("emit", event=event, args=list(args), to=to or [])
