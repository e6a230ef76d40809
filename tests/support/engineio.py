"""Engine.IO v4 over raw sockets: the polling handshake, GET/POST, and WebSocket helpers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import gevent
import orjson

from geventsio.protocol.engineio import Packet, PacketType, decode_payload, encode_payload
from tests.support.http import Headers, HttpClient, HttpResponse
from tests.support.ws import WsClient

if TYPE_CHECKING:
    from tests.support.server import LiveServer


def eio_target(path: str, transport: str = "polling", sid: str | None = None, **extra: str) -> str:
    """The request target ``path?EIO=4&transport=...[&sid=...]``; ``extra`` adds or
    overrides parameters (``EIO="3"``)."""
    params: dict[str, str] = {"EIO": "4", "transport": transport}
    if sid is not None:
        params["sid"] = sid
    params.update(extra)
    return f"{path}?{urlencode(params)}"


def decode_open(packet: Packet) -> dict[str, Any]:
    """The JSON body of an OPEN packet."""
    assert packet.type is PacketType.OPEN, f"expected an OPEN packet, got {packet}"
    assert isinstance(packet.data, str)
    data: dict[str, Any] = orjson.loads(packet.data)
    return data


def messages(packets: list[Packet]) -> list[str | bytes]:
    """The data of the MESSAGE packets among ``packets``."""
    return [p.data for p in packets if p.type is PacketType.MESSAGE]


def payload(*packets: Packet | str | bytes) -> bytes:
    """A polling payload; plain ``str``/``bytes`` become MESSAGE packets."""
    as_packets = [p if isinstance(p, Packet) else Packet(PacketType.MESSAGE, p) for p in packets]
    return encode_payload(as_packets).encode("utf-8")


class PollingClient:
    """An Engine.IO long-polling client on raw HTTP: one connection for GETs and one
    for POSTs, as a browser has.

    :param server: the live server.
    :param headers: extra headers for every request (``Origin``...).
    :param query: extra query parameters for every request.
    """

    def __init__(
        self, server: LiveServer, *, headers: Headers = (), query: dict[str, str] | None = None
    ) -> None:
        self.server = server
        self.headers = list(headers)
        self.query = dict(query or {})
        self.sid: str | None = None
        self.handshake_response: HttpResponse | None = None
        self._get_conn: HttpClient | None = None
        self._post_conn: HttpClient | None = None

    def _conn(self, attr: str) -> HttpClient:
        conn: HttpClient | None = getattr(self, attr)
        if conn is None or conn.closed or conn.eof:
            conn = self.server.http()
            setattr(self, attr, conn)
        return conn

    def target(self) -> str:
        """The target of this session's polling requests."""
        return eio_target(self.server.path, "polling", self.sid, **self.query)

    def handshake(self) -> dict[str, Any]:
        """Open a session; return the OPEN packet's data (``sid`` is kept)."""
        response = self._conn("_get_conn").get(self.target(), self.headers)
        assert response.status == 200, f"handshake failed: {response.status} {response.body!r}"
        self.handshake_response = response
        packets = decode_payload(response.body)
        assert len(packets) == 1, f"the handshake answered {packets}"
        data = decode_open(packets[0])
        self.sid = data["sid"]
        return data

    def get_response(self) -> HttpResponse:
        """One polling GET, as it came."""
        return self._conn("_get_conn").get(self.target(), self.headers)

    def get(self) -> list[Packet]:
        """One polling GET, decoded (asserting 200)."""
        response = self.get_response()
        assert response.status == 200, f"GET failed: {response.status} {response.body!r}"
        return decode_payload(response.body)

    def spawn_get(self) -> gevent.Greenlet:
        """Start a GET in a greenlet; its value is the :class:`HttpResponse`."""
        return gevent.spawn(self.get_response)

    def post_raw(self, body: bytes | str, headers: Headers = ()) -> HttpResponse:
        """One polling POST of ``body`` as it is."""
        return self._conn("_post_conn").post(self.target(), body, [*self.headers, *headers])

    def send(self, *packets: Packet | str | bytes) -> None:
        """POST packets (plain text/bytes are MESSAGEs), asserting ``200 ok``."""
        response = self.post_raw(payload(*packets))
        assert (response.status, response.body) == (200, b"ok"), response

    def close(self) -> None:
        """Close as engine.io-client does: a CLOSE packet, then collect the last GET."""
        self.send(Packet(PacketType.CLOSE))
        self.get_response()
        self.drop()

    def drop(self) -> None:
        """Close the TCP connections without a word."""
        for conn in (self._get_conn, self._post_conn):
            if conn is not None:
                conn.close()


def open_websocket(
    server: LiveServer, *, headers: Headers = (), **query: str
) -> tuple[WsClient, dict[str, Any]]:
    """Open a session directly on WebSocket; return the client and the OPEN data."""
    ws = server.websocket(eio_target(server.path, "websocket", **query), headers=headers)
    first = ws.recv()
    assert isinstance(first, str), f"expected the OPEN packet first, got {first!r}"
    return ws, decode_open(Packet(PacketType(int(first[0])), first[1:]))


def upgrade(polling: PollingClient, *, headers: Headers = ()) -> WsClient:
    """Upgrade a polling session to WebSocket (probe, then UPGRADE); return the WebSocket.

    The caller's pending GET, if any, is answered with a NOOP by the server.
    """
    assert polling.sid is not None
    ws = polling.server.websocket(
        eio_target(polling.server.path, "websocket", polling.sid, **polling.query),
        headers=[*polling.headers, *headers],
    )
    ws.send_text("2probe")
    assert ws.recv() == "3probe"
    ws.send_text("5")
    return ws


def assert_still_serving(server: LiveServer, sessions: int = 0) -> None:
    """The server is back to ``sessions`` sessions and serves a new one normally:
    a polling handshake, an echoed message, a clean close, and the count back again."""
    server.wait_sessions(sessions)
    client = server.polling()
    client.handshake()
    assert server.session_count == sessions + 1
    client.send("still serving")
    assert messages(client.get()) == ["still serving"]
    client.close()
    server.wait_sessions(sessions)
