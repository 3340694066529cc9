"""Communities: creation, policy, and lookups for other domains."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from timebank.communities.models import Community, Policy, SystemAccounts
from timebank.db import Database
from timebank.errors import NotFoundError
from timebank.http.context import Principal

_SELECT = """
    select c.id, c.slug, c.name, p.slug as parent_slug, c.unit_minutes, c.max_transaction_minutes,
           c.max_balance_minutes, c.overdraft_minutes, c.time_zone, c.created_at, c.seq,
           c.volunteer_min_age, c.redeem_min_age, c.gift_scope, c.pool_requires_eligibility,
           (select id from accounts a where a.community_id = c.id and a.kind = 'issuance') as issuance,
           (select id from accounts a where a.community_id = c.id and a.kind = 'pool') as pool,
           (select id from accounts a where a.community_id = c.id and a.kind = 'services') as services
      from communities c
      left join communities p on p.id = c.parent_id
"""


def _community(row: asyncpg.Record) -> Community:
    return Community(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        parent_slug=row["parent_slug"],
        policy=Policy(
            unit_minutes=row["unit_minutes"],
            max_transaction_minutes=row["max_transaction_minutes"],
            max_balance_minutes=row["max_balance_minutes"],
            overdraft_minutes=row["overdraft_minutes"],
            time_zone=row["time_zone"],
            volunteer_min_age=row["volunteer_min_age"],
            redeem_min_age=row["redeem_min_age"],
            gift_scope=row["gift_scope"],
            pool_requires_eligibility=row["pool_requires_eligibility"],
        ),
        accounts=SystemAccounts(issuance=row["issuance"], pool=row["pool"], services=row["services"]),
        created_at=row["created_at"],
    )


async def create_community(
    db: Database, actor: Principal, request_id: str, slug: str, name: str, parent_slug: str | None, policy: Policy
) -> Community:
    community_id = await db.fetchval(
        "select create_community($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        actor.id,
        request_id,
        slug,
        name,
        parent_slug,
        policy.unit_minutes,
        policy.max_transaction_minutes,
        policy.max_balance_minutes,
        policy.overdraft_minutes,
        policy.time_zone,
        policy.volunteer_min_age,
        policy.redeem_min_age,
        policy.gift_scope,
        policy.pool_requires_eligibility,
    )
    return await get_by_id(db, community_id)


async def change_policy(
    db: Database, actor: Principal, request_id: str, slug: str, changes: dict[str, Any]
) -> Community:
    """Set the policy fields in `changes` (all of them for PUT, some for PATCH); audited before and after."""
    community_id = await db.fetchval(
        "select set_policy($1, $2, $3, $4::text::jsonb)", actor.id, request_id, slug, json.dumps(changes)
    )
    return await get_by_id(db, community_id)


async def get_by_id(db: Database, community_id: uuid.UUID) -> Community:
    row = await db.fetchrow(_SELECT + " where c.id = $1", community_id)
    if row is None:
        raise NotFoundError("no such community")
    return _community(row)


async def get_visible(db: Database, actor: Principal, slug: str) -> Community:
    """The community with this slug, if the caller may see it (else 404, revealing nothing)."""
    row = await db.fetchrow(_SELECT + " where c.slug = $1", slug)
    if row is None or not actor.can_see_community(row["id"]):
        raise NotFoundError(f"no community {slug!r}")
    return _community(row)


async def slug_of(db: Database, community_id: uuid.UUID) -> str:
    slug: str = await db.fetchval("select slug from communities where id = $1", community_id)
    return slug


async def time_zone_of(db: Database, community_id: uuid.UUID) -> str:
    """The community's time zone (IANA name)."""
    time_zone: str = await db.fetchval("select time_zone from communities where id = $1", community_id)
    return time_zone


async def list_visible(
    db: Database, actor: Principal, after: int | None, limit: int
) -> tuple[list[Community], list[asyncpg.Record]]:
    """Communities the caller may see, in creation order, keyset-paged on their position."""
    only = None if actor.reads_everything else actor.community_id
    rows = await db.fetch(
        _SELECT + " where ($1::uuid is null or c.id = $1) and c.seq > $2 order by c.seq limit $3",
        only,
        after or 0,
        limit + 1,
    )
    return [_community(r) for r in rows[:limit]], rows
