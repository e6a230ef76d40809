"""permessage-deflate on the server's own sockets, with the test client (which never
agrees to an extension: its handshake check refuses one it did not expect)."""

from __future__ import annotations

import os
import socket

import gevent
import gevent.socket
import pytest

from geventsio.engine.dropping import Tier
from geventsio.engine.takeover import PendingReader
from geventsio.engine.websocket import RawWebSocket
from geventsio.exceptions import RemoteProtocolError
from geventsio.options import DeflateOptions
from geventsio.protocol.deflate import Inflater
from geventsio.protocol.deflate_offer import DeflateAgreement
from geventsio.protocol.outgoing import OutgoingPacket
from geventsio.protocol.websocket import CloseReceived, FrameParser, TextMessage
from tests.support import assert_still_serving, open_websocket
from tests.support.engineio import eio_target
from tests.support.ws import HandshakeRefused

OFFER = [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]


def test_an_offer_is_not_answered_when_the_option_is_off(eio_server):
    server = eio_server()
    ws, _ = open_websocket(server, headers=OFFER)  # the client would refuse an answer
    ws.send_text("4hello")
    assert ws.recv() == "4hello"
    ws.close()
    assert_still_serving(server)


def test_with_the_option_on_the_101_answers_the_offer(eio_server):
    server = eio_server(per_message_deflate=True)
    with pytest.raises(RemoteProtocolError, match="sec-websocket-extensions 'permessage-deflate'"):
        server.websocket(eio_target(server.path, "websocket"), headers=OFFER)
    ws, _ = open_websocket(server)  # no offer: no extension
    ws.close()
    assert_still_serving(server)


@pytest.mark.parametrize("options", [False, True], ids=["off", "on-not-agreed"])
def test_rsv1_without_the_extension_agreed_closes_with_1002(eio_server, options):
    server = eio_server(per_message_deflate=options)
    ws, _ = open_websocket(server)
    mask = os.urandom(4)
    payload = bytes.fromhex("f248cdc9c90700")
    ws.send_raw(
        bytes([0xC1, 0x80 | len(payload)])
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )
    close = ws.wait_closed()
    assert isinstance(close, CloseReceived) and close.code == 1002, close
    assert_still_serving(server)


def test_a_malformed_offer_is_declined_not_refused(eio_server):
    server = eio_server(per_message_deflate=True)
    headers = [("Sec-WebSocket-Extensions", 'permessage-deflate; server_max_window_bits="1')]
    try:
        ws, _ = open_websocket(server, headers=headers)
    except HandshakeRefused as refused:  # pragma: no cover - the failure this test catches
        pytest.fail(f"handshake refused: {refused}")
    ws.close()
    assert_still_serving(server)


# -- a compressor that keeps its context, and a client that does not read ----------------


def test_compressed_frames_stay_readable_when_the_buffer_fills():
    """With context takeover, every compressed frame must reach the client: one the
    buffer refused is forgotten by the compressor (else the next message would refer to
    it), and the queued ones cannot be dropped to make room."""
    server_end, client_end = gevent.socket.socketpair()
    for sock in (server_end, client_end):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    websocket = RawWebSocket(
        server_end,
        PendingReader(server_end, b""),
        max_message_size=1 << 20,
        max_fragments=16,
        max_buffer_size=60_000,
        deflate=DeflateAgreement(),
        deflate_options=DeflateOptions(),
    )
    parser = FrameParser(
        max_message_size=1 << 20, expect_masked=False, inflater=Inflater(15, False)
    )
    try:
        sent = []
        for _ in range(1000):
            packet = OutgoingPacket.message(os.urandom(3000).hex())
            if not websocket.send_packets([packet], Tier.BROADCAST):
                break
            sent.append("4" + packet.packet.data)
        else:
            pytest.fail("the buffer never filled")
        refused = packet
        assert not websocket.make_room([refused], Tier.BROADCAST)  # nothing may be dropped
        with gevent.Timeout(10):
            received = []
            while len(received) < len(sent):
                received += [e.data for e in parser.feed(client_end.recv(65536))]
            assert received == sent
            # The refused message again: compressed as if the first never existed.
            assert websocket.send_packets([OutgoingPacket.message(refused.packet.data)])
            again = []
            while not again:
                again = parser.feed(client_end.recv(65536))
        assert again == [TextMessage("4" + refused.packet.data)]
    finally:
        websocket.close()
        websocket.drain(1)
        client_end.close()
        server_end.close()
