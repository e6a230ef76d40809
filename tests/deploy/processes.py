"""Processes for the deployment tests: servers (gunicorn, the CLI, the examples) and
long-running Node.js clients, each in its own process group, always killed at teardown.

Output (stdout and stderr together) is read line by line by a greenlet; tests wait for a
line with a bounded :meth:`Process.wait_for`, never with a bare sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent import subprocess

from tests.support.node import JS_DIR, node_executable

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_JS = Path(__file__).resolve().parent / "js"
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

#: Seconds a process has to print the line a test waits for.
START_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port that was free a moment ago (for programs that cannot report theirs)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Process:
    """A child process whose output lines are collected as they come.

    :param argv: the command.
    :param cwd: its working folder (the repository's root by default).
    :param env: variables added to the environment.
    """

    def __init__(
        self, argv: Sequence[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None
    ) -> None:
        self.argv = list(argv)
        self.popen = subprocess.Popen(
            self.argv,
            cwd=str(cwd),
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = gevent.spawn(self._read)

    @property
    def pid(self) -> int:
        """The process id."""
        return int(self.popen.pid)

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def output(self) -> str:
        """Everything printed so far."""
        return "\n".join(self.lines)

    def wait_for(
        self, pattern: str, timeout: float = START_TIMEOUT, *, count: int = 1
    ) -> re.Match[str]:
        """The ``count``-th output line matching ``pattern`` (a regular expression).

        :raises AssertionError: not within ``timeout``, or the process ended first.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            matches = [m for m in map(regex.search, list(self.lines)) if m]
            if len(matches) >= count:
                return matches[count - 1]
            if self._reader.dead and self.popen.poll() is not None:
                raise AssertionError(self.describe(f"ended before printing {pattern!r}"))
            if time.monotonic() > deadline:
                raise AssertionError(self.describe(f"no {pattern!r} within {timeout} s"))
            gevent.sleep(0.02)

    def count(self, pattern: str) -> int:
        """How many output lines match ``pattern``."""
        regex = re.compile(pattern)
        return sum(1 for line in list(self.lines) if regex.search(line))

    def signal(self, number: int) -> None:
        """Send a signal to the process (not its group)."""
        os.kill(self.pid, number)

    def wait(self, timeout: float) -> int:
        """Wait for the exit status (the output is then complete).

        :raises AssertionError: still running after ``timeout``.
        """
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(self.describe(f"still running after {timeout} s")) from None
        self._reader.join(timeout=5)
        return int(code)

    def kill(self) -> None:
        """Kill the whole process group (gunicorn's workers too) and reap it."""
        if self.popen.poll() is None or self._group_alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        if self.popen.stdin is not None:
            self.popen.stdin.close()
        self._reader.join(timeout=5)

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def describe(self, problem: str) -> str:
        """A failure message: the problem, the command and its output."""
        tail = "\n".join(self.lines[-60:])
        return f"{problem}\n$ {' '.join(self.argv)}\n{tail}"


class Processes:
    """Starts processes for one test and kills every one of them at teardown."""

    def __init__(self) -> None:
        self.started: list[Process] = []

    def start(
        self, argv: Sequence[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None
    ) -> Process:
        """Start ``argv`` (see :class:`Process`)."""
        process = Process(argv, cwd=cwd, env=env)
        self.started.append(process)
        return process

    def gunicorn(
        self,
        *args: str,
        app: str = "tests.deploy.sio_app:app",
        workers: int = 1,
        cwd: Path = ROOT,
        env: dict[str, str] | None = None,
    ) -> Server:
        """Start gunicorn on 127.0.0.1:0 with ``args`` and wait until it listens and its
        workers booted."""
        if not Path(GUNICORN).exists():
            pytest.fail(f"{GUNICORN} is missing: pip install -e '.[test]'")
        argv = [GUNICORN, "--bind", "127.0.0.1:0", "--workers", str(workers)]
        process = self.start([*argv, "--no-control-socket", *args, app], cwd=cwd, env=env)
        port = int(process.wait_for(r"Listening at: http://127\.0\.0\.1:(\d+)").group(1))
        process.wait_for(r"Booting worker with pid", count=workers)
        return Server(process, port)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Server:
        """Start ``python -m geventsio ARGS --port 0`` and wait until it serves."""
        process = self.start([PYTHON, "-m", "geventsio", *args, "--port", "0"], env=env)
        match = process.wait_for(r"serving on (https?)://127\.0\.0\.1:(\d+)")
        return Server(process, int(match.group(2)), scheme=match.group(1))

    def node_client(self, script: str, *args: object) -> NodeClient:
        """Start a long-running Node.js scenario from ``tests/deploy/js``."""
        process = self.start(
            [node_executable(), str(DEPLOY_JS / script), *map(str, args)], cwd=JS_DIR
        )
        return NodeClient(process)

    def kill_all(self) -> None:
        """Kill every process started (teardown)."""
        for process in self.started:
            process.kill()


class Server:
    """A server process and where it listens."""

    def __init__(self, process: Process, port: int, scheme: str = "http") -> None:
        self.process = process
        self.port = port
        self.url = f"{scheme}://127.0.0.1:{port}"


class NodeClient:
    """A Node.js client printing one JSON object per line (``{"event": ..., ...}``)."""

    def __init__(self, process: Process) -> None:
        self.process = process

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every JSON line printed so far."""
        found = []
        for line in list(self.process.lines):
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    found.append(json.loads(line))
        return found

    def wait_event(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = START_TIMEOUT,
        what: str = "an event",
    ) -> dict[str, Any]:
        """The first event for which ``predicate`` is true (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            if time.monotonic() > deadline or self.process.popen.poll() is not None:
                raise AssertionError(self.process.describe(f"no {what} within {timeout} s"))
            gevent.sleep(0.02)

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind, in order."""
        return [event for event in self.events if event.get("event") == kind]
