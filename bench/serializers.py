"""JSON against msgpack: the codec cost of an echo and of a broadcast, in one process.

    python bench/serializers.py [--rounds 5] [--number 20000]

Per message shape, it times (interleaved, ``rounds`` times, best of each kept) what the
server does per echo (decode the client's EVENT, encode the ACK) and per broadcast (encode
the EVENT once, then the Engine.IO forms every recipient's transport asks for), with each
serializer, and prints microseconds per operation, the msgpack/JSON ratio, the wire sizes
and ``/proc/loadavg``. This is the codec only, not sockets: end-to-end figures come from
``bench/run.py``, which does not drive msgpack clients yet.
"""

from __future__ import annotations

import argparse
import timeit
from pathlib import Path
from typing import Any

from geventsio.protocol.outgoing import encode_ack_for_engine, encode_for_engine
from geventsio.protocol.serializers import Serializer, serializer_named
from geventsio.protocol.socketio import DecoderLimits, Packet, PacketType

SHAPES: dict[str, list[Any]] = {
    "small text": ["echo", {"n": 1, "text": "hello"}],
    "1 KiB text": ["echo", {"items": [{"id": i, "name": f"item-{i}"} for i in range(40)]}],
    "16 KiB binary": ["echo", b"\xab" * 16384],
}


def _client_event(serializer: Serializer, args: list[Any]) -> list[str | bytes]:
    return serializer.encode(Packet(PacketType.EVENT, "/", args, 7))


def _echo(serializer: Serializer, wire: list[str | bytes]) -> None:
    decoder = serializer.decoder(DecoderLimits())
    for part in wire:
        packet = decoder.feed(part)
    assert packet is not None
    for out in encode_ack_for_engine("/", 7, packet.data[1:], serializer):
        out.ws_frame()


def _broadcast(serializer: Serializer, args: list[Any]) -> None:
    for out in encode_for_engine(Packet(PacketType.EVENT, "/", args), True, serializer):
        out.ws_frame()
        out.polling_segment()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    codecs = [serializer_named("json"), serializer_named("msgpack")]
    print("loadavg before:", Path("/proc/loadavg").read_text().strip())
    for shape, data in SHAPES.items():
        number = args.number if "binary" not in shape else args.number // 10
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.rounds):
            for codec in codecs:
                wire = _client_event(codec, data)
                for kind, call in (
                    ("echo", lambda c=codec, w=wire: _echo(c, w)),
                    ("broadcast", lambda c=codec, d=data: _broadcast(c, d)),
                ):
                    took = timeit.timeit(call, number=number) / number * 1e6
                    key = (kind, codec.name)
                    best[key] = min(best.get(key, took), took)
        sizes = {c.name: sum(len(p) for p in _client_event(c, data)) for c in codecs}
        for kind in ("echo", "broadcast"):
            j, m = best[(kind, "json")], best[(kind, "msgpack")]
            print(
                f"{shape:14} {kind:9} json {j:7.2f} us  msgpack {m:7.2f} us  "
                f"msgpack/json {m / j:5.2f}  "
                f"wire bytes json {sizes['json']} msgpack {sizes['msgpack']}"
            )
    print("loadavg after: ", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
