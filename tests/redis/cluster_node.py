"""One geventsio server of a Redis cluster, driven by the tests through stdin and stdout.

    python tests/redis/cluster_node.py --redis URL --key KEY --name A [--patch]

It listens on 127.0.0.1 (a free port), prints ``{"port": N, "uid": ...}``, then reads one
JSON command per line on stdin, ``{"id": 1, "cmd": "emit", ...}``, and answers each with
``{"id": 1, "result": ...}`` or ``{"id": 1, "error": "..."}``. Logs go to stderr. The
process is NOT monkey-patched (the adapter must cooperate without it) unless ``--patch``.

Clients connect with ``auth = {"name": ..., "rooms": [...]}``: the socket joins those
rooms and ``socket.data`` becomes ``{"name": ...}``. Binary travels in JSON as
``{"$bin": "<hex>"}``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

if "--patch" in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import gevent
import orjson
from gevent.fileobject import FileObjectPosix
from gevent.lock import BoundedSemaphore

import geventsio
from geventsio.adapters.redis import RedisAdapter, RemoteSocket, redis_adapter
from geventsio.serving import make_server

NAMESPACES = ("/", "/admin")


def to_json(value: Any) -> Any:
    """Bytes become ``{"$bin": hex}`` (anywhere inside ``value``)."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(value)
    return value


def from_json(value: Any) -> Any:
    """``{"$bin": hex}`` becomes bytes (anywhere inside ``value``)."""
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {key: from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json(item) for item in value]
    return value


class Node:
    """The server and the commands the tests send it."""

    def __init__(self, name: str, redis_url: str, key: str, reconnect: float) -> None:
        self.name = name
        self.factory = redis_adapter(
            redis_url,
            key=key,
            requests_timeout=2.0,
            reconnect_delay=0.05,
            max_reconnect_delay=reconnect,
            heartbeat=1.0,
        )
        self.sio = geventsio.Server(adapter=self.factory, cors_allowed_origins="*")
        self.server_side_events: list[Any] = []
        for namespace in NAMESPACES:
            self._setup(self.sio.of(namespace))

    def _setup(self, namespace: Any) -> None:
        @namespace.on("connect")
        def connect(socket: geventsio.Socket, auth: Any) -> None:
            auth = auth if isinstance(auth, dict) else {}
            socket.data["name"] = auth.get("name")
            socket.join(auth.get("rooms", []))

        @namespace.on("join")
        def join(socket: geventsio.Socket, room: str) -> str:
            socket.join(room)
            return "ok"

        adapter: RedisAdapter = namespace.adapter

        @adapter.on_server_side("whoami")
        def whoami(*args: Any) -> Any:
            return {"node": self.name, "args": to_json(list(args))}

        @adapter.on_server_side("record")
        def record(*args: Any) -> None:
            self.server_side_events.append([namespace.name, *to_json(list(args))])

    # -- commands ------------------------------------------------------------------------

    def operator(self, command: dict[str, Any]) -> Any:
        operator = self.sio.of(command.get("namespace", "/"))
        if command.get("to"):
            operator = operator.to(command["to"])
        if command.get("except"):
            operator = operator.except_(command["except"])
        if command.get("volatile"):
            operator = operator.volatile
        if command.get("local"):
            operator = operator.local
        return operator

    def cmd_emit(self, command: dict[str, Any]) -> None:
        self.operator(command).emit(command["event"], *from_json(command.get("args", [])))

    def cmd_call(self, command: dict[str, Any]) -> Any:
        operator = self.operator(command)
        try:
            responses = operator.call(
                command["event"], *from_json(command.get("args", [])), timeout=command["timeout"]
            )
        except geventsio.AckTimeout as exc:
            return {"timeout": True, "responses": to_json(exc.responses)}  # type: ignore[attr-defined]
        return {"timeout": False, "responses": to_json(responses)}

    def cmd_fetch(self, command: dict[str, Any]) -> Any:
        return [
            {
                "id": socket.id,
                "rooms": sorted(socket.rooms),
                "data": to_json(socket.data),
                "remote": isinstance(socket, RemoteSocket),
                "query": dict(
                    socket.handshake["query"]
                    if isinstance(socket, RemoteSocket)
                    else socket.handshake.query
                ),
            }
            for socket in self.operator(command).fetch_sockets()
        ]

    def _remote(self, command: dict[str, Any]) -> RemoteSocket:
        for socket in self.sio.of(command.get("namespace", "/")).fetch_sockets():
            if socket.id == command["socket_id"] and isinstance(socket, RemoteSocket):
                return socket
        raise LookupError(f"no remote socket {command['socket_id']}")

    def cmd_remote(self, command: dict[str, Any]) -> Any:
        socket = self._remote(command)
        action = command["action"]
        if action == "emit":
            socket.emit(command["event"], *from_json(command.get("args", [])))
        elif action == "call":
            return to_json(socket.call(command["event"], *from_json(command.get("args", []))))
        elif action == "join":
            socket.join(command["room"])
        elif action == "leave":
            socket.leave(command["room"])
        elif action == "disconnect":
            socket.disconnect()
        return None

    def cmd_sockets_join(self, command: dict[str, Any]) -> None:
        self.operator(command).sockets_join(command["rooms"])

    def cmd_sockets_leave(self, command: dict[str, Any]) -> None:
        self.operator(command).sockets_leave(command["rooms"])

    def cmd_disconnect(self, command: dict[str, Any]) -> None:
        self.operator(command).disconnect_sockets(command.get("close", False))

    def cmd_server_side_emit(self, command: dict[str, Any]) -> int:
        adapter = self.sio.of(command.get("namespace", "/")).adapter
        return int(adapter.server_side_emit(command["event"], from_json(command.get("args", []))))

    def cmd_server_side_call(self, command: dict[str, Any]) -> Any:
        adapter = self.sio.of(command.get("namespace", "/")).adapter
        try:
            replies = adapter.server_side_call(
                command["event"],
                *from_json(command.get("args", [])),
                timeout=command.get("timeout"),
            )
        except geventsio.AckTimeout as exc:
            return {"timeout": True, "replies": exc.responses}  # type: ignore[attr-defined]
        return {"timeout": False, "replies": replies}

    def cmd_state(self, command: dict[str, Any]) -> Any:
        return {
            "up": self.factory.link.up,
            "sockets": {
                name: {
                    socket_id: sorted(socket.rooms)
                    for socket_id, socket in self.sio.of(name).sockets.items()
                }
                for name in NAMESPACES
            },
            "server_side_events": self.server_side_events,
        }


