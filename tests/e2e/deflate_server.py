"""An Engine.IO echo server with permessage-deflate, in a process of its own (so that a
test can watch its memory):

    python -m tests.e2e.deflate_server '{"threshold": 1024}'   # or 'true', 'false'

Prints ``serving on http://127.0.0.1:PORT`` once listening.
"""

from __future__ import annotations

import json
import sys

from geventsio.engine.server import EngineServer
from geventsio.options import EngineOptions
from geventsio.serving import make_server
from geventsio.wsgi import WSGIApp
from tests.support.server import RecordingEcho


def main() -> None:
    handler = RecordingEcho()
    handler.messages = _Forgetful()  # a long run must not keep every message
    engine = EngineServer(handler, EngineOptions(per_message_deflate=json.loads(sys.argv[1])))
    server = make_server(WSGIApp(engine), "127.0.0.1", 0)
    server.start()
    print(f"serving on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


class _Forgetful(list):  # type: ignore[type-arg]
    def append(self, item: object) -> None:
        pass


if __name__ == "__main__":
    main()
