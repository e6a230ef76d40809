"""Errors Flask-SocketIO users rely on: TypeError at the emit, and a one-line message
when the Redis extra is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from flask import Flask

import geventsio
from flask_ext import SocketIO, emit


def test_unserialisable_data_is_a_type_error_at_the_emit(app: Flask, socketio: SocketIO) -> None:
    raised: list[BaseException] = []

    @socketio.on("bad")
    def bad() -> None:
        try:
            emit("reply", object())
        except TypeError as exc:
            raised.append(exc)
            raise

    client = socketio.test_client(app)
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        client.emit("bad")
    assert isinstance(raised[0], geventsio.NotSerialisable)
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        socketio.emit("reply", {1, 2})
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        client.emit("anything", object())
    assert client.is_connected()


@pytest.mark.parametrize("missing", ["msgpack", "redis"])
def test_a_message_queue_without_the_redis_extra_fails_with_one_line(missing: str) -> None:
    script = (
        f"import sys; sys.modules[{missing!r}] = None\n"
        "from flask import Flask\n"
        "from flask_ext import SocketIO\n"
        "SocketIO(Flask(__name__), message_queue='redis://127.0.0.1:1')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last == (
        f"ModuleNotFoundError: geventsio's Redis support needs the redis and msgpack "
        f"packages ({missing} is not installed): pip install geventsio[redis]"
    )
    assert "During handling" not in run.stderr
