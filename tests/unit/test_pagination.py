"""Cursors are opaque, round-trip exactly, and anything we did not issue is refused."""

from __future__ import annotations

import pytest

from timebank.errors import InvalidRequestError
from timebank.http.pagination import decode_cursor, encode_cursor, page_limit


@pytest.mark.parametrize("position", [0, 1, 42, 2**62])
def test_cursor_round_trip(position: int) -> None:
    cursor = encode_cursor(position)
    assert str(position) not in cursor
    assert decode_cursor(cursor) == position


@pytest.mark.parametrize("cursor", ["", "garbage", "djE6LTE", "djI6MQ", "x" * 65, "djE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5"])
def test_foreign_cursors_are_invalid_requests(cursor: str) -> None:
    with pytest.raises(InvalidRequestError):
        decode_cursor(cursor)


def test_page_limit_edges() -> None:
    assert page_limit(None, 50, 500) == 50
    assert page_limit(500, 50, 500) == 500
    for bad in (0, 501, -1):
        with pytest.raises(InvalidRequestError):
            page_limit(bad, 50, 500)
