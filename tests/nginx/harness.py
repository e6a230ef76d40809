"""nginx in front of three geventsio servers: the processes, the configuration (the
example's, with test ports and paths), the access log, and the clients.

The configuration under test is ``examples/nginx/nginx.conf`` itself: :func:`render_config`
changes only ports, file paths, the number of nginx workers and (for the negative
control) the balancing method, each replacement checked, so that the tests fail loudly
when the example changes shape.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent import subprocess

from tests.redis.harness import START_TIMEOUT, JsonLinesProcess
from tests.support.node import run_node
from tests.support.waiting import wait_until

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLE = REPO / "examples" / "nginx" / "nginx.conf"
BACKEND_SCRIPT = HERE / "backend.py"
CLIENTS_SCRIPT = HERE / "clients.mjs"

#: The backends' names, in the order of the upstream block.
NAMES = ("A", "B", "C")

#: The backends' addresses in the example, in the order of its ``upstream`` block.
EXAMPLE_BACKENDS = ("127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003")

#: What the tests log for every request nginx handles (one JSON object a line).
PROBE_LOG_FORMAT = (
    'log_format probe escape=json \'{"addr":"$remote_addr","method":"$request_method",'
    '"uri":"$request_uri","status":"$status","upstream":"$upstream_addr"}\';'
)


def nginx_binary() -> str:
    """The ``nginx`` binary: skips the test when it is missing (fails when ``CI=true``)."""
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        reason = (
            "nginx is not installed: these tests need the Debian package nginx "
            "(scripts/bootstrap.sh installs it when run as root)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


def nginx_command(binary: str, prefix: Path, *options: str, directives: str = "") -> list[str]:
    """nginx with every file in ``prefix`` (``prefix/nginx.conf``, ``prefix/nginx.pid``);
    ``directives`` go before the pid in ``-g`` (nginx reads one ``-g`` only)."""
    config, pid = prefix / "nginx.conf", prefix / "nginx.pid"
    return [binary, "-p", str(prefix), "-c", str(config), *options, "-g", f"{directives}pid {pid};"]


def loopback_address(n: int) -> str:
    """``127.0.n.1``, a source address of its own for a client (Linux: all of 127/8 is
    loopback). ip_hash keys on an IPv4 address's first three octets, hence ``n``."""
    return f"127.0.{n}.1"


def check_loopback_range() -> None:
    """Skip unless this host can send from 127.0.1.1 (Linux can; macOS cannot)."""
    with socket.socket() as sock:
        try:
            sock.bind((loopback_address(1), 0))
        except OSError as exc:
            pytest.skip(f"cannot bind 127.0.1.1 ({exc}): these tests need Linux's 127/8 loopback")


def ip_hash_index(address: str, servers: int) -> int:
    """The upstream server (0-based, all up, equal weights) that nginx's ``ip_hash`` picks
    for an IPv4 client: ngx_http_upstream_ip_hash_module.c hashes the first three octets."""
    value = 89
    for octet in address.split(".")[:3]:
        value = (value * 113 + int(octet)) % 6271
    return value % servers


def spread_addresses(per_server: int, servers: int = 3) -> list[str]:
    """Client addresses that ip_hash sends ``per_server`` to each of ``servers`` servers
    (server 0 first, then 1, ...): stickiness by address, observably spread."""
    chosen: dict[int, list[str]] = {index: [] for index in range(servers)}
    for n in range(1, 255):
        address = loopback_address(n)
        bucket = chosen[ip_hash_index(address, servers)]
        if len(bucket) < per_server:
            bucket.append(address)
    return [address for index in range(servers) for address in chosen[index]]


class Backend(JsonLinesProcess):
    """A geventsio server (``backend.py``) in the test's Redis cluster."""

    def __init__(self, name: str, redis_url: str, key: str, *, cluster: bool = False) -> None:
        argv = [sys.executable, str(BACKEND_SCRIPT), "--redis", redis_url, "--key", key]
        super().__init__([*argv, "--name", name, *(["--cluster"] if cluster else [])], name)
        self.port = 0
        self.pid = 0

    def ready(self) -> Backend:
        """Wait until it listens, linked to Redis."""
        hello = self.wait_message(lambda m: "port" in m, START_TIMEOUT, "listening")
        self.port, self.pid = hello["port"], hello["pid"]
        return self

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as nginx's ``$upstream_addr`` names it."""
        return f"127.0.0.1:{self.port}"


def _replace(text: str, old: str, new: str, count: int = 1) -> str:
    found = text.count(old)
    assert found == count, f"examples/nginx/nginx.conf: {old!r} found {found} times, not {count}"
    return text.replace(old, new)


