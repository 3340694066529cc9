"""Tokens as the API shows them: when made, last used and revoked; never the secret or its hash."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from timebank.http.types import Request


class Token(msgspec.Struct, frozen=True):
    id: uuid.UUID
    created_at: datetime
    # When the token last authenticated, to within about a minute (plus the token cache's lifetime).
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenPage(msgspec.Struct, frozen=True):
    items: list[Token]
    next_cursor: str | None


class TokenRevoke(Request, frozen=True):
    """Revoking takes no fields; an empty object or no body at all."""
