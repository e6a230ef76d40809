"""Serve ``tests.deploy.sio_app:app`` on gevent's pywsgi with a handler that is not
geventsio's, and nothing monkey-patched (the application needs none):

    python -m tests.deploy.pywsgi_server PORT gevent-websocket   # its WebSocketHandler
    python -m tests.deploy.pywsgi_server PORT pywsgi             # pywsgi's own handler
"""

from __future__ import annotations

import sys

from gevent import pywsgi
from geventwebsocket.handler import WebSocketHandler

from tests.deploy.sio_app import app

HANDLERS = {"gevent-websocket": WebSocketHandler, "pywsgi": pywsgi.WSGIHandler}


def main() -> None:
    port, handler = int(sys.argv[1]), HANDLERS[sys.argv[2]]
    server = pywsgi.WSGIServer(("127.0.0.1", port), app, handler_class=handler, log=None)
    server.start()
    print(f"serving on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
