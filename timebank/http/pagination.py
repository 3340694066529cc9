"""Keyset pagination: opaque cursors that stay stable while new rows arrive."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from timebank.errors import InvalidRequestError

MAX_CURSOR_CHARS = 64


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The keyset position a cursor stands for; 400 invalid_request for anything we did not issue."""
    if cursor is None:
        return None
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError(cursor)
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, number = text.partition(":")
        if version != "v1":
            raise ValueError(text)
        position = int(number)
        if not 0 <= position < 2**63:
            raise ValueError(text)
        return position
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequestError(
            "cursor is not one this service issued", errors=[{"field": "cursor", "message": "invalid cursor"}]
        ) from None


def page_limit(limit: int | None, default: int, maximum: int) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise InvalidRequestError(
            f"limit must be between 1 and {maximum}",
            errors=[{"field": "limit", "message": f"must be between 1 and {maximum}"}],
        )
    return limit


def next_cursor(rows: list[Any], limit: int, key: str) -> str | None:
    """Rows are fetched with limit + 1; a cursor is returned only when another page exists."""
    if len(rows) <= limit:
        return None
    return encode_cursor(int(rows[limit - 1][key]))
