"""A server for socket.io-client 2.x in the browser (``allow_eio3=True``), run by
``test_eio3.py`` in a child process: ``/`` is an empty page that loads the 2.x bundle
from ``tests/js/node_modules``, and the ``echo`` event acknowledges its arguments and
emits them back as an ``echoed`` event.

    python tests/browser/eio3_server.py PORT
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import geventsio

BUNDLE = (
    Path(__file__).resolve().parents[1] / "js/node_modules/socket.io-client-v2/dist/socket.io.js"
)
PAGE = b'<!doctype html><html><head><script src="/socket.io-v2.js"></script></head></html>'


def files(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The page and the bundle."""
    if environ.get("PATH_INFO") == "/socket.io-v2.js":
        body, kind = BUNDLE.read_bytes(), "application/javascript"
    else:
        body, kind = PAGE, "text/html"
    start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sio = geventsio.Server(allow_eio3=True)

    @sio.on("echo")
    def echo(socket: geventsio.Socket, *args: Any) -> tuple[Any, ...]:
        socket.emit("echoed", *args)
        return args

    geventsio.serve(geventsio.WSGIApp(sio, files), "127.0.0.1", int(sys.argv[1]))


if __name__ == "__main__":
    main()
