"""Binary placeholders: deconstruction on the way out, location and filling on the way in."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geventsio.exceptions import LocalProtocolError, RemoteProtocolError
from geventsio.protocol.binary import (
    MAX_ENCODE_DEPTH,
    deconstruct,
    fill,
    is_placeholder,
    locate_placeholders,
)


def ph(num: int) -> dict[str, Any]:
    return {"_placeholder": True, "num": num}


# -- deconstruct ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "stripped", "buffers"),
    [
        pytest.param(["a", 1, None], ["a", 1, None], [], id="no-binary"),
        pytest.param(["a", b"1"], ["a", ph(0)], [b"1"], id="flat"),
        pytest.param(("a", (b"1",)), ["a", [ph(0)]], [b"1"], id="tuples-become-lists"),
        pytest.param(
            ["a", bytearray(b"1"), memoryview(b"2")], ["a", ph(0), ph(1)], [b"1", b"2"], id="kinds"
        ),
        pytest.param(
            ["a", {"x": b"0", "y": [b"1", {"z": b"2"}]}, b"3"],
            ["a", {"x": ph(0), "y": [ph(1), {"z": ph(2)}]}, ph(3)],
            [b"0", b"1", b"2", b"3"],
            id="depth-first-pre-order",
        ),
        pytest.param(
            {"b": b"0", "a": b"1"},
            {"b": ph(0), "a": ph(1)},
            [b"0", b"1"],
            id="dict-insertion-order",
        ),
        pytest.param(
            ["a", {"_placeholder": False}], ["a", {"_placeholder": False}], [], id="not-a-lookalike"
        ),
        pytest.param(b"", ph(0), [b""], id="root-and-empty"),
    ],
)
def test_deconstruct(data: Any, stripped: Any, buffers: list[bytes]) -> None:
    result, found = deconstruct(data)
    assert result == stripped
    assert found == buffers
    assert all(type(buffer) is bytes for buffer in found)


def test_deconstruct_copies() -> None:
    inner = {"blob": bytearray(b"1")}
    data = ["a", inner]
    stripped, _ = deconstruct(data)
    assert data == ["a", {"blob": bytearray(b"1")}]
    assert stripped[1] is not inner


def test_deconstruct_depth_limit() -> None:
    data: Any = b"x"
    for _ in range(MAX_ENCODE_DEPTH):
        data = [data]
    assert deconstruct(data)[1] == [b"x"]
    with pytest.raises(LocalProtocolError, match="deeper than 255"):
        deconstruct([data])


def test_deconstruct_refuses_a_cycle() -> None:
    data: list[Any] = [b"x"]
    data.append({"again": data})
    with pytest.raises(LocalProtocolError, match="cycle"):
        deconstruct(data)


def test_deconstruct_refuses_a_placeholder_lookalike() -> None:
    with pytest.raises(LocalProtocolError, match="_placeholder"):
        deconstruct(["a", b"x", {"_placeholder": True, "num": 0}])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ph(0), True),
        ({"_placeholder": True}, True),
        ({"_placeholder": False, "num": 0}, False),
        ({"_placeholder": 1, "num": 0}, False),
        ({"num": 0}, False),
    ],
)
def test_is_placeholder(value: dict[str, Any], expected: bool) -> None:
    assert is_placeholder(value) is expected


# -- locate_placeholders and fill ---------------------------------------------------------


def test_locate_and_fill() -> None:
    data = ["a", {"x": ph(2), "y": [ph(0)]}, ph(1), {"_placeholder": False}]
    slots = locate_placeholders(data, 3)
    fill(slots, [b"0", b"1", b"2"])
    assert data == ["a", {"x": b"2", "y": [b"0"]}, b"1", {"_placeholder": False}]


def test_locate_in_a_dict_root() -> None:
    data: dict[str, Any] = {"x": ph(0)}
    fill(locate_placeholders(data, 1), [b"0"])
    assert data == {"x": b"0"}


def test_locate_does_not_recurse() -> None:
    data: Any = [ph(0)]
    for _ in range(100_000):
        data = [data]
    slots = locate_placeholders(data, 1)
    container, key = slots[0]
    assert container[key] == ph(0)


@pytest.mark.parametrize(
    ("data", "count", "problem"),
    [
        pytest.param(["a"], 1, "1 attachments announced, 0 placeholders", id="none"),
        pytest.param(["a", ph(0)], 2, "2 attachments announced, 1", id="too-few"),
        pytest.param(["a", ph(0), ph(0)], 2, "more than once", id="repeated"),
        pytest.param(["a", ph(0), [ph(0)]], 1, "more than once", id="repeated-nested"),
        pytest.param(["a", ph(1)], 1, "out of range", id="too-big"),
        pytest.param(["a", ph(-1)], 1, "out of range", id="negative"),
        pytest.param(["a", {"_placeholder": True, "num": "0"}], 1, "malformed", id="str"),
        pytest.param(["a", {"_placeholder": True, "num": True}], 1, "malformed", id="bool"),
        pytest.param(["a", {"_placeholder": True, "num": 0.0}], 1, "malformed", id="float"),
        pytest.param(["a", {"_placeholder": True, "num": None}], 1, "malformed", id="null"),
        pytest.param(["a", {"_placeholder": True}], 1, "malformed", id="missing"),
        pytest.param(["a", {"_placeholder": True, "num": 0, "x": 1}], 1, "malformed", id="extra"),
    ],
)
def test_locate_refuses(data: Any, count: int, problem: str) -> None:
    with pytest.raises(RemoteProtocolError, match=problem):
        locate_placeholders(data, count)


def test_fill_needs_one_buffer_per_slot() -> None:
    slots = locate_placeholders([ph(0)], 1)
    with pytest.raises(ValueError):
        fill(slots, [])


# -- property: what deconstruct takes apart, locate and fill put back ---------------------

LEAVES: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.binary(max_size=8).map(bytearray)
    | st.binary(max_size=8).map(lambda data: memoryview(data))
)
DATA = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=6).filter(lambda k: k != "_placeholder"), children)
    ),
    max_leaves=20,
)


def as_received(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list | tuple):
        return [as_received(item) for item in value]
    if isinstance(value, dict):
        return {key: as_received(item) for key, item in value.items()}
    return value


@settings(max_examples=300, deadline=None)
@given(st.lists(DATA, max_size=4))
def test_deconstruct_locate_fill_round_trip(data: list[Any]) -> None:
    stripped, buffers = deconstruct(data)
    fill(locate_placeholders(stripped, len(buffers)), buffers)
    assert stripped == as_received(data)


def _located(root: list[Any], count: int) -> list[tuple[str, Any]] | str:
    """Where locate_placeholders finds each slot ("root" or the container's repr), or its
    error."""
    try:
        slots = locate_placeholders(root, count)
    except RemoteProtocolError as exc:
        return str(exc)
    return [("root" if container is root else repr(container), key) for container, key in slots]


LONE_FIRSTS = ["e", 1, None, True, [ph(0)], {"a": ph(0)}, [], {}]
LONE_VALUES = [
    ph(0),
    ph(1),
    {"num": 0, "_placeholder": True},
    {"_placeholder": True, "num": 0.0},
    {"_placeholder": True, "num": False},
    {"_placeholder": 1, "num": 0},
    {"_placeholder": True, "num": 0, "x": 1},
    {"_placeholder": True},
    "x",
    [ph(0)],
]


@pytest.mark.parametrize("first", LONE_FIRSTS)
@pytest.mark.parametrize("value", LONE_VALUES)
def test_a_lone_placeholder_is_found_as_the_walk_finds_it(first: Any, value: Any) -> None:
    # [first, value] may take the shortcut; with a scalar after it, the walk is taken.
    shortcut = _located([first, value], 1)
    walked = _located([first, value, "after"], 1)
    assert shortcut == walked
