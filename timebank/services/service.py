"""Service types and service requests: reads (who may see what) and the jobs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import msgspec
import structlog

from timebank.db import Database
from timebank.errors import ForbiddenError, NotFoundError
from timebank.holds.service import expire_holds_once
from timebank.http.context import Principal
from timebank.services.models import ServiceRequest, ServiceRequestStatus, ServiceType, ServiceTypeReplace

log = structlog.get_logger(__name__)

JOB_BATCH = 100


async def list_service_types(db: Database, community_id: uuid.UUID) -> list[ServiceType]:
    rows = await db.fetch(
        "select code, name, default_minutes, active from service_types"
        " where community_id = $1 order by created_at, code",
        community_id,
    )
    return [
        ServiceType(code=r["code"], name=r["name"], default_minutes=r["default_minutes"], active=r["active"])
        for r in rows
    ]


def may_read(actor: Principal, row: asyncpg.Record) -> bool:
    """Staff and auditors read every request of their community; the member served and whoever
    asked read theirs; the provider reads those it provides; a volunteer reads the open ones."""
    if actor.is_staff_of(row["community_id"], "coordinator", "auditor"):
        return True
    mine = actor.member_id is not None and actor.member_id in (row["member_id"], row["provider_member_id"])
    return (
        mine
        or actor.id == row["created_by"]
        or (row["status"] == "open" and "volunteer" in actor.roles and actor.community_id == row["community_id"])
    )


async def get_service_request(db: Database, actor: Principal, request_id: uuid.UUID) -> ServiceRequest:
    row = await db.fetchrow(
        "select community_id, member_id, provider_member_id, created_by, status,"
        "       _service_request_json(id)::text as body"
        "  from service_requests where id = $1",
        request_id,
    )
    if row is None or not actor.can_see_community(row["community_id"]):
        raise NotFoundError("no such service request")
    if not may_read(actor, row):
        raise ForbiddenError("members may read only their own requests, and volunteers the open ones")
    return msgspec.json.decode(row["body"], type=ServiceRequest)


async def list_service_requests(
    db: Database,
    actor: Principal,
    community_id: uuid.UUID,
    filters: dict[str, Any],
    status: ServiceRequestStatus | None,
    before_seq: int | None,
    limit: int,
) -> tuple[list[ServiceRequest], list[asyncpg.Record]]:
    """A community's requests the caller may read, newest first, keyset-paged on their sequence number."""
    args: list[Any] = [community_id, limit + 1]
    where = ["r.community_id = $1"]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if not actor.is_staff_of(community_id, "coordinator", "auditor"):
        reach = [f"r.created_by = {arg(actor.id)}"]
        if actor.member_id is not None:
            me = arg(actor.member_id)
            reach += [f"r.member_id = {me}", f"r.provider_member_id = {me}"]
            if "volunteer" in actor.roles:
                reach.append("r.status = 'open'")
        where.append("(" + " or ".join(reach) + ")")
    columns = {"grid": "m.grid", "member_id": "r.member_id", "provider_member_id": "r.provider_member_id",
               "service_type": "r.service_type"}  # fmt: skip
    for name, value in filters.items():
        if value is not None:
            where.append(f"{columns[name]} = {arg(value)}")
    if status is not None:
        where.append(f"r.status = {arg(status)}")
    if before_seq is not None:
        where.append(f"r.seq < {arg(before_seq)}")
    rows = await db.fetch(
        "select r.seq, _service_request_json(r.id)::text as body"
        "  from service_requests r join members m on m.id = r.member_id"
        f" where {' and '.join(where)}"
        " order by r.seq desc limit $2",
        *args,
    )
    return [msgspec.json.decode(r["body"], type=ServiceRequest) for r in rows[:limit]], rows


async def _drain(db: Database, function: str, run_id: str) -> int:
    total = 0
    while True:
        count: int = await db.fetchval(f"select {function}($1, $2)", run_id, JOB_BATCH)
        total += count
        if count < JOB_BATCH:
            return total


async def run_jobs_once(db: Database, run_id: str) -> dict[str, int]:
    """One run of every job: mark expired holds, cancel open and assigned requests whose hold
    expired, confirm requests reported 7 days ago and neither confirmed nor disputed."""
    return {
        "holds_expired": await expire_holds_once(db, run_id),
        "service_requests_expired": await _drain(db, "expire_service_requests", run_id),
        "service_requests_auto_confirmed": await _drain(db, "auto_confirm_service_requests", run_id),
    }


async def run_service_request_jobs(db: Database, interval_seconds: float) -> None:
    """Every interval (the first run after one interval), the service request jobs, as `system`."""
    while True:
        await asyncio.sleep(interval_seconds)
        run_id = "job-" + uuid.uuid4().hex
        try:
            expired = await _drain(db, "expire_service_requests", run_id)
            confirmed = await _drain(db, "auto_confirm_service_requests", run_id)
            if expired or confirmed:
                log.info("service_request_jobs_ran", expired=expired, auto_confirmed=confirmed, run_id=run_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("service_request_jobs_failed", run_id=run_id, exc_info=True)


async def update_service_type(
    db: Database, actor: Principal, request_id: str, slug: str, code: str, data: ServiceTypeReplace
) -> ServiceType:
    body: str = await db.fetchval(
        "select update_service_type($1, $2, $3, $4, $5, $6, $7)::text",
        actor.id,
        request_id,
        slug,
        code,
        data.name,
        data.default_minutes,
        data.active,
    )
    return msgspec.json.decode(body, type=ServiceType)
