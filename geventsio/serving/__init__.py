"""Running geventsio on gevent's pywsgi: a connection handler and a runner."""

from geventsio.serving.handler import GeventsioHandler
from geventsio.serving.runner import make_server, serve

__all__ = ["GeventsioHandler", "make_server", "serve"]
