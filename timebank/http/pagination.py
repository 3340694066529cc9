"""Keyset pagination: opaque cursors that stay stable while new rows arrive."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from timebank.errors import DomainError, InvalidRequestError

MAX_CURSOR_CHARS = 64


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{position}".encode()).decode().rstrip("=")


CURSOR_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_CURSOR_CHARS}}}")


def decode_cursor(cursor: str | None) -> int | None:
    """The keyset position a cursor stands for.

    A cursor not of the documented shape is malformed (400 invalid_request); one of that shape that
    this service did not issue breaks a rule the schema cannot state (422 invalid_cursor).
    """
    if cursor is None:
        return None
    if not CURSOR_PATTERN.fullmatch(cursor):
        raise InvalidRequestError(
            f"cursor must be 1 to {MAX_CURSOR_CHARS} characters of A-Z, a-z, 0-9, _ and -",
            errors=[{"field": "cursor", "message": "not a cursor"}],
        )
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, number = text.partition(":")
        if version != "v1":
            raise ValueError(text)
        position = int(number)
        if not 0 <= position < 2**63:
            raise ValueError(text)
        return position
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise DomainError(
            "cursor is not one this service issued",
            code="invalid_cursor",
            errors=[{"field": "cursor", "message": "invalid cursor"}],
        ) from None


def page_limit(limit: int | None, default: int, maximum: int) -> int:
    """The page size: `limit` (1..500, the schema's bounds) up to the configured maximum."""
    if limit is None:
        return default
    if limit < 1:
        raise InvalidRequestError(
            "limit must be at least 1", errors=[{"field": "limit", "message": "must be at least 1"}]
        )
    # A deployment may serve smaller pages than the schema's 500; a larger ask gets the largest page.
    return min(limit, maximum)


def next_cursor(rows: list[Any], limit: int, key: str) -> str | None:
    """Rows are fetched with limit + 1; a cursor is returned only when another page exists."""
    if len(rows) <= limit:
        return None
    return encode_cursor(int(rows[limit - 1][key]))
