"""The two Engine.IO transports of the client, as blocking objects.

Each has ``receive()`` (wait for the next packets), ``send(packets)`` and ``close()``.
A failure raises :class:`TransportFailure` carrying the disconnect reason the JavaScript
client would report: an HTTP request that fails is a "transport error"; a WebSocket that
closes or drops is a "transport close", and one that breaks RFC 6455 a "transport error".
``receive()`` is called by one greenlet and ``send()`` by one other at a time; a
WebSocket serialises its writes (data and the answers to pings) with a lock.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from urllib.parse import urlencode

import gevent
import gevent.lock
import gevent.socket

from geventsio.client.errors import ClientDisconnectReason
from geventsio.client.http import (
    ByteStream,
    HTTPConnection,
    ServerAddress,
    open_socket,
    read_response_head,
)
from geventsio.client.options import ClientOptions
from geventsio.exceptions import RemoteProtocolError
from geventsio.options import Transport
from geventsio.protocol import engineio
from geventsio.protocol import websocket as ws
from geventsio.protocol import websocket_handshake as handshake
from geventsio.protocol.deflate import Deflater
from geventsio.protocol.deflate_offer import CLIENT_OFFER, DeflateAgreement, parse_answer
from geventsio.protocol.engineio import Packet

_CLOSE_FRAME_TIMEOUT = 1.0
#: With permessage-deflate agreed, messages this long or longer go compressed (the
#: threshold Node's engine.io-client uses).
DEFLATE_THRESHOLD = 1024


class TransportFailure(Exception):
    """A transport failed.

    :param reason: the disconnect reason to report.
    :param description: what happened, for the log and the ``reconnect_error`` event.
    """

    def __init__(self, reason: ClientDisconnectReason, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


def _error_detail(body: bytes) -> str:
    """The part of an error response worth showing (Node sends ``{code, message}``)."""
    return body[:200].decode("utf-8", "replace").strip() or "(empty body)"


class Endpoint:
    """Where and how to reach the Engine.IO server: address, path, headers."""

    def __init__(
        self, address: ServerAddress, path: str, headers: Sequence[tuple[str, str]]
    ) -> None:
        self.address = address
        self.path = path
        self.headers = tuple(headers)

    def target(self, transport: Transport, sid: str | None) -> str:
        query = [*self.address.query, ("EIO", "4"), ("transport", transport.value)]
        if transport is Transport.POLLING:
            query.append(("t", secrets.token_urlsafe(6)))  # defeats caches, as in JS
        if sid is not None:
            query.append(("sid", sid))
        return f"{self.path}?{urlencode(query)}"


class PollingTransport:
    """Long-polling: a GET waits for packets, a POST carries ours; one connection each.

    :param endpoint: the server.
    :param options: the client options (TLS context, timeouts, size limit).
    """

    name = Transport.POLLING

    def __init__(self, endpoint: Endpoint, options: ClientOptions) -> None:
        self._endpoint = endpoint
        self._options = options
        self._poll = HTTPConnection(endpoint.address, options.ssl_context, options.max_message_size)
        self._push = HTTPConnection(endpoint.address, options.ssl_context, options.max_message_size)
        #: The session id, once the handshake gave one.
        self.sid: str | None = None
        #: Seconds a GET may wait for data: set from the heartbeat after the handshake.
        self.poll_timeout = options.request_timeout

    def receive(self) -> list[Packet]:
        """Wait for the server's next packets (a GET).

        :raises TransportFailure: the request failed or the payload is malformed.
        """
        target = self._endpoint.target(self.name, self.sid)
        headers = [("Accept", "*/*"), *self._endpoint.headers]
        try:
            response = self._poll.request("GET", target, headers, None, self.poll_timeout)
        except (OSError, ValueError, RemoteProtocolError) as exc:  # ValueError: closed TLS
            raise TransportFailure(ClientDisconnectReason.TRANSPORT_ERROR, f"poll: {exc}") from exc
        if response.status != 200:
            detail = f"poll answered {response.status}: {_error_detail(response.body)}"
            raise TransportFailure(ClientDisconnectReason.TRANSPORT_ERROR, detail)
        try:
            return engineio.decode_payload(response.body)
        except RemoteProtocolError as exc:
            detail = f"bad polling payload: {exc}"
            raise TransportFailure(ClientDisconnectReason.TRANSPORT_ERROR, detail) from exc

    def send(self, packets: Sequence[Packet]) -> None:
        """Send packets in one POST.

        :raises TransportFailure: the request failed or was refused.
        """
        body = engineio.encode_payload(list(packets)).encode("utf-8")
        target = self._endpoint.target(self.name, self.sid)
        headers = [("Content-Type", "text/plain;charset=UTF-8"), *self._endpoint.headers]
        try:
            response = self._push.request(
                "POST", target, headers, body, self._options.request_timeout
            )
        except (OSError, ValueError, RemoteProtocolError) as exc:  # ValueError: closed TLS
            raise TransportFailure(ClientDisconnectReason.TRANSPORT_ERROR, f"post: {exc}") from exc
        if response.status != 200:
            detail = f"post answered {response.status}: {_error_detail(response.body)}"
            raise TransportFailure(ClientDisconnectReason.TRANSPORT_ERROR, detail)

    def finish(self) -> None:
        """Nothing to do: the CLOSE packet already told the server."""

    def close(self) -> None:
        """Close both HTTP connections (a request in progress fails)."""
        self._poll.close()
        self._push.close()


class WebSocketTransport:
    """One WebSocket; Engine.IO packets travel one per message.

    Use :meth:`connect` to make one.
    """

    name = Transport.WEBSOCKET

    def __init__(
        self,
        sock: gevent.socket.socket,
        leftover: bytes,
        max_size: int,
        deflate: DeflateAgreement | None = None,
    ) -> None:
        self._sock = sock
        deflater, inflater = (None, None) if deflate is None else deflate.client_codecs()
        self._deflater = deflater
        #: The ``Sec-WebSocket-Extensions`` the server agreed to, if any.
        self.extensions = "" if deflate is None else deflate.response
        self._parser = ws.FrameParser(
            max_message_size=max_size, expect_masked=False, inflater=inflater
        )
        self._leftover = leftover
        self._write_lock = gevent.lock.Semaphore()
        self._close_received: ws.CloseReceived | None = None
        self._close_sent = False

    @classmethod
    def connect(
        cls, endpoint: Endpoint, options: ClientOptions, sid: str | None
    ) -> WebSocketTransport:
        """Open a WebSocket to the server (the opening handshake included).

        :raises OSError: the connection failed.
        :raises RemoteProtocolError: the server refused the handshake.
        """
        timeout = options.request_timeout
        message = f"no WebSocket handshake from {endpoint.address} within {timeout:g}s"
        with gevent.Timeout(timeout, TimeoutError(message)):
            sock = open_socket(endpoint.address, options.ssl_context, timeout)
            try:
                key = handshake.new_client_key()
                resource = endpoint.target(Transport.WEBSOCKET, sid)
                offer = options.per_message_deflate
                headers = [*endpoint.headers]
                if offer:
                    headers.append(("Sec-WebSocket-Extensions", CLIENT_OFFER))
                request = handshake.client_handshake_request(
                    endpoint.address.host_header, resource, key, headers
                )
                sock.sendall(request)
                stream = ByteStream(sock)
                head = read_response_head(stream)
                if head.status != 101:
                    detail = _error_detail(bytes(stream.buffer))
                    raise RemoteProtocolError(f"WebSocket refused with {head.status}: {detail}")
                handshake.check_server_response(
                    head.status, head.headers, key, extension_offered=offer
                )
                answer = head.headers.get("sec-websocket-extensions", "").strip()
                deflate = parse_answer(answer) if answer else None
            except BaseException:
                sock.close()
                raise
        leftover = stream.take(len(stream.buffer))
        return cls(sock, leftover, options.max_message_size, deflate)

    def receive(self) -> list[Packet]:
        """Wait for the server's next packets (one or more messages).

        :raises TransportFailure: the connection closed or broke the protocol.
        """
        while True:
            if self._close_received is not None:
                code = self._close_received.code
                raise TransportFailure(
                    ClientDisconnectReason.TRANSPORT_CLOSE,
                    f"WebSocket closed by the server ({code})",
                )
            data, self._leftover = self._leftover or self._recv(), b""
            packets = self._on_data(data)
            if packets:
                return packets

    def _recv(self) -> bytes:
        try:
            data: bytes = self._sock.recv(64 * 1024)
        except (OSError, ValueError) as exc:  # ValueError: a TLS socket closed meanwhile
            raise TransportFailure(ClientDisconnectReason.TRANSPORT_CLOSE, str(exc)) from exc
        if not data:
            raise TransportFailure(
                ClientDisconnectReason.TRANSPORT_CLOSE, "connection closed by the server"
            )
        return data

    def _on_data(self, data: bytes) -> list[Packet]:
        try:
            events = self._parser.feed(data)
        except ws.WebSocketProtocolError as exc:
            self._send_close(exc.close_code, exc.reason)
            detail = f"WebSocket protocol error: {exc.reason}"
            raise TransportFailure(ClientDisconnectReason.TRANSPORT_ERROR, detail) from exc
        packets: list[Packet] = []
        for event in events:
            if isinstance(event, (ws.TextMessage, ws.BinaryMessage)):
                try:
                    packets.append(engineio.decode_ws(event.data))
                except RemoteProtocolError as exc:
                    detail = f"bad Engine.IO packet: {exc}"
                    raise TransportFailure(ClientDisconnectReason.TRANSPORT_ERROR, detail) from exc
            elif isinstance(event, ws.Ping):
                self._write(ws.encode_pong(event.payload, mask=os.urandom(4)))
            elif isinstance(event, ws.CloseReceived):
                self._close_received = event
                self._send_close(ws.CloseCode.NORMAL_CLOSURE)
                break
        return packets

    def send(self, packets: Sequence[Packet]) -> None:
        """Send packets, one message each, in one write.

        :raises TransportFailure: the connection is gone.
        """
        messages = [engineio.encode_ws(packet) for packet in packets]
        deflater = self._deflater
        if deflater is None:
            self._write(b"".join(map(_frame, messages)))
            return
        # Compressed in the order they are written: the server's decompressor follows.
        self._write(lambda: b"".join(_frame_compressed(deflater, m) for m in messages))

    def _write(self, data: bytes | Callable[[], bytes]) -> None:
        """Write ``data`` (or what it returns, made under the write lock) in one go."""
        try:
            with self._write_lock:
                self._sock.sendall(data if isinstance(data, bytes) else data())
        except (OSError, ValueError) as exc:  # ValueError: a TLS socket closed meanwhile
            raise TransportFailure(ClientDisconnectReason.TRANSPORT_CLOSE, str(exc)) from exc

    def _send_close(self, code: int, reason: str = "") -> None:
        """Send a close frame once, best effort and briefly."""
        if self._close_sent:
            return
        self._close_sent = True
        try:
            with gevent.Timeout(_CLOSE_FRAME_TIMEOUT, TimeoutError), self._write_lock:
                self._sock.sendall(ws.encode_close(code, reason, mask=os.urandom(4)))
        except (OSError, ValueError):
            pass

    def finish(self) -> None:
        """Send a close frame (the server answers and closes its end, then we do)."""
        self._send_close(ws.CloseCode.NORMAL_CLOSURE)

    def close(self) -> None:
        """Close the connection (after a close frame, if none was sent)."""
        self._send_close(ws.CloseCode.NORMAL_CLOSURE)
        self._sock.close()


def _frame(message: str | bytes) -> bytes:
    """The masked frame of one Engine.IO message."""
    if isinstance(message, bytes):
        return ws.encode_binary(message, mask=os.urandom(4))
    return ws.encode_text(message, mask=os.urandom(4))


def _frame_compressed(deflater: Deflater, message: str | bytes) -> bytes:
    """The masked frame of ``message``, compressed from :data:`DEFLATE_THRESHOLD` on."""
    data = message.encode("utf-8") if isinstance(message, str) else message
    if len(data) < DEFLATE_THRESHOLD:
        return _frame(message)
    payload = deflater.deflate(data)
    return ws.encode_compressed(payload, text=isinstance(message, str), mask=os.urandom(4))


ClientTransport = PollingTransport | WebSocketTransport
