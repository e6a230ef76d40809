"""Serve ``tests.deploy.sio_app:app`` as many users do: gevent's pywsgi with
gevent-websocket's ``WebSocketHandler``, nothing of geventsio's serving code.

    python -m tests.deploy.pywsgi_server PORT
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from gevent import pywsgi  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

from tests.deploy.sio_app import app  # noqa: E402


def main() -> None:
    server = pywsgi.WSGIServer(
        ("127.0.0.1", int(sys.argv[1])), app, handler_class=WebSocketHandler, log=None
    )
    server.start()
    print(f"serving on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
