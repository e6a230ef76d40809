"""permessage-deflate on the server's own sockets, with the test client (which never
agrees to an extension: its handshake check refuses one it did not expect)."""

from __future__ import annotations

import os

import pytest

from geventsio.exceptions import RemoteProtocolError
from geventsio.protocol.websocket import CloseReceived
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
