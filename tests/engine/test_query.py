"""The engine's query parser answers as urllib's parse_qsl does, and refuses abuse."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geventsio.engine.http import MAX_QUERY_FIELDS, MAX_QUERY_LENGTH, parse_query
from geventsio.exceptions import RemoteProtocolError

#: Characters that matter to a query parser, and a few that do not.
QUERY_ALPHABET = "&=%+;?#aZ09-_.~ é\x00"


def expected(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, value)
    return params


@given(st.text(QUERY_ALPHABET, max_size=60))
def test_the_same_answer_as_parse_qsl(query):
    assert parse_query({"QUERY_STRING": query}) == expected(query)


@pytest.mark.parametrize(
    "query",
    [
        "EIO=4&transport=polling&t=P1a2b3c&sid=AbC-dEf_123",
        "a=1&a=2&&b&c=&=d",
        "x=%41%2x%&y=1+2&z=%E2%82%AC",
    ],
)
def test_typical_and_odd_queries(query):
    assert parse_query({"QUERY_STRING": query}) == expected(query)


def test_too_many_fields_or_too_long_is_refused():
    with pytest.raises(RemoteProtocolError):
        parse_query({"QUERY_STRING": "&".join(["a=1"] * (MAX_QUERY_FIELDS + 1))})
    with pytest.raises(RemoteProtocolError):
        parse_query({"QUERY_STRING": "a=" + "x" * MAX_QUERY_LENGTH})
    fields = "&".join(f"k{i}=1" for i in range(MAX_QUERY_FIELDS))
    assert len(parse_query({"QUERY_STRING": fields})) == MAX_QUERY_FIELDS


@pytest.mark.parametrize("fields", [MAX_QUERY_FIELDS - 1, MAX_QUERY_FIELDS])
def test_the_shortest_query_with_too_many_separators_is_refused(fields):
    """Short queries are not counted: the shortest one over the field limit still is."""
    query = "&" * fields
    if fields < MAX_QUERY_FIELDS:
        assert parse_query({"QUERY_STRING": query}) == {}
    else:
        with pytest.raises(RemoteProtocolError):
            parse_query({"QUERY_STRING": query})
