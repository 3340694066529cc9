"""The service request jobs, run as `system`: 7-day auto-confirmation and cancellation of requests
whose hold expired. Time is moved by setting timestamps in the database as a superuser."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import uuid

import asyncpg

from tests.cli.test_verify import _command
from tests.client import Api
from tests.services.support import (
    age_request,
    asked,
    expire_hold_of,
    fund,
    reported,
    step,
    stepped,
    transactions_of,
)
from timebank.config import Settings
from timebank.db import Database
from timebank.services.service import run_jobs_once


async def _run_jobs(settings: Settings, database: str) -> tuple[str, dict[str, int]]:
    run_id = "job-test-" + uuid.uuid4().hex
    db = await Database.connect(settings, database)
    try:
        return run_id, await run_jobs_once(db, run_id)
    finally:
        await db.close()


async def _status(api: Api, request_id: str) -> dict[str, object]:
    response = await api.get(f"/v1/service-requests/{request_id}", api.admin_token)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


async def test_a_report_left_for_7_days_is_confirmed_by_system(
    api: Api, owner: asyncpg.Connection, settings: Settings, database: str
) -> None:
    community = await api.community()
    elder = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    await fund(api, community, elder, 180)
    stale = await asked(api, elder.token, elder, 60)
    fresh = await asked(api, elder.token, elder, 60)
    disputed = await asked(api, elder.token, elder, 60)
    for request in (stale, fresh, disputed):
        await reported(api, request["id"], volunteer, 45)
    await stepped(api, disputed["id"], "dispute", elder.token, {"reason": "没来"})
    await age_request(owner, stale["id"], reported_days_ago=7.01)
    await age_request(owner, fresh["id"], reported_days_ago=6.9)
    await age_request(owner, disputed["id"], reported_days_ago=30)

    run_id, counts = await _run_jobs(settings, database)
    assert counts["service_requests_auto_confirmed"] >= 1

    confirmed = await _status(api, stale["id"])
    assert (confirmed["status"], confirmed["rating"]) == ("completed", None)
    assert (await _status(api, fresh["id"]))["status"] == "reported"
    assert (await _status(api, disputed["id"]))["status"] == "disputed"
    (transaction,) = await transactions_of(owner, stale["id"])
    body = (await api.get(f"/v1/transactions/{transaction['id']}", api.admin_token)).json()
    assert (body["created_by_name"], body["kind"], body["service_request_id"]) == (
        "system",
        "hold_capture",
        stale["id"],
    )
    assert await api.balance(volunteer.account_id) == 45
    elder_account = await api.account(elder.account_id)
    assert (elder_account["balance_minutes"], elder_account["held_minutes"]) == (180 - 45, 120)
    events = await owner.fetch(
        "select actor, action, request_id from audit_events where subject_id = any($1::uuid[]) order by seq",
        [uuid.UUID(stale["id"]), transaction["id"]],
    )
    by_system = [(e["action"], e["request_id"]) for e in events if e["actor"] == "system"]
    assert sorted(by_system) == [("service_request.completed", run_id), ("transaction.created", run_id)]
    # The person served comes back later: the request is already confirmed.
    late = await step(api, stale["id"], "confirm", elder.token, {"rating": 5})
    assert (late.status_code, late.json()["code"]) == (409, "invalid_transition")


async def test_an_open_or_assigned_request_whose_hold_expired_is_cancelled_by_system(
    api: Api, owner: asyncpg.Connection, settings: Settings, database: str
) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    await fund(api, community, elder, 240)
    unclaimed = await asked(api, elder.token, elder, 60)
    claimed = await asked(api, elder.token, elder, 60)
    started = await asked(api, elder.token, elder, 60)
    kept = await asked(api, elder.token, elder, 60)
    free = await asked(api, coordinator.token, elder, 60, "community")
    await stepped(api, claimed["id"], "assign", volunteer.token, {})
    await stepped(api, started["id"], "assign", volunteer.token, {})
    checked_in = await stepped(api, started["id"], "check-in", volunteer.token)
    # Check-in replaced the hold by one lasting a year: work done is never left unpaid.
    hold = (await api.get(f"/v1/holds/{checked_in['hold_id']}", api.admin_token)).json()
    assert dt.datetime.fromisoformat(hold["expires_at"]) > dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    for request in (unclaimed, claimed):
        await expire_hold_of(owner, request["id"])
    # Until the job runs, an expired request takes no step.
    refused = await step(api, unclaimed["id"], "assign", volunteer.token, {})
    assert (refused.status_code, refused.json()["code"]) == (409, "invalid_transition")

    run_id, counts = await _run_jobs(settings, database)
    assert counts["service_requests_expired"] >= 2
    for request in (unclaimed, claimed):
        after = await _status(api, request["id"])
        assert (after["status"], after["cancel_reason"]) == ("cancelled", "expired")
        resolution = await owner.fetchrow(
            "select status, resolved_by from hold_resolutions where hold_id = $1", uuid.UUID(request["hold_id"])
        )
        assert (resolution["status"], resolution["resolved_by"]) == ("expired", "system")
        event = await owner.fetchrow(
            "select actor, request_id from audit_events where subject_id = $1 and action = 'service_request.cancelled'",
            uuid.UUID(request["id"]),
        )
        assert (event["actor"], event["request_id"]) == ("system", run_id)
    assert (await _status(api, started["id"]))["status"] == "in_progress"
    assert (await _status(api, kept["id"]))["status"] == "open"
    assert (await _status(api, free["id"]))["status"] == "open"
    assert (await api.account(elder.account_id))["held_minutes"] == 120


async def test_timebank_jobs_run_once_for_cron(api: Api, owner: asyncpg.Connection, database: str) -> None:
    community = await api.community()
    elder = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    await fund(api, community, elder, 60)
    request = await asked(api, elder.token, elder, 60)
    await reported(api, request["id"], volunteer, 60)
    await age_request(owner, request["id"], reported_days_ago=8)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env |= {"TIMEBANK_DATABASE_URL": database, "TIMEBANK_LOG_FORMAT": "json"}
    process = await asyncio.create_subprocess_exec(
        *_command(), "jobs", "run-once", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "service_requests_auto_confirmed" in out.decode()
    assert (await _status(api, request["id"]))["status"] == "completed"
    assert await api.balance(volunteer.account_id) == 60
