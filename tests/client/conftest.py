"""Fixtures of the client tests: the Node reference server as a subprocess, and clients
that are disconnected (and checked for leftover greenlets) at teardown."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent import subprocess

from geventsio.client import Client
from tests.support.node import JS_DIR, node_executable
from tests.support.server import describe_greenlet, live_greenlets

SERVER_SCRIPT = JS_DIR / "client_server.mjs"
#: Seconds the Node server may take to start listening.
START_TIMEOUT = 15.0
#: Seconds teardown waits for the client's greenlets to end.
LEAK_TIMEOUT = 5.0


class NodeServer:
    """The reference socket.io server (``tests/js/client_server.mjs``) in a subprocess.

    :param ping_interval: the server's pingInterval, in milliseconds.
    :param ping_timeout: the server's pingTimeout, in milliseconds.
    :param tls: ``(certfile, keyfile)`` to serve https.
    :param parser: ``"msgpack"``: the server uses socket.io-msgpack-parser.
    :param per_message_deflate: the server's ``perMessageDeflate`` (WebSocket compression).
    """

    def __init__(
        self,
        ping_interval: int = 25000,
        ping_timeout: int = 20000,
        tls: tuple[Path, Path] | None = None,
        parser: str = "json",
        per_message_deflate: bool = False,
    ) -> None:
        self.parser = parser
        self.per_message_deflate = per_message_deflate
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.tls = tls
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> NodeServer:
        """Start the process (on the same port as before, if it ran before)."""
        assert self.process is None, "already running"
        command = [node_executable(), str(SERVER_SCRIPT), "--port", str(self.port)]
        command += ["--ping-interval", str(self.ping_interval)]
        command += ["--ping-timeout", str(self.ping_timeout)]
        if self.tls:
            command += ["--cert", str(self.tls[0]), "--key", str(self.tls[1])]
        command += ["--parser", self.parser]
        if self.per_message_deflate:
            command += ["--per-message-deflate"]
        # stdin is a pipe: the server exits when it closes, so it never outlives us.
        self.process = subprocess.Popen(
            command, cwd=str(JS_DIR), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.process.stdout is not None
        with gevent.Timeout(START_TIMEOUT, AssertionError("the Node server did not start")):
            line = self.process.stdout.readline().decode()
        if not line.startswith("listening "):
            self.kill()
            raise AssertionError(f"the Node server failed to start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def kill(self) -> None:
        """Kill the process at once (SIGKILL: no goodbye to the clients)."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait(timeout=10)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()

    def restart(self) -> None:
        """Kill and start again on the same port."""
        self.kill()
        self.start()


NodeServerFactory = Callable[..., NodeServer]
ClientFactory = Callable[..., Client]


@pytest.fixture
def node_server_factory() -> Iterator[NodeServerFactory]:
    """Start Node servers: ``node_server_factory(ping_interval=..., ...)``; all are killed
    at teardown."""
    servers: list[NodeServer] = []

    def start(**kwargs: Any) -> NodeServer:
        server = NodeServer(**kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def node_server(node_server_factory: NodeServerFactory) -> NodeServer:
    """A Node server with the default options, for this test alone."""
    return node_server_factory()


@pytest.fixture(scope="module")
def shared_node_server() -> Iterator[NodeServer]:
    """A Node server with the default options, shared by the tests of a module (for
    tests that leave it as they found it)."""
    server = NodeServer().start()
    yield server
    server.kill()


@pytest.fixture
def make_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[ClientFactory]:
    """Make clients (fast reconnection, no jitter, by default); at teardown each is
    disconnected, every greenlet started during the test must end, and none of
    geventsio's greenlets may have died of an exception."""
    before = {id(g) for g in live_greenlets()}
    clients: list[Client] = []
    crashes: list[str] = []
    hub = gevent.get_hub()
    print_exception = hub.print_exception

    def record(context: Any, kind: Any, value: Any, tb: Any) -> None:
        if isinstance(context, gevent.Greenlet) and "geventsio" in describe_greenlet(context):
            crashes.append(f"{describe_greenlet(context)}: {value!r}")
        print_exception(context, kind, value, tb)

    monkeypatch.setattr(hub, "print_exception", record)

    def make(**options: Any) -> Client:
        options.setdefault("reconnection_delay", 0.05)
        options.setdefault("reconnection_delay_max", 0.2)
        options.setdefault("randomization_factor", 0)
        options.setdefault("request_timeout", 5)
        client = Client(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.disconnect()
    deadline = time.monotonic() + LEAK_TIMEOUT
    while leftovers := [g for g in live_greenlets() if id(g) not in before]:
        if time.monotonic() > deadline:
            names = ", ".join(describe_greenlet(g) for g in leftovers)
            raise AssertionError(f"greenlets left running: {names}")
        gevent.sleep(0.01)
    assert not crashes, f"greenlets died of an exception: {crashes}"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"]
    command += ["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=30, env=dict(os.environ))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl could not make a test certificate: {exc}")
    return cert, key
