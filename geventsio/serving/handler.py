"""A pywsgi handler that fixes what pywsgi gets wrong for real-time traffic.

* ``TCP_NODELAY`` on every connection: a reply written in two pieces (HTTP headers then
  body, a frame header then payload) otherwise waits ~40 ms for Nagle's algorithm.
* ``Connection: close`` is said in the response whenever the handler is going to close
  the connection (pywsgi closes silently; Node 19+ clients then report "socket hang up").
* The client's socket is exposed as ``geventsio.socket`` (so a long-poll can notice a
  client that gave up), and a WebSocket upgrade request may take the connection over
  through ``geventsio.takeover``: after the application returns, pywsgi writes nothing
  more and closes the connection.
"""

from __future__ import annotations

from typing import Any

from gevent import pywsgi

from geventsio.engine.tcp import set_nodelay
from geventsio.engine.websocket import TAKEOVER_KEY


class GeventsioHandler(pywsgi.WSGIHandler):  # type: ignore[misc]
    """gevent's WSGI handler with TCP_NODELAY, honest ``Connection: close`` and take-over."""

    def __init__(self, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
        set_nodelay(sock)
        super().__init__(sock, address, server, rfile)
        self.taken_over = False

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ["geventsio.socket"] = self.socket
        if self._connection_upgrade_requested():
            environ[TAKEOVER_KEY] = self._take_over
        return environ

    def _take_over(self) -> tuple[Any, Any]:
        """Hand the raw connection to the application (a WebSocket upgrade)."""
        self.taken_over = True
        self.close_connection = True
        return self.socket, self.rfile

    def run_application(self) -> None:
        self.taken_over = False
        if TAKEOVER_KEY not in self.environ:
            super().run_application()
            return
        result = self.application(self.environ, self.start_response)
        try:
            if not self.taken_over:
                self.result = result
                self.process_result()
            else:
                self.status = b"101"
                self._orig_status = "101 Switching Protocols"
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            self.result = None

    def process_result(self) -> None:
        # pywsgi writes the body of a HEAD response too, which a keep-alive client then
        # reads as the start of the next response: send the head only.
        if self.command != "HEAD":
            super().process_result()
        elif self.status and not self.headers_sent:
            self.write(b"")

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        write = super().start_response(status, headers, exc_info)
        if (
            self.close_connection
            and self.request_version == "HTTP/1.1"
            and not any(name.lower() == b"connection" for name, _ in self.response_headers)
        ):
            self.response_headers.append((b"Connection", b"close"))
        return write
