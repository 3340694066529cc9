"""Holds: reads, and the expiry job."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import structlog

from timebank.db import Database
from timebank.errors import ForbiddenError, NotFoundError
from timebank.holds.models import Hold
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
