"""Cursors are opaque, round-trip exactly, and anything we did not issue is refused."""

from __future__ import annotations

import pytest

from timebank.errors import DomainError, InvalidRequestError
from timebank.http.pagination import decode_cursor, encode_cursor, page_limit


@pytest.mark.parametrize("position", [0, 1, 42, 2**62])
def test_cursor_round_trip(position: int) -> None:
    cursor = encode_cursor(position)
    assert str(position) not in cursor
    assert decode_cursor(cursor) == position


@pytest.mark.parametrize("cursor", ["", "x" * 65, "dj E6", "djE6LTE=", "\x00", "周"])
def test_cursors_not_of_the_documented_shape_are_malformed(cursor: str) -> None:
    with pytest.raises(InvalidRequestError):
        decode_cursor(cursor)


@pytest.mark.parametrize("cursor", ["garbage", "djE6LTE", "djI6MQ", "djE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5"])
def test_well_formed_foreign_cursors_are_refused_by_rule(cursor: str) -> None:
    with pytest.raises(DomainError) as raised:
        decode_cursor(cursor)
    assert raised.value.code == "invalid_cursor"
    assert raised.value.status == 422


def test_page_limit_edges() -> None:
    assert page_limit(None, 50, 500) == 50
    assert page_limit(500, 50, 500) == 500
    # A deployment with smaller pages serves its largest page to a larger (schema-valid) ask.
    assert page_limit(500, 50, 100) == 100
    for bad in (0, -1):
        with pytest.raises(InvalidRequestError):
            page_limit(bad, 50, 500)
