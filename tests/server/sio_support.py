"""Socket.IO test helpers: a live geventsio.Server, a lifecycle recorder, a raw Socket.IO
client over a real WebSocket, and the runner of ``tests/js/sio_plan.mjs``.

``tests/server/conftest.py`` and ``tests/e2e/test_socketio_client.py`` both build their
``sio_server`` fixture on :class:`SioServerFactory`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

import geventsio
from geventsio.wsgi import WSGIApplication
from tests.support import LiveServer, WsClient, open_websocket, wait_until
from tests.support.node import run_node


@dataclass
class SioApp:
    """A geventsio.Server served on 127.0.0.1:0 by the ``serve_app`` fixture."""

    sio: geventsio.Server
    live: LiveServer

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.live.url

    def raw(self, **query: str) -> RawSio:
        """A raw Socket.IO client on a new WebSocket session (see :class:`RawSio`)."""
        ws, open_data = open_websocket(self.live, **query)
        return RawSio(ws, open_data)

    def plan(
        self,
        *steps: dict[str, Any],
        transports: str = "websocket",
        guard: float = 20.0,
        parser: str = "json",
    ) -> dict[str, Any]:
        """Run ``sio_plan.mjs`` against this server and return its report (asserting ok);
        ``parser="msgpack"``: the clients use socket.io-msgpack-parser."""
        return run_plan(self.url, list(steps), transports=transports, guard=guard, parser=parser)


class SioServerFactory:
    """``sio_server(legacy_app=None, **options) -> SioApp``: a ``geventsio.Server(**options)``
    served (inside ``geventsio.WSGIApp(sio, legacy_app)``) by ``serve_app``, so that the
    leak check covers it. Handlers may be registered before or after: nothing connects
    until the test opens a client."""

    def __init__(self, serve_app: Callable[..., LiveServer]) -> None:
        self.serve_app = serve_app

    def __call__(self, legacy_app: WSGIApplication | None = None, **options: Any) -> SioApp:
        sio = geventsio.Server(**options)
        live = self.serve_app(geventsio.WSGIApp(sio, legacy_app), engine=sio.engine)
        return SioApp(sio, live)


@dataclass
class Lifecycle:
    """What one namespace saw connect and disconnect (filled by :func:`record`)."""

    connected: list[geventsio.Socket] = field(default_factory=list)
    disconnects: list[tuple[str, str]] = field(default_factory=list)
    disconnecting_rooms: dict[str, set[str]] = field(default_factory=dict)

    def reason_of(self, socket_id: str, timeout: float = 5.0) -> str:
        """Wait for the disconnect of ``socket_id`` and return its reason."""
        found = wait_until(
            lambda: [r for s, r in self.disconnects if s == socket_id],
            timeout,
            f"the disconnect of {socket_id} (have {self.disconnects})",
        )
        assert len(found) == 1, f"{socket_id} disconnected {len(found)} times: {found}"
        return found[0]


def record(namespace: Any) -> Lifecycle:
    """Register connect/disconnecting/disconnect handlers on a namespace (or parent) that
    record into a :class:`Lifecycle`; a test adds its own connect logic with ``use``."""
    lifecycle = Lifecycle()

    @namespace.on("connect")
    def on_connect(socket: geventsio.Socket) -> None:
        lifecycle.connected.append(socket)

    @namespace.on("disconnecting")
    def on_disconnecting(socket: geventsio.Socket, reason: geventsio.DisconnectReason) -> None:
        lifecycle.disconnecting_rooms[socket.id] = set(socket.rooms)

    @namespace.on("disconnect")
    def on_disconnect(socket: geventsio.Socket, reason: geventsio.DisconnectReason) -> None:
        assert isinstance(reason, geventsio.DisconnectReason)
        lifecycle.disconnects.append((socket.id, str(reason)))

    return lifecycle


def run_plan(
    url: str,
    steps: list[dict[str, Any]],
    *,
    transports: str = "websocket",
    guard: float = 20.0,
    check: bool = True,
    parser: str = "json",
    script: str = "sio_plan.mjs",
) -> dict[str, Any]:
    """Run a plan of ``tests/js/sio_plan.mjs`` (see its header; ``script``:
    ``sio_v2_plan.mjs`` for socket.io-client 2.x) and return the report."""
    plan = {
        "url": url,
        "transports": transports,
        "guardMs": int(guard * 1000),
        "parser": parser,
        "steps": steps,
    }
    result = run_node(script, json.dumps(plan), timeout=guard + 15)
    if check:
        assert result["ok"], json.dumps(result, indent=1)
    return result


def events(report: dict[str, Any], client: str, name: str | None = None) -> list[list[Any]]:
    """The events a plan client received (``[name, *args]``), or the args of one name."""
    received = report["clients"][client]["events"]
    if name is None:
        return received
    return [event[1:] for event in received if event[0] == name]


def bin_(data: bytes) -> dict[str, str]:
    """A binary value for a plan (sent by the client as a Buffer)."""
    return {"$bin": data.hex()}


class RawSio:
    """A hand-driven Socket.IO client on a raw Engine.IO WebSocket session.

    It does not answer pings: with the default ping interval (25 s) none arrives during
    a test; a ping-timeout test relies on it staying silent.
    """

    def __init__(self, ws: WsClient, open_data: dict[str, Any]) -> None:
        self.ws = ws
        self.open_data = open_data

    @property
    def engine_sid(self) -> str:
        """The Engine.IO session id."""
        return str(self.open_data["sid"])

    def send(self, message: str | bytes) -> None:
        """Send one Engine.IO message (text gets the ``4`` MESSAGE prefix; bytes as is)."""
        self.ws.send("4" + message if isinstance(message, str) else message)

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next Socket.IO packet text (``4`` prefix removed) or binary attachment."""
        message = self.ws.recv(timeout)
        if isinstance(message, str):
            assert message.startswith("4"), f"expected an Engine.IO MESSAGE, got {message!r}"
            return message[1:]
        return message

    def connect(self, namespace: str = "/", auth: Any = None) -> str:
        """Join a namespace; return the socket id from the CONNECT acknowledgement."""
        prefix = "0" if namespace == "/" else f"0{namespace},"
        self.send(prefix + (orjson.dumps(auth).decode() if auth is not None else ""))
        answer = self.recv()
        assert isinstance(answer, str) and answer.startswith(prefix + "{"), answer
        return str(orjson.loads(answer[len(prefix) :])["sid"])

    def emit(self, event: str, *args: Any, ack_id: int | None = None) -> None:
        """Send an EVENT in ``"/"`` (JSON arguments only)."""
        self.send(
            "2" + ("" if ack_id is None else str(ack_id)) + orjson.dumps([event, *args]).decode()
        )

    def closed(self, timeout: float = 5.0) -> bool:
        """Wait until the server ends the WebSocket (close frame or TCP close), then
        close this end as a browser would (answering the close frame)."""
        self.ws.wait_closed(timeout)
        self.ws.close()
        return True


