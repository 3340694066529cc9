"""Holds: reads, and the expiry job."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import msgspec
import structlog

from timebank.db import Database
from timebank.errors import ForbiddenError, NotFoundError
from timebank.holds.models import Hold, HoldStatus
from timebank.http.context import Principal

log = structlog.get_logger(__name__)


async def get_hold(db: Database, actor: Principal, hold_id: uuid.UUID) -> Hold:
    row = await db.fetchrow(
        "select community_id, member_id, _hold_json(id)::text as body from holds where id = $1", hold_id
    )
    if row is None or not actor.can_see_community(row["community_id"]):
        raise NotFoundError("no such hold")
    if not (actor.member_id == row["member_id"] or actor.is_staff_of(row["community_id"], "coordinator", "auditor")):
        raise ForbiddenError("members may read only their own holds")
    return msgspec.json.decode(row["body"], type=Hold)


# A hold's status as _hold_json tells it: its resolution, else expired from expires_at on, else pending.
_STATUS_FILTERS: dict[str, str] = {
    "pending": "r.hold_id is null and h.expires_at > now()",
    "captured": "r.status = 'captured'",
    "released": "r.status = 'released'",
    "expired": "(r.status = 'expired' or (r.hold_id is null and h.expires_at <= now()))",
}


async def list_holds(
    db: Database,
    community_id: uuid.UUID | None,
    member_id: uuid.UUID | None,
    status: HoldStatus | None,
    before_seq: int | None,
    limit: int,
) -> tuple[list[Hold], list[asyncpg.Record]]:
    """Holds of a community or of a member, newest first, keyset-paged on their sequence number."""
    # Only the filters given, so that each shape of query gets a plain index range.
    filters = {"h.community_id =": community_id, "h.member_id =": member_id, "h.seq <": before_seq}
    given = [(condition, value) for condition, value in filters.items() if value is not None]
    where = [f"{condition} ${i}" for i, (condition, _) in enumerate(given, start=2)]
    if status is not None:
        where.append(_STATUS_FILTERS[status])
    rows = await db.fetch(
        "select h.seq, h.id, h.account_id, h.member_id, h.minutes, h.description,"
        "       coalesce(r.status, case when h.expires_at <= now() then 'expired' else 'pending' end) as status,"
        "       h.expires_at, h.created_at, r.resolved_at, r.transaction_id"
        "  from holds h left join hold_resolutions r on r.hold_id = h.id"
        f" where {' and '.join(where) or 'true'}"
        " order by h.seq desc"
        " limit $1",
        limit + 1,
        *(value for _, value in given),
    )
    holds = [
        Hold(
            id=r["id"],
            account_id=r["account_id"],
            member_id=r["member_id"],
            minutes=r["minutes"],
            description=r["description"],
            status=r["status"],
            expires_at=r["expires_at"],
            created_at=r["created_at"],
            resolved_at=r["resolved_at"],
            transaction_id=r["transaction_id"],
        )
        for r in rows[:limit]
    ]
    return holds, rows


async def expire_holds_once(db: Database, run_id: str) -> int:
    """Mark every hold past its expiry as expired; returns how many."""
    total = 0
    while True:
        count: int = await db.fetchval("select expire_holds($1, 1000)", run_id)
        total += count
        if count < 1000:
            return total


async def run_expiry_job(db: Database, interval_seconds: float) -> None:
    """Every interval, append the resolution of holds that have expired (actor `system`)."""
    while True:
        run_id = "job-" + uuid.uuid4().hex
        try:
            expired = await expire_holds_once(db, run_id)
            if expired:
                log.info("holds_expired", count=expired, run_id=run_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("hold_expiry_failed", run_id=run_id, exc_info=True)
        await asyncio.sleep(interval_seconds)
