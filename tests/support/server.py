"""Live servers for tests: a WSGI app on 127.0.0.1:0 in the test process, its clients,
and the leak check run when it stops."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

import gevent
from gevent import pywsgi

from geventsio._types import DisconnectReason, EngineSid
from geventsio.engine.server import EngineServer
from geventsio.engine.socket import EngineSocket
from geventsio.serving import make_server
from tests.support.engineio import PollingClient
from tests.support.http import DEFAULT_TIMEOUT, Headers, HttpClient
from tests.support.waiting import wait_until
from tests.support.ws import WsClient

#: How long teardown waits for sessions and greenlets to be gone.
LEAK_TIMEOUT = 5.0


class RecordingEcho:
    """An :class:`EngineHandler` that echoes every message and records what happened.

    :param echo: send each message back (else only record it).
    """

    def __init__(self, *, echo: bool = True) -> None:
        self.echo = echo
        self.connected: list[EngineSocket] = []
        self.messages: list[tuple[EngineSid, str | bytes]] = []
        self.closed: dict[EngineSid, DisconnectReason] = {}

    def on_engine_connect(self, socket: EngineSocket) -> None:
        self.connected.append(socket)

    def on_engine_message(self, socket: EngineSocket, data: str | bytes) -> None:
        self.messages.append((socket.sid, data))
        if self.echo:
            socket.send(data)

    def on_engine_close(self, socket: EngineSocket, reason: DisconnectReason) -> None:
        self.closed[socket.sid] = reason

    def socket(self, sid: str | None) -> EngineSocket:
        """The session with this sid (it must have connected)."""
        for socket in self.connected:
            if socket.sid == sid:
                return socket
        raise AssertionError(f"no session {sid!r} connected")

    def messages_of(self, sid: str | None) -> list[str | bytes]:
        """The messages received from session ``sid``, in order."""
        return [data for s, data in self.messages if s == sid]


def live_greenlets() -> list[gevent.Greenlet]:
    """Every gevent Greenlet object that has not finished."""
    return [obj for obj in gc.get_objects() if isinstance(obj, gevent.Greenlet) and not obj.dead]


def describe_greenlet(greenlet: gevent.Greenlet) -> str:
    """The function a greenlet runs, for a leak report."""
    run = getattr(greenlet, "_run", None)
    target = getattr(run, "__self__", None)
    name = getattr(run, "__qualname__", repr(run))
    module = getattr(run, "__module__", "?")
    return f"{module}.{name}" + (f" of {type(target).__name__}" if target is not None else "")


class LiveServer:
    """A started WSGI server on 127.0.0.1 and the clients a test opened on it.

    :param app: the WSGI application.
    :param engine: the Engine.IO server inside ``app`` (checked for leftover sessions).
    :param handler: the engine's handler (a :class:`RecordingEcho` when the fixture made it).
    :param handler_class: the pywsgi handler; None for geventsio's (via ``make_server``).
    """

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        engine: EngineServer | None = None,
        handler: Any = None,
        handler_class: type | None = None,
    ) -> None:
        self.app = app
        self.engine = engine
        self.handler = handler
        if handler_class is None:
            self.wsgi_server = make_server(app, "127.0.0.1", 0)
        else:
            self.wsgi_server = pywsgi.WSGIServer(
                ("127.0.0.1", 0),
                app,
                handler_class=handler_class,
                log=None,
                error_log=logging.getLogger("tests.wsgi"),
            )
        self.wsgi_server.start()
        self.host = "127.0.0.1"
        self.port: int = self.wsgi_server.server_port
        self._clients: list[HttpClient] = []
        self._polling: list[PollingClient] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def path(self) -> str:
        """The Engine.IO path (``/socket.io/`` unless configured)."""
        return self.engine.options.path if self.engine is not None else "/socket.io/"

    @property
    def session_count(self) -> int:
        """How many sessions the engine knows."""
        assert self.engine is not None
        return len(self.engine.sessions)

    # -- clients (closed at teardown) --------------------------------------------------

    def http(self, *, timeout: float = DEFAULT_TIMEOUT, rcvbuf: int | None = None) -> HttpClient:
        """A new raw HTTP connection to this server."""
        client = HttpClient(self.host, self.port, timeout=timeout, rcvbuf=rcvbuf)
        self._clients.append(client)
        return client

    def websocket(
        self,
        resource: str,
        *,
        headers: Headers = (),
        timeout: float = DEFAULT_TIMEOUT,
        rcvbuf: int | None = None,
        pipelined: bytes = b"",
    ) -> WsClient:
        """A raw WebSocket to ``resource`` (see :meth:`WsClient.connect`)."""
        ws = WsClient.connect(
            self.host,
            self.port,
            resource,
            headers=headers,
            timeout=timeout,
            rcvbuf=rcvbuf,
            pipelined=pipelined,
        )
        self._clients.append(ws.http)
        return ws

    def polling(
        self, *, headers: Headers = (), query: dict[str, str] | None = None
    ) -> PollingClient:
        """A new (not yet opened) Engine.IO polling client."""
        client = PollingClient(self, headers=headers, query=query)
        self._polling.append(client)
        return client

    def wait_sessions(self, count: int, timeout: float = 5.0) -> None:
        """Wait until the engine holds exactly ``count`` sessions."""
        wait_until(
            lambda: self.session_count == count,
            timeout,
            f"{count} sessions (have {self.session_count})",
        )

    # -- teardown ----------------------------------------------------------------------

    def stop(self) -> None:
        """Close the clients, every session and the server.

        ``close_all`` leaves a polling session with no GET waiting in the CLOSING state
        until a GET collects its CLOSE packet (or ping_timeout passes); a real client
        always has a GET waiting, so this collects those as such a client would.
        """
        for polling in self._polling:
            polling.drop()
        for client in self._clients:
            client.close()
        if self.engine is not None:
            self.engine.close_all(drain_timeout=1.0)
            self._collect_closing_sessions()
        self.wsgi_server.stop(timeout=1.0)

    def _collect_closing_sessions(self) -> None:
        assert self.engine is not None
        for sid, session in list(self.engine.sessions.items()):
            if session.polling is not None and not session.polling.get_active:
                with HttpClient(self.host, self.port) as http:
                    http.get(f"{self.path}?EIO=4&transport=polling&sid={sid}")

    def check_no_leaks(self, greenlets_before: set[int], timeout: float = LEAK_TIMEOUT) -> None:
        """Assert that no session is left and every greenlet started since is finished."""
        if self.engine is not None:
            engine = self.engine
            wait_until(
                lambda: not engine.sessions,
                timeout,
                f"no sessions left (left: {list(engine.sessions)})",
            )

        def new_greenlets() -> list[gevent.Greenlet]:
            return [g for g in live_greenlets() if id(g) not in greenlets_before]

        try:
            wait_until(lambda: not new_greenlets(), timeout, "no greenlets left")
        except AssertionError:
            names = ", ".join(describe_greenlet(g) for g in new_greenlets())
            raise AssertionError(f"greenlets still running after teardown: {names}") from None
