"""Run Node.js scripts from ``tests/js`` (where ``node_modules`` resolves) and read their
one-line JSON result."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from gevent import subprocess

#: The folder of the JavaScript scenarios and their ``package.json``.
JS_DIR = Path(__file__).resolve().parents[1] / "js"


def node_executable() -> str:
    """The ``node`` binary; skips the test when Node.js is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the end-to-end tests need `node` (20+)")
    if not (JS_DIR / "node_modules").is_dir():
        pytest.fail("tests/js/node_modules is missing: run `npm ci` in tests/js")
    return node


def _last_json_object(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def run_node(
    script: str | Path, *args: object, env: dict[str, str] | None = None, timeout: float = 60
) -> dict[str, Any]:
    """Run a scenario with ``node`` in ``tests/js`` and return its JSON result line.

    :param script: a path to a ``.mjs`` file (relative paths are taken from ``tests/js``),
        or ES module source code, run as ``node --input-type=module -`` (``argv`` is the
        same as for a file: the arguments start at ``process.argv[2]``).
    :param args: command-line arguments (converted with ``str``).
    :param env: variables added to the environment.
    :param timeout: seconds before the process is killed and the test fails.
    :raises pytest.fail.Exception: no JSON object line on stdout, or a timeout; the
        message shows stdout and stderr.
    """
    node = node_executable()
    source: str | None = None
    path = Path(script) if isinstance(script, Path) else None
    if (
        path is None
        and isinstance(script, str)
        and "\n" not in script
        and (script.endswith((".mjs", ".js", ".cjs")))
    ):
        path = Path(script)
    if path is not None:
        path = path if path.is_absolute() else JS_DIR / path
        command = [node, str(path), *map(str, args)]
    else:
        source = str(script)
        command = [node, "--input-type=module", "-", *map(str, args)]
    process = _popen(command, env)
    return node_result(process, timeout, source.encode() if source else None)


def start_node(script: str, *args: object, env: dict[str, str] | None = None) -> Any:
    """Start a ``.mjs`` scenario of ``tests/js`` in the background (a gevent ``Popen``);
    read its result with :func:`node_result`."""
    return _popen([node_executable(), str(JS_DIR / script), *map(str, args)], env)


def _popen(command: list[str], env: dict[str, str] | None) -> Any:
    return subprocess.Popen(
        command,
        cwd=str(JS_DIR),
        env={**os.environ, **(env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def node_result(process: Any, timeout: float = 60, stdin: bytes | None = None) -> dict[str, Any]:
    """Wait (at most ``timeout`` seconds) for a node process and return its JSON result.

    :raises pytest.fail.Exception: no JSON object line on stdout, or a timeout.
    """
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(
            f"node timed out after {timeout} s\n--- stdout\n{out.decode()}"
            f"\n--- stderr\n{err.decode()}"
        )
    result = _last_json_object(out.decode())
    if result is None:
        pytest.fail(
            f"node printed no JSON result (exit {process.returncode})\n--- stdout\n"
            f"{out.decode()}\n--- stderr\n{err.decode()}"
        )
    return result
