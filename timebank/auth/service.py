"""Tokens after they are issued: listing a member's, and revoking one."""

from __future__ import annotations

import uuid

import asyncpg

from timebank.auth.models import Token
from timebank.db import Database
from timebank.http.context import Principal
from timebank.members import service as members


def _token(row: asyncpg.Record) -> Token:
    return Token(
        id=row["id"], created_at=row["created_at"], last_used_at=row["last_used_at"], revoked_at=row["revoked_at"]
    )


async def list_member_tokens(
    db: Database, actor: Principal, member_id: uuid.UUID, before_seq: int | None, limit: int
) -> tuple[list[Token], list[asyncpg.Record]]:
    """The member's tokens, newest first, for whoever may read the member: itself, its community's staff."""
    await members.get_visible(db, actor, member_id)
    rows = await db.fetch("select * from member_tokens($1, $2, $3)", member_id, before_seq, limit + 1)
    return [_token(r) for r in rows[:limit]], rows
