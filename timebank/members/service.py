"""Members: registration, lookups, tokens."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec
from litestar import Request
from litestar.datastructures import State

from timebank.auth.tokens import new_token
from timebank.db import Database
from timebank.errors import ForbiddenError, NotFoundError
from timebank.http.context import Principal
from timebank.http.idempotency import WriteResult, execute_write
from timebank.members.models import IssuedToken, Member, MemberChange, MemberCreate

_SELECT = """
    select m.id, c.slug as community, m.community_id, m.display_name, m.roles, m.grid, a.id as account_id,
           m.created_at, m.birth_date, m.phone, m.external_ref, m.seq, m.member_no, m.pool_eligible,
           exists (select 1 from member_pins p where p.member_id = m.id) as has_pin
      from members m join communities c on c.id = m.community_id join accounts a on a.member_id = m.id
"""


def _member(row: asyncpg.Record) -> Member:
    return Member(
        id=row["id"],
        community=row["community"],
        display_name=row["display_name"],
        roles=list(row["roles"]),
        grid=row["grid"],
        account_id=row["account_id"],
        created_at=row["created_at"],
        member_no=row["member_no"],
        pool_eligible=row["pool_eligible"],
        has_pin=row["has_pin"],
        birth_date=row["birth_date"],
        phone=row["phone"],
        external_ref=row["external_ref"],
    )


async def create_member(db: Database, actor: Principal, request_id: str, slug: str, data: MemberCreate) -> Member:
    roles = list(data.roles)
    member_id = await db.fetchval(
        "select create_member($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        actor.id,
        request_id,
        slug,
        data.display_name,
        roles,
        data.grid,
        data.birth_date,
        data.phone,
        data.external_ref,
    )
    row = await db.fetchrow(_SELECT + " where m.id = $1", member_id)
    assert row is not None
    return _member(row)


async def change_member(
    db: Database,
    request: Request[Any, Any, State],
    actor: Principal,
    member_id: uuid.UUID,
    data: MemberChange,
    *,
    key: str | None = None,
) -> WriteResult:
    """Change the fields given; audited before and after, with the reason. `key`: as execute_write's."""
    changes = msgspec.json.encode(data.given()).decode()
    return await execute_write(
        db, request, actor, "update_member", "member_change", member_id, data, member_id, changes, data.reason,
        key=key,
    )  # fmt: skip


def may_read_member(actor: Principal, community_id: uuid.UUID, member_id: uuid.UUID) -> bool:
    return actor.member_id == member_id or actor.is_staff_of(community_id, "coordinator", "auditor")


async def get_visible(db: Database, actor: Principal, member_id: uuid.UUID) -> Member:
    """The member, if the caller may read it: itself, or staff and auditors of its community."""
    row = await db.fetchrow(_SELECT + " where m.id = $1", member_id)
    if row is None or not actor.can_see_community(row["community_id"]):
        raise NotFoundError("no such member")
    if not may_read_member(actor, row["community_id"], member_id):
        raise ForbiddenError("members may read only their own record")
    return _member(row)


async def visible_community(db: Database, actor: Principal, member_id: uuid.UUID) -> uuid.UUID:
    """The member's community, if the caller may see that community (else 404, revealing nothing)."""
    community_id: uuid.UUID | None = await db.fetchval("select community_id from members where id = $1", member_id)
    if community_id is None or not actor.can_see_community(community_id):
        raise NotFoundError("no such member")
    return community_id


async def get_own(db: Database, member_id: uuid.UUID) -> Member:
    row = await db.fetchrow(_SELECT + " where m.id = $1", member_id)
    assert row is not None
    return _member(row)


async def list_members(
    db: Database,
    community_id: uuid.UUID,
    role: str | None,
    grid: str | None,
    query: str | None,
    after: int | None,
    limit: int,
) -> tuple[list[Member], list[asyncpg.Record]]:
    rows = await db.fetch(
        _SELECT
        + """ where m.community_id = $1 and m.seq > $2
              and ($3::text is null or $3 = any(m.roles))
              and ($4::text is null or m.grid = $4)
              and ($5::text is null or strpos(lower(m.display_name), lower($5)) > 0
                   or m.external_ref = $5 or m.phone = $5 or m.member_no = $5)
            order by m.seq limit $6""",
        community_id,
        after or 0,
        role,
        grid,
        query,
        limit + 1,
    )
    return [_member(r) for r in rows[:limit]], rows


async def issue_token(db: Database, actor: Principal | None, request_id: str, member_id: uuid.UUID) -> IssuedToken:
    """A new token for the member; 404 when the member is outside the caller's reach."""
    token, digest = new_token()
    await db.fetchval(
        "select issue_member_token($1, $2, $3, $4)", actor.id if actor else None, request_id, member_id, digest
    )
    return IssuedToken(token=token, member_id=member_id)