def render_config(
    prefix: Path, port: int, backends: Iterable[str], balance: str | None = "ip_hash"
) -> str:
    """The example's configuration, listening on ``127.0.0.1:port``, proxying to
    ``backends``, with every file under ``prefix`` and one worker (the round-robin control
    needs one: each worker keeps its own turn). ``balance`` replaces ``ip_hash`` (None:
    round-robin, nginx's default)."""
    text = EXAMPLE.read_text()
    # The workers run as whoever runs the tests (as root, they could not reach prefix).
    text = _replace(text, "user www-data;\n", "user root;\n" if os.geteuid() == 0 else "")
    text = _replace(text, "worker_processes auto;", "worker_processes 1;")
    text = _replace(text, "/var/log/nginx/", f"{prefix}/", count=2)
    text = _replace(text, "listen 80;", f"listen 127.0.0.1:{port};")
    backends = list(backends)
    assert len(backends) == len(EXAMPLE_BACKENDS)
    for example, backend in zip(EXAMPLE_BACKENDS, backends, strict=True):
        text = _replace(text, f"server {example};", f"server {backend};")
    lines = re.findall(r"^ *ip_hash;.*\n", text, flags=re.MULTILINE)
    assert len(lines) == 1, "examples/nginx/nginx.conf: expected one ip_hash line"
    text = text.replace(lines[0], f"        {balance};\n" if balance else "")
    temp_paths = "".join(
        f"    {kind}_temp_path {prefix}/temp/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    probe = f"    {PROBE_LOG_FORMAT}\n    access_log {prefix}/probe.log probe;\n"
    return _replace(text, "http {\n", "http {\n" + temp_paths + probe)


@dataclass(frozen=True)
class Request:
    """One request as nginx logged it."""

    addr: str
    method: str
    uri: str
    status: int
    upstream: str

    @property
    def transport(self) -> str:
        """``polling`` or ``websocket`` (from the query)."""
        return "websocket" if "transport=websocket" in self.uri else "polling"


class Nginx:
    """nginx in the foreground, as the user running the tests, all files in ``prefix``.

    :param binary: the nginx binary.
    :param config: the configuration text (see :func:`render_config`).
    :param prefix: a folder of its own.
    :param port: the port the configuration listens on.
    """

    def __init__(self, binary: str, config: str, prefix: Path, port: int) -> None:
        self.prefix = prefix
        self.port = port
        (prefix / "temp").mkdir(exist_ok=True)
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(config)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in stop()
        self.process = subprocess.Popen(
            nginx_command(binary, prefix, directives="daemon off; "),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,  # its own process group: the workers go with it
        )

    def ready(self) -> Nginx:
        """Wait until it accepts connections (it fails at once if nginx exits)."""
        wait_until(self._listening, START_TIMEOUT, f"nginx listens on {self.port}")
        return self

    def _listening(self) -> bool:
        assert self.process.poll() is None, (
            f"nginx exited ({self.process.returncode}):\n{self.errors()}"
        )
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def errors(self) -> str:
        """nginx's own stderr and error log."""
        self._stderr.seek(0)
        log = self.prefix / "error.log"
        return self._stderr.read().decode(errors="replace") + (
            log.read_text(errors="replace") if log.exists() else ""
        )

    def requests(self) -> list[Request]:
        """Every request logged so far (nginx logs one when its response is complete)."""
        log = self.prefix / "probe.log"
        if not log.exists():
            return []
        entries = [json.loads(line) for line in log.read_text().splitlines() if line]
        return [
            Request(e["addr"], e["method"], e["uri"], int(e["status"]), e["upstream"])
            for e in entries
        ]

    def wait_requests(self, predicate: Any, what: str, timeout: float = 5.0) -> list[Request]:
        """The logged requests, once ``predicate(requests)`` holds (bounded)."""
        wait_until(lambda: predicate(self.requests()), timeout, f"nginx logs {what}")
        return self.requests()

    def stop(self) -> None:
        """Fast shutdown (SIGTERM: the master stops its workers and waits for them); its
        process group is killed if the master has not exited within 5 s."""
        if self.process.poll() is None:
            self.process.terminate()
            with gevent.Timeout(5, False):
                self.process.wait()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        stray = self._daemon_pid()
        if stray is not None:  # it daemonized after all: stop that master too
            os.kill(stray, signal.SIGTERM)
        self._stderr.close()

    def _daemon_pid(self) -> int | None:
        """The pid in our pid file, if that process is an nginx running our config."""
        try:
            pid = int((self.prefix / "nginx.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(self.conf).encode() in cmdline else None


#: ``start_nginx(backends, balance="ip_hash") -> Nginx`` (the fixture).
StartNginx = Callable[..., Nginx]


def run_clients(url: str, clients: list[dict[str, Any]], **plan: Any) -> dict[str, Any]:
    """Run ``clients.mjs`` with this plan (see its header); return its result."""
    source = CLIENTS_SCRIPT.read_text()
    plan = {"url": url, "clients": clients, **plan}
    return run_node(source, json.dumps(plan), timeout=60)


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The clients' records, by name."""
    return {client["name"]: client for client in result["clients"]}
