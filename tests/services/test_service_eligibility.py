"""Eligibility where a service request moves or books hours (the people helpers of 60_people.sql):
the provider's age on the day the service is for, the member's redeem age for own hours, the pool's
eligibility flag for pool hours. Each refusal is 422 not_eligible, audited and remembered."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import asyncpg

from tests.api.test_eligibility import policy, refused_and_audited
from tests.client import Api
from tests.services.support import asked, fill_pool, fund, soon

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_a_provider_must_be_old_enough_on_the_service_day_in_the_communitys_time_zone(
    api: Api, owner: asyncpg.Connection
) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    today = dt.datetime.now(SHANGHAI).date()
    # Eighteen the day after tomorrow, in Shanghai.
    birthday = today + dt.timedelta(days=2)
    young = await api.member(community, "volunteer", birth_date=birthday.replace(year=birthday.year - 18).isoformat())
    await fund(api, community, elder, 120)
    await policy(api, community, volunteer_min_age=18)
    tomorrow_noon = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(12), SHANGHAI)
    # Half past midnight on the birthday in Shanghai is still the day before in UTC.
    birthday_night = dt.datetime.combine(birthday, dt.time(0, 30), SHANGHAI)
    assert birthday_night.astimezone(dt.UTC).date() == birthday - dt.timedelta(days=1)
    early = await asked(api, elder.token, elder, 60, scheduled_at=tomorrow_noon.isoformat())
    on_time = await asked(api, elder.token, elder, 60, scheduled_at=birthday_night.isoformat())

    problem = await refused_and_audited(
        api, owner, f"/v1/service-requests/{early['id']}/assign", young.token, {}, "not_eligible"
    )
    assert "at least 18" in problem["detail"]
    await refused_and_audited(
        api, owner, f"/v1/service-requests/{early['id']}/assign", coordinator.token,
        {"provider_member_id": young.id}, "not_eligible",
    )  # fmt: skip
    claimed = await api.post(f"/v1/service-requests/{on_time['id']}/assign", young.token, {})
    assert claimed.status_code == 200, claimed.text


async def test_own_hours_need_the_redeem_age_community_hours_do_not(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    unknown_age = await api.member(community, "resident")
    young = await api.member(community, "resident", birth_date="1990-01-01")
    old = await api.member(community, "resident", birth_date="1950-01-01")
    for member in (unknown_age, young, old):
        await fund(api, community, member, 60)
    await policy(api, community, redeem_min_age=60)

    def body(member_id: str, funding: str = "own") -> dict[str, object]:
        return {
            "member_id": member_id,
            "service_type": "meals",
            "minutes": 60,
            "scheduled_at": soon(),
            "funding": funding,
        }

    problem = await refused_and_audited(
        api, owner, "/v1/service-requests", unknown_age.token, body(unknown_age.id), "not_eligible"
    )
    assert "birth_date" in problem["detail"]
    await refused_and_audited(api, owner, "/v1/service-requests", coordinator.token, body(young.id), "not_eligible")
    assert (await api.account(young.account_id))["held_minutes"] == 0
    assert (await api.post("/v1/service-requests", old.token, body(old.id))).status_code == 201
    community_paid = await api.post("/v1/service-requests", coordinator.token, body(young.id, "community"))
    assert community_paid.status_code == 201, community_paid.text


async def test_pool_hours_need_the_pool_eligible_flag_when_the_policy_asks(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    await fill_pool(api, community, 120)
    await policy(api, community, pool_requires_eligibility=True)

    def body() -> dict[str, object]:
        return {
            "member_id": elder.id,
            "service_type": "meals",
            "minutes": 60,
            "scheduled_at": soon(),
            "funding": "pool",
        }

    await refused_and_audited(api, owner, "/v1/service-requests", coordinator.token, body(), "not_eligible")
    assert (await api.account(community.accounts["pool"]))["held_minutes"] == 0
    await owner.execute("update members set pool_eligible = true where id = $1", uuid.UUID(elder.id))
    assert (await api.post("/v1/service-requests", coordinator.token, body())).status_code == 201