def serve_commands(node: Node, write: Callable[[dict[str, Any]], None]) -> None:
    """Read commands from stdin until it closes; answer each in its own greenlet."""
    stdin = FileObjectPosix(sys.stdin.fileno(), "rb", close=False)

    def run(command: dict[str, Any]) -> None:
        handler = getattr(node, "cmd_" + command["cmd"])
        try:
            write({"id": command["id"], "result": handler(command)})
        except Exception as exc:
            logging.getLogger("cluster_node").exception("command %s failed", command["cmd"])
            write({"id": command["id"], "error": f"{type(exc).__name__}: {exc}"})

    for line in stdin:
        if line.strip():
            gevent.spawn(run, orjson.loads(line))


def stdout_writer() -> Callable[[dict[str, Any]], None]:
    """Write one JSON line per message on stdout, whole even from several greenlets."""
    lock = BoundedSemaphore()
    stdout = FileObjectPosix(sys.stdout.fileno(), "wb", close=False)

    def write(message: dict[str, Any]) -> None:
        with lock:
            stdout.write(orjson.dumps(message) + b"\n")
            stdout.flush()

    return write


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--name", default="node")
    parser.add_argument("--reconnect", type=float, default=0.3, help="max reconnect delay")
    parser.add_argument("--patch", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    node = Node(args.name, args.redis, args.key, args.reconnect)
    server = make_server(geventsio.WSGIApp(node.sio), "127.0.0.1", 0)
    server.start()
    write = stdout_writer()
    write({"port": server.server_port, "uid": node.factory.link.uid})
    serve_commands(node, write)
    node.sio.shutdown()
    server.stop(timeout=1)
    node.factory.close()


if __name__ == "__main__":
    main()
