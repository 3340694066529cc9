"""Sign-in cards: a long random secret in a QR code that opens /login/card/<secret> on the member's
own phone. Only its SHA-256 is stored (as for tokens); printing a new card replaces the old one.

The card names the member, nothing more: the PIN still follows, on every device (the simplest rule
that keeps a lost or photographed card from signing anybody in).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from timebank.db import Database
from timebank.http.context import Principal, hash_token

# 32 random bytes: as long as a token's secret.
SECRET_BYTES = 32
MAX_SECRET_CHARS = 100


@dataclass(frozen=True)
class CardHolder:
    community: str
    member_no: str
    display_name: str


async def issue_card(db: Database, actor: Principal, request_id: str, member_id: uuid.UUID) -> str:
    """A new card's secret (shown once); the member's previous card stops working. 404 outside reach."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    await db.fetchval("select issue_sign_in_card($1, $2, $3, $4)", actor.id, request_id, member_id, hash_token(secret))
    return secret


async def card_holder(db: Database, secret: str) -> CardHolder | None:
    """Whom the card's secret names; None for an unknown or replaced card."""
    if not secret or len(secret) > MAX_SECRET_CHARS:
        return None
    row = await db.fetchrow("select * from sign_in_card_member($1)", hash_token(secret))
    return None if row is None else CardHolder(row["community"], row["member_no"], row["display_name"])


async def card_issued_at(db: Database, member_id: uuid.UUID) -> datetime | None:
    issued: datetime | None = await db.fetchval("select sign_in_card_issued_at($1)", member_id)
    return issued
