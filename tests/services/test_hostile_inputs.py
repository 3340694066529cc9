"""Hostile values in every new field of the service request bodies: 400 or 422 with the documented
code, and nothing written."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from tests.client import Api
from tests.services.support import asked, fund, soon, step, stepped


async def _writes(owner: asyncpg.Connection, community_id: str) -> tuple[Any, ...]:
    row = await owner.fetchrow(
        "select (select count(*) from service_requests where community_id = $1) as requests,"
        "       (select md5(coalesce(string_agg(r::text, ',' order by r.id), '')) from service_requests r"
        "         where r.community_id = $1) as digest,"
        "       (select count(*) from holds where community_id = $1) as holds,"
        "       (select count(*) from transactions where community_id = $1) as transactions",
        uuid.UUID(community_id),
    )
    assert row is not None
    return tuple(row.values())


CREATE_FAULTS: list[tuple[dict[str, Any], int, str]] = [
    ({"funding": "friends"}, 400, "invalid_request"),
    ({"funding": None}, 400, "invalid_request"),
    ({"service_type": "Meals"}, 400, "invalid_request"),
    ({"service_type": "m" * 41}, 400, "invalid_request"),
    ({"service_type": "bathing\u0000"}, 400, "invalid_request"),
    ({"minutes": 0}, 422, "amount_out_of_range"),
    ({"minutes": -60}, 422, "amount_out_of_range"),
    ({"minutes": 2**63}, 422, "amount_out_of_range"),
    ({"minutes": 1.5}, 400, "invalid_request"),
    ({"minutes": "60"}, 400, "invalid_request"),
    ({"scheduled_at": "2026-12-08T08:00:00"}, 400, "invalid_request"),
    ({"scheduled_at": "9999-12-31T23:59:59Z"}, 400, "invalid_request"),
    ({"scheduled_at": "2026-13-01T08:00:00Z"}, 400, "invalid_request"),
    # Offsets no time zone has, and zone names where an offset belongs.
    ({"scheduled_at": "2026-12-08T08:00:00+25:00"}, 400, "invalid_request"),
    ({"scheduled_at": "2026-12-08T08:00:00-99:99"}, 400, "invalid_request"),
    ({"scheduled_at": "2026-12-08T08:00:00 Mars/Olympus_Mons"}, 400, "invalid_request"),
    ({"scheduled_at": "2026-12-08T08:00:00+08:00[Asia/Shanghai]"}, 400, "invalid_request"),
    ({"scheduled_at": "2099-01-01T08:00:00Z"}, 422, "invalid_schedule"),
    ({"description": "x" * 501}, 400, "invalid_request"),
    ({"member_id": "not-a-uuid"}, 400, "invalid_request"),
    ({"status": "completed"}, 400, "invalid_request"),
]


@pytest.mark.parametrize(("fault", "status", "code"), CREATE_FAULTS, ids=lambda v: str(v)[:40])
async def test_hostile_asks_are_refused_and_write_nothing(
    api: Api, owner: asyncpg.Connection, fault: dict[str, Any], status: int, code: str
) -> None:
    community = await api.community()
    elder = await api.member(community, "resident")
    await fund(api, community, elder, 120)
    before = await _writes(owner, community.id)
    body = {"member_id": elder.id, "service_type": "meals", "minutes": 60, "scheduled_at": soon(), "funding": "own"}
    response = await api.post("/v1/service-requests", elder.token, body | fault)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert await _writes(owner, community.id) == before


STEP_FAULTS: list[tuple[str, Any, int, str]] = [
    ("assign", {"provider_member_id": "x"}, 400, "invalid_request"),
    ("assign", {"provider_member_id": None, "extra": 1}, 400, "invalid_request"),
    ("assign", [], 400, "invalid_request"),
    ("check-in", {"at": "now"}, 400, "invalid_request"),
    ("report", {}, 400, "invalid_request"),
    ("report", {"minutes": 0}, 422, "amount_out_of_range"),
    ("report", {"minutes": 50}, 422, "amount_not_multiple_of_unit"),
    ("report", {"minutes": 120}, 422, "capture_exceeds_hold"),
    ("confirm", {}, 400, "invalid_request"),
    ("confirm", {"rating": 0}, 400, "invalid_request"),
    ("confirm", {"rating": 6}, 400, "invalid_request"),
    ("confirm", {"rating": 4.5}, 400, "invalid_request"),
    ("confirm", {"rating": 5, "comment": "x" * 501}, 400, "invalid_request"),
    ("confirm", {"rating": 5, "minutes": -15}, 422, "amount_out_of_range"),
    ("dispute", {"reason": ""}, 400, "invalid_request"),
    ("dispute", {"reason": "x" * 501}, 400, "invalid_request"),
    ("cancel", {}, 400, "invalid_request"),
    ("cancel", {"reason": "\u0000"}, 400, "invalid_request"),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), STEP_FAULTS, ids=lambda v: str(v)[:40])
async def test_hostile_steps_are_refused_and_write_nothing(
    api: Api, owner: asyncpg.Connection, name: str, body: Any, status: int, code: str
) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    await fund(api, community, elder, 60)
    request = await asked(api, elder.token, elder, 60)
    # Each step is tried from the status it starts from, so only its body can be at fault.
    if name in ("check-in", "report", "confirm", "dispute"):
        await stepped(api, request["id"], "assign", volunteer.token, {})
    if name in ("report", "confirm", "dispute"):
        await stepped(api, request["id"], "check-in", volunteer.token)
    if name in ("confirm", "dispute"):
        await stepped(api, request["id"], "report", volunteer.token, {"minutes": 60})
    before = await _writes(owner, community.id)
    response = await step(api, request["id"], name, coordinator.token, body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert await _writes(owner, community.id) == before
