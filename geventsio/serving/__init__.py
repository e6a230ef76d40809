"""Running geventsio on gevent's pywsgi: a connection handler and a runner."""

from geventsio.serving.handler import GeventsioHandler
from geventsio.serving.monitor import BlockingMonitor
from geventsio.serving.patching import check_patching
from geventsio.serving.runner import make_server, run_server, serve, shutdown

__all__ = [
    "BlockingMonitor",
    "GeventsioHandler",
    "check_patching",
    "make_server",
    "run_server",
    "serve",
    "shutdown",
]
