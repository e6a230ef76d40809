"""Builds geventsio (metadata in setup.cfg), compiling its hot path with mypyc on request.

``GEVENTSIO_COMPILE=1 pip install .`` (or ``pip wheel .``) compiles the modules that every
message goes through to C extensions with mypyc, the compiler mypy ships: the same source,
type-checked by ``mypy --strict``, runs about 1.3x to 2x as fast (bench/README.md). Without the
variable the package is pure Python and behaves the same. ``scripts/compile.sh`` builds the
extensions in place, next to their sources, for the test suite and the demo.
"""

from __future__ import annotations

import os

from setuptools import setup

#: The compiled modules: the Socket.IO and Engine.IO codecs, the WebSocket framing, the
#: Engine.IO session and its transports, the Socket.IO connection, sockets and namespaces, and
#: the in-memory adapter. Every one is also tested as pure Python (scripts/test.sh).
COMPILED_MODULES = [
    "geventsio/protocol/binary.py",
    "geventsio/protocol/engineio.py",
    "geventsio/protocol/engineio_v3.py",
    "geventsio/protocol/events.py",
    "geventsio/protocol/heartbeat.py",
    "geventsio/protocol/outgoing.py",
    "geventsio/protocol/serializers.py",
    "geventsio/protocol/session.py",
    "geventsio/protocol/session_v3.py",
    "geventsio/protocol/socketio.py",
    "geventsio/protocol/websocket.py",
    "geventsio/engine/cors.py",
    "geventsio/engine/eio3.py",
    "geventsio/engine/http.py",
    "geventsio/engine/lending.py",
    "geventsio/engine/polling.py",
    "geventsio/engine/server.py",
    "geventsio/engine/socket.py",
    "geventsio/engine/websocket.py",
    "geventsio/engine/writer.py",
    "geventsio/serving/lean.py",
    "geventsio/server/acks.py",
    "geventsio/server/broadcast.py",
    "geventsio/server/connection.py",
    "geventsio/server/handlers.py",
    "geventsio/server/namespace.py",
    "geventsio/adapters/base.py",
    "geventsio/adapters/memory.py",
]

#: flask_ext's per-event path, compiled apart from the core (the core knows nothing of it).
FLASK_EXT_COMPILED = ["flask_ext/fastpath.py"]


def _extensions() -> list[object]:
    if os.environ.get("GEVENTSIO_COMPILE", "0") != "1":
        return []
    from mypyc.build import mypycify

    # One group, so that calls between the modules are C calls; its shared library lives
    # inside the package (geventsio/native__mypyc...so), not beside it in site-packages.
    core = mypycify(COMPILED_MODULES, opt_level="3", group_name="geventsio.native")
    # flask_ext's event path in a group of its own (in the core's, mypy stumbles on an
    # import cycle through geventsio.client).
    return core + mypycify(FLASK_EXT_COMPILED, opt_level="3")


setup(ext_modules=_extensions())
