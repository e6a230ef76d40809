"""What both servers under test share: the command line, limits, readiness, profiling.

Not a library module: bench/run.py starts ``geventsio_server.py`` or
``pysocketio_server.py`` as a process of its own. Each server binds 127.0.0.1 on the
port given (0: any free port), prints ``PORT <n>`` once it accepts connections, and
serves until SIGTERM or SIGINT.

The application is the same for both (see each server's handlers):

* ``echo(data)`` returns ``data`` as the acknowledgement (text or binary);
* ``join(room)`` joins ``room`` and acknowledges ``"ok"``;
* ``bcast(room, data)`` emits ``msg(data)`` to everyone in ``room`` (the sender too)
  and acknowledges ``"ok"``.

Profiling inside the server process (geventsio only): ``BENCH_PROFILE=cprofile:PATH``
runs the server under cProfile and writes its stats to PATH on exit. A sampling
profiler (py-spy) is attached from outside by ``bench/run.py --profile``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    return parser.parse_args(argv)


def raise_fd_limit() -> None:
    """Allow as many open files as the hard limit does (5,000 idle connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def announce(port: int) -> None:
    """Tell bench/run.py the server is accepting connections."""
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()


class Profiler:
    """cProfile around the serving loop when ``BENCH_PROFILE=cprofile:PATH`` is set."""

    def __init__(self) -> None:
        spec = os.environ.get("BENCH_PROFILE", "")
        self._path = spec.partition(":")[2] if spec.startswith("cprofile:") else ""
        self._profile: Any = None

    def start(self) -> None:
        if self._path:
            import cProfile

            self._profile = cProfile.Profile()
            self._profile.enable()

    def stop(self) -> None:
        if self._profile is not None:
            self._profile.disable()
            self._profile.dump_stats(self._path)
            self._profile = None


def serve_until_signal(server: Any) -> None:
    """Start a gevent WSGI server, announce its port and serve until SIGTERM or SIGINT
    (under cProfile when ``BENCH_PROFILE`` asks). The imports are here: the
    python-socketio server imports this module before it patches."""
    import signal

    import gevent
    import gevent.event

    stopping = gevent.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stopping.set)
    profiler = Profiler()
    server.start()
    announce(server.server_port)
    profiler.start()
    try:
        stopping.wait()
    finally:
        profiler.stop()
    server.stop(timeout=1)


def serve_on_geventsio_runner(app: Any) -> None:
    """Serve the WSGI ``app`` on geventsio's runner (pywsgi with geventsio's handler);
    what the geventsio and flask_ext servers share."""
    from geventsio.serving import make_server

    args = parse_args()
    raise_fd_limit()
    serve_until_signal(make_server(app, args.host, args.port))


def serve_on_gevent_websocket_handler(app: Any) -> None:
    """Serve the WSGI ``app`` on pywsgi with gevent-websocket's ``WebSocketHandler``
    (python-socketio's documented gevent set-up, and a serving path of geventsio's)."""
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    args = parse_args()
    raise_fd_limit()
    address = (args.host, args.port)
    serve_until_signal(pywsgi.WSGIServer(address, app, handler_class=WebSocketHandler, log=None))
