"""Owner tags in session ids, and the bounds on an owner's answer."""

from __future__ import annotations

import io

import pytest

from geventsio.cluster.forward import ForwardError, read_response, request_bytes
from geventsio.cluster.sid import new_tag, owner_tag, tagged_sid


def test_a_tagged_sid_names_its_owner_and_keeps_128_random_bits() -> None:
    tag = new_tag()
    sids = {tagged_sid(tag) for _ in range(1000)}
    assert len(sids) == 1000
    for sid in sids:
        random_part, _, named = sid.rpartition(".")
        assert named == tag == owner_tag(sid)
        assert len(random_part) == 22  # token_urlsafe(16): 128 bits


@pytest.mark.parametrize("sid", ["", "plain", "x.", "x.a/b", "x.a b", "x." + "a" * 17, "x.\0"])
def test_an_id_without_a_valid_tag_names_no_owner(sid: str) -> None:
    assert owner_tag(sid) is None


def test_the_forwarded_request_carries_the_clients_headers_but_not_its_origin() -> None:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/socket.io/",
        "QUERY_STRING": "EIO=4&transport=polling&sid=abc.def",
        "CONTENT_TYPE": "text/plain",
        "HTTP_ORIGIN": "http://evil.example",
        "HTTP_CONNECTION": "keep-alive",
        "HTTP_X_SOMETHING": "kept",
    }
    data = request_bytes(environ, b"4hello")
    head, _, body = data.partition(b"\r\n\r\n")
    assert (
        head.split(b"\r\n")[0] == b"POST /socket.io/?EIO=4&transport=polling&sid=abc.def HTTP/1.1"
    )
    assert b"Content-Length: 6" in head
    assert b"X-Something: kept" in head
    assert b"Origin" not in head
    assert b"keep-alive" not in head  # the client's: ours is HTTP/1.1's default
    assert body == b"4hello"


def test_an_answer_is_read_with_its_status_body_and_type() -> None:
    answer, keep = read_response(
        io.BytesIO(b"HTTP/1.1 200 OK\r\nContent-Type: text/x\r\nContent-Length: 2\r\n\r\nok"), 100
    )
    assert (answer.status, answer.body, answer.content_type) == (200, b"ok", "text/x")
    assert keep


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\n\r\nok",
    ],
    ids=["close", "http-1.0", "no-length"],
)
def test_a_connection_the_owner_ends_is_not_kept(raw: bytes) -> None:
    answer, keep = read_response(io.BytesIO(raw), 100)
    assert answer.body == b"ok"
    assert not keep


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n" + b"x" * 101,
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 100 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"y" * 10000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 101,
    ],
    ids=["empty", "no-http", "cut", "too-large", "many-headers", "long-header", "unbounded"],
)
def test_a_bad_answer_is_refused(raw: bytes) -> None:
    with pytest.raises((ForwardError, ValueError)):
        read_response(io.BytesIO(raw), 100)
