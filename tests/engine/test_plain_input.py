"""The lean path's ``wsgi.input`` (serving/lean.py's PlainInput) reads as pywsgi's Input.

Both read the same bytes from a buffered reader; every way an application reads a body
(whole, in pieces, by line, by iteration, past its end, a body cut short) and the discard
after the response must give the same bytes, positions and errors.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from gevent import pywsgi

from geventsio.serving.lean import PlainInput

BODY = b"first line\nsecond line\n\nlast, no newline"


def _reader(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(data), 8)


def _outcome(stream: Any, steps: Callable[[Any], list[Any]]) -> tuple[Any, ...]:
    try:
        result: Any = steps(stream)
    except Exception as exc:  # the error is part of the outcome
        result = (type(exc), str(exc))
    return result, stream.position


#: Reads an application may do, by name: each returns what it read.
READS: dict[str, Callable[[Any], list[Any]]] = {
    "read()": lambda s: [s.read(), s.read()],
    "read(None)": lambda s: [s.read(None)],
    "read(-1)": lambda s: [s.read(-1)],
    "read(0)": lambda s: [s.read(0), s.read(3)],
    "read in pieces": lambda s: [s.read(5), s.read(7), s.read(1000), s.read(1)],
    "readline()": lambda s: [s.readline() for _ in range(6)],
    "readline(size)": lambda s: [s.readline(4), s.readline(100), s.readline(0)],
    "readline(-1)": lambda s: [s.readline(-1)],
    "iteration": lambda s: list(s),
    "readlines()": lambda s: [s.readlines(), s.readlines()],
    "read then lines": lambda s: [s.read(3), *s],
}


@pytest.mark.parametrize("name", sorted(READS))
@pytest.mark.parametrize("declared", [len(BODY), 7, 0, None])
def test_reads_are_pywsgis(name, declared):
    steps = READS[name]
    theirs = _outcome(pywsgi.Input(_reader(BODY), declared, None, False), steps)
    ours = _outcome(PlainInput(_reader(BODY), declared), steps)
    assert ours == theirs


@pytest.mark.parametrize("name", sorted(READS))
def test_a_body_cut_short_fails_as_pywsgis(name):
    steps = READS[name]
    declared = len(BODY) + 10  # the client announced more than it sent
    theirs = _outcome(pywsgi.Input(_reader(BODY), declared, None, False), steps)
    ours = _outcome(PlainInput(_reader(BODY), declared), steps)
    assert ours == theirs


@pytest.mark.parametrize("read_first", [0, 5, len(BODY)])
def test_the_discard_leaves_the_stream_where_pywsgis_does(read_first):
    after = b"GET /next HTTP/1.1\r\n\r\n"
    streams = []
    for make in (
        lambda r: pywsgi.Input(r, len(BODY), None, False),
        lambda r: PlainInput(r, len(BODY)),
    ):
        rfile = _reader(BODY + after)
        body = make(rfile)
        body.read(read_first)
        body._discard()
        streams.append((body.position, rfile.read()))
    assert streams[0] == streams[1] == (len(BODY), after)


def test_a_discard_of_a_body_cut_short_raises_an_os_error():
    # pywsgi's handle_one_response drops an OSError from the discard (socket.error).
    with pytest.raises(OSError, match="unexpected end of file"):
        PlainInput(_reader(BODY), len(BODY) + 1)._discard()
