"""One geventsio server on the Redis Streams adapter with connection state recovery,
driven by the tests through stdin and stdout (as ``cluster_node.py``).

    python tests/redis/streams_node.py --redis URL --stream NAME --name A

Prints ``{"port": N, "uid": ...}``, then answers JSON commands: ``emit {to?, event,
args}``, ``sockets`` (``[{id, rooms, recovered, data}]``), ``shutdown`` (graceful, as on
SIGTERM: sessions kept, connections closed, new ones refused). A new socket joins
"news" and gets ``data = {"node": NAME}``; each connection is reported as
``{"connection": {id, recovered}}``; ``fetch`` (every socket id of the cluster),
``server_side_call`` (the others' answers to "whoami"), ``call {event}`` (a broadcast
with acknowledgements: the sorted answers). Each disconnect as ``{"disconnect": {id, reason}}``
and each ``seen`` event of a client as ``{"seen": [id, n]}``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from cluster_node import serve_commands, stdout_writer

import geventsio
from geventsio.adapters.redis_streams import redis_streams_adapter
from geventsio.serving import make_server


class StreamsNode:
    """The server and the commands the tests send it."""

    def __init__(self, name: str, redis_url: str, stream: str, write: Any) -> None:
        self.factory = redis_streams_adapter(
            redis_url,
            stream_name=stream,
            # The test's own request channels too (the default, "socket.io", is shared by
            # every cluster on the Redis: two test runs at once would answer each other).
            channel_prefix=stream,
            block_time=1.0,
            heartbeat_interval=1.0,
        )
        self.sio = geventsio.Server(
            adapter=self.factory,
            connection_state_recovery={"max_disconnection_duration": 60},
            cors_allowed_origins="*",
        )

        @self.sio.on("connect")
        def connect(socket: geventsio.Socket) -> None:
            if not socket.recovered:
                socket.join("news")
                socket.data["node"] = name
            write({"connection": {"id": socket.id, "recovered": socket.recovered}})

        self.sio.on_server_side("whoami", lambda *args: {"node": name})

        @self.sio.on("seen")
        def seen(socket: geventsio.Socket, n: Any, *offset: Any) -> None:
            write({"seen": [socket.id, n]})

        @self.sio.on("disconnect")
        def disconnect(socket: geventsio.Socket, reason: str) -> None:
            write({"disconnect": {"id": socket.id, "reason": str(reason)}})

    def cmd_fetch(self, command: dict[str, Any]) -> Any:
        return sorted(s.id for s in self.sio.fetch_sockets())

    def cmd_server_side_call(self, command: dict[str, Any]) -> Any:
        return self.sio.server_side_call("whoami", timeout=5)

    def cmd_call(self, command: dict[str, Any]) -> Any:
        return sorted(self.sio.call(command["event"], timeout=5))

    def cmd_emit(self, command: dict[str, Any]) -> None:
        operator = self.sio.of("/")
        if command.get("to"):
            operator = operator.to(command["to"])
        operator.emit(command["event"], *command.get("args", []))

    def cmd_sockets(self, command: dict[str, Any]) -> Any:
        return [
            {"id": s.id, "rooms": sorted(s.rooms), "recovered": s.recovered, "data": s.data}
            for s in self.sio.of("/").sockets.values()
        ]

    def cmd_shutdown(self, command: dict[str, Any]) -> None:
        self.sio.shutdown(refuse_new=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--name", default="node")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    write = stdout_writer()
    node = StreamsNode(args.name, args.redis, args.stream, write)
    server = make_server(geventsio.WSGIApp(node.sio), "127.0.0.1", 0)
    server.start()
    write({"port": server.server_port, "uid": node.factory.link.uid})  # type: ignore[attr-defined]
    serve_commands(node, write)  # type: ignore[arg-type]
    node.sio.shutdown()
    server.stop(timeout=1)


if __name__ == "__main__":
    main()
