"""The hold expiry job: expired holds stop counting at expires_at; the job records it as `system`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from tests.client import Api
from tests.eventually import clock_passes
from timebank.config import Settings
from timebank.db import Database
from timebank.holds.service import expire_holds_once


async def test_expiry_counts_at_read_time_and_the_job_records_it(
    api: Api, owner: asyncpg.Connection, settings: Settings, database: str
) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    assert (
        await api.post("/v1/pool-grants", api.admin_token, {"member_id": elder.id, "minutes": 60})
    ).status_code == 422  # the pool is empty: nothing to grant yet
    volunteer = await api.member(community, "volunteer")
    assert (await api.credit(volunteer, 60)).status_code == 201
    gift = await api.post(
        "/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_member_id": elder.id, "minutes": 60}
    )
    assert gift.status_code == 201
    # Two seconds: room for a busy machine between placing the hold and reading it as pending.
    expires_at = datetime.now(UTC) + timedelta(seconds=2)
    hold = await api.post(
        "/v1/holds", elder.token, {"member_id": elder.id, "minutes": 45, "expires_at": expires_at.isoformat()}
    )
    assert hold.status_code == 201, hold.text
    hold_id = hold.json()["id"]
    assert (await api.account(elder.account_id))["available_minutes"] == 15
    # Expiry is about time itself: wait (bounded) for the database's clock to pass expires_at.
    await clock_passes(owner, expires_at)
    # Before any job ran: the hold reads as expired and no longer holds anything.
    assert (await api.get(f"/v1/holds/{hold_id}", elder.token)).json()["status"] == "expired"
    account = await api.account(elder.account_id)
    assert (account["held_minutes"], account["available_minutes"]) == (0, 60)
    capture = await api.post(f"/v1/holds/{hold_id}/capture", coordinator.token, {})
    assert capture.status_code == 409
    assert capture.json()["code"] == "hold_not_pending"

    db = await Database.connect(settings, database)
    try:
        await expire_holds_once(db, "job-test-expiry")
    finally:
        await db.close()
    resolution = await owner.fetchrow("select * from hold_resolutions where hold_id = $1", hold.json()["id"])
    assert resolution["status"] == "expired"
    assert resolution["resolved_by"] == "system"
    event = await owner.fetchrow(
        "select * from audit_events where subject_id = $1 and action = 'hold.expired'", hold_id
    )
    assert event["actor"] == "system"
    assert event["request_id"] == "job-test-expiry"
    assert await owner.fetchval("select held_minutes from accounts where id = $1", elder.account_id) == 0
    # Running the job again changes nothing.
    db = await Database.connect(settings, database)
    try:
        await expire_holds_once(db, "job-test-expiry-2")
    finally:
        await db.close()
    assert await owner.fetchval("select count(*) from audit_events where request_id = 'job-test-expiry-2'") == 0
    release = await api.post(f"/v1/holds/{hold_id}/release", coordinator.token)
    assert release.status_code == 409
