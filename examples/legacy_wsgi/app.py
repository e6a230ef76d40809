"""Real-time notifications for the legacy order app, without changing its code.

    python examples/legacy_wsgi/app.py [--host 127.0.0.1] [--port 5000]

A WSGI middleware watches the legacy app's answers: when ``POST /orders`` succeeds (303),
every browser on ``/live`` hears ``order_created``. ``geventsio.WSGIApp`` puts Socket.IO
and the static files in front; every other request reaches the legacy app untouched.
"""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orders

import geventsio

HERE = Path(__file__).resolve().parent
sio = geventsio.Server()


def notify_on_success(legacy: Any) -> Any:
    """Pass every request to ``legacy``; after a successful order, tell the browsers."""

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        if (environ["REQUEST_METHOD"], environ["PATH_INFO"]) != ("POST", "/orders"):
            return legacy(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # the legacy app reads it again

        def watching_start_response(status: str, headers: list[Any], *exc_info: Any) -> Any:
            if status.startswith("303"):
                form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
                order = {"url": dict(headers).get("Location"), **form}
                sio.emit("order_created", order)
            return start_response(status, headers, *exc_info)

        return legacy(environ, watching_start_response)

    return middleware


application = geventsio.WSGIApp(
    sio,
    notify_on_success(orders.app),
    static_files={
        "/live": HERE / "live.html",
        "/socket.io.min.js": HERE / "node_modules/socket.io-client/dist/socket.io.min.js",
    },
)


def main() -> None:
    parser = argparse.ArgumentParser(description="legacy WSGI app with live notifications")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(f"Orders on http://{args.host}:{args.port}/, live on /live", flush=True)
    geventsio.serve(application, args.host, args.port)


if __name__ == "__main__":
    main()
