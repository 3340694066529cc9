"""Tokens after they are issued: listing a member's, and revoking one."""

from __future__ import annotations

import uuid

import asyncpg

from timebank.auth.models import Token
from timebank.db import Database
from timebank.errors import ForbiddenError
from timebank.http.context import Principal
from timebank.members import service as members


def _token(row: asyncpg.Record) -> Token:
    return Token(
        id=row["id"], created_at=row["created_at"], last_used_at=row["last_used_at"], revoked_at=row["revoked_at"]
    )


async def list_member_tokens(
    db: Database, actor: Principal, member_id: uuid.UUID, before_seq: int | None, limit: int
) -> tuple[list[Token], list[asyncpg.Record]]:
    """The member's tokens, newest first: for the member itself and its community's staff (admin,
    coordinators, auditors); 403 for the rest of the community, 404 beyond it."""
    community_id = await members.visible_community(db, actor, member_id)
    if not (actor.member_id == member_id or actor.is_staff_of(community_id, "coordinator", "auditor")):
        raise ForbiddenError("members may list only their own tokens")
    rows = await db.fetch("select * from member_tokens($1, $2, $3)", member_id, before_seq, limit + 1)
    return [_token(r) for r in rows[:limit]], rows