class Step:
    """Builders of ``sio_plan.mjs`` steps, so that a plan reads as a script."""

    @staticmethod
    def connect(
        name: str,
        nsp: str = "/",
        *,
        wait: str = "connect",
        answer: dict[str, Any] | None = None,
        **opts: Any,
    ) -> dict[str, Any]:
        """Open client ``name`` on ``nsp`` (``opts`` are socket.io-client options)."""
        return {
            "op": "connect",
            "as": name,
            "nsp": nsp,
            "wait": wait,
            "answer": answer or {},
            "opts": opts,
        }

    @staticmethod
    def emit(
        name: str,
        event: str,
        *args: Any,
        ack: bool = False,
        timeout: int | None = None,
        save: str | None = None,
        background: bool = False,
        promise: bool = False,
    ) -> dict[str, Any]:
        """Emit from client ``name``; with ``ack``, wait for (and save) the answer."""
        step: dict[str, Any] = {
            "op": "emit",
            "as": name,
            "event": event,
            "args": list(args),
            "ack": ack,
            "background": background,
            "promise": promise,
        }
        if timeout is not None:
            step["timeout"] = timeout
        if save is not None:
            step["save"] = save
        return step

    @staticmethod
    def call(
        name: str, event: str, *args: Any, save: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Emit with an ack and wait for it."""
        return Step.emit(name, event, *args, ack=True, save=save or event, **kwargs)

    @staticmethod
    def op(op: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
        """Any other step: ``waitEvent``, ``waitDisconnect``, ``disconnect``, ``fetch``..."""
        step: dict[str, Any] = {"op": op, **fields}
        if name is not None:
            step["as"] = name
        return step

    @staticmethod
    def wait_event(name: str, event: str, count: int = 1) -> dict[str, Any]:
        """Wait until client ``name`` has received ``count`` ``event`` events."""
        return {"op": "waitEvent", "as": name, "event": event, "count": count}
