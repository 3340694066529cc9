"""Eligibility over HTTP: each refusal is 422 with its code (in Chinese on request), audited as a
rejected write, remembered under its Idempotency-Key, and moves nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.client import Api, Community, Member


async def policy(api: Api, community: Community, **changes: Any) -> None:
    response = await api.patch(f"/v1/communities/{community.slug}/policy", api.admin_token, changes)
    assert response.status_code == 200, response.text


async def refused_and_audited(
    api: Api, owner: asyncpg.Connection, path: str, token: str, body: dict[str, Any], code: str
) -> dict[str, Any]:
    """POST twice with one key: the same 422 both times, one write.rejected event, nothing moved."""
    key, request_id = uuid.uuid4().hex, "elig-" + uuid.uuid4().hex
    before = await owner.fetchval("select count(*) from transactions")
    first = await api.post(path, token, body, key=key, **{"X-Request-ID": request_id})
    assert first.status_code == 422, first.text
    assert first.json()["code"] == code
    again = await api.post(path, token, body, key=key)
    assert (again.status_code, again.json()["code"]) == (422, code)
    assert again.headers.get("idempotent-replayed") == "true"
    events = await owner.fetch("select action, details::text from audit_events where request_id = $1", request_id)
    assert [e["action"] for e in events] == ["write.rejected"]
    assert f'"{code}"' in events[0]["details"]
    assert await owner.fetchval("select count(*) from transactions") == before
    chinese = await api.post(path, token, body, **{"Accept-Language": "zh-CN"})
    assert chinese.json()["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese.json()["detail"]), chinese.json()
    problem: dict[str, Any] = first.json()
    return problem


async def test_credits_need_the_volunteer_age_on_the_service_date(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    young = await api.member(community, "volunteer", birth_date="2008-11-02")
    nobody_knows = await api.member(community, "volunteer")
    await policy(api, community, volunteer_min_age=18)

    def credit(member: Member, day: str) -> dict[str, Any]:
        return {"member_id": member.id, "minutes": 30, "service_date": day, "description": "助餐"}

    problem = await refused_and_audited(
        api, owner, "/v1/credits", coordinator.token, credit(young, "2026-11-01"), "not_eligible"
    )
    assert "at least 18" in problem["detail"]
    assert "is 17 on 2026-11-01" in problem["detail"]
    problem = await refused_and_audited(
        api, owner, "/v1/credits", coordinator.token, credit(nobody_knows, "2026-11-01"), "not_eligible"
    )
    assert "no birth_date" in problem["detail"]
    # The 18th birthday itself.
    accepted = await api.post("/v1/credits", coordinator.token, credit(young, "2026-11-02"))
    assert accepted.status_code == 201, accepted.text
    assert await api.balance(young.account_id) == 30


async def test_redemptions_and_holds_need_the_redeem_age_today_in_the_community(
    api: Api, owner: asyncpg.Connection
) -> None:
    zone = "Pacific/Kiritimati"
    community = await api.community(time_zone=zone)
    today = dt.datetime.now(ZoneInfo(zone)).date()
    sixty_today = today.replace(year=today.year - 60)
    sixty_tomorrow = (today + dt.timedelta(days=1)).replace(year=today.year - 60)
    elder = await api.member(community, "resident", birth_date=sixty_today.isoformat())
    almost = await api.member(community, "resident", birth_date=sixty_tomorrow.isoformat())
    giver = await api.member(community, "volunteer")
    assert (await api.credit(giver, 240)).status_code == 201
    for member in (elder, almost):
        gift = {"from_member_id": giver.id, "to_member_id": member.id, "minutes": 60}
        assert (await api.post("/v1/transfers", giver.token, gift)).status_code == 201
    await policy(api, community, redeem_min_age=60)

    redemption = {"member_id": almost.id, "minutes": 15, "description": "理发"}
    problem = await refused_and_audited(api, owner, "/v1/redemptions", almost.token, redemption, "not_eligible")
    assert f"is 59 on {today.isoformat()}" in problem["detail"]
    hold = {"member_id": almost.id, "minutes": 15, "description": "理发"}
    await refused_and_audited(api, owner, "/v1/holds", almost.token, hold, "not_eligible")
    # Sixty today, where the community is.
    for path in ("/v1/redemptions", "/v1/holds"):
        ok = await api.post(path, elder.token, {"member_id": elder.id, "minutes": 15, "description": "理发"})
        assert ok.status_code == 201, ok.text
    assert await api.balance(almost.account_id) == 60


async def test_gifts_go_only_to_relatives_when_the_policy_says_so(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    son = await api.member(community, "volunteer")
    mother = await api.member(community, "resident")
    neighbour = await api.member(community, "resident")
    assert (await api.credit(son, 240)).status_code == 201
    await policy(api, community, gift_scope="relatives")
    await owner.execute(
        "insert into relatives (member_id, relative_member_id, relation, created_by)"
        " values ($1, $2, 'parent', 'test'), ($2, $1, 'child', 'test')",
        uuid.UUID(son.id),
        uuid.UUID(mother.id),
    )
    gift = {"from_member_id": son.id, "to_member_id": neighbour.id, "minutes": 15}
    problem = await refused_and_audited(api, owner, "/v1/transfers", son.token, gift, "not_a_relative")
    assert [e["field"] for e in problem["errors"]] == ["$.to_member_id"]
    to_mother = await api.post("/v1/transfers", son.token, gift | {"to_member_id": mother.id})
    assert to_mother.status_code == 201, to_mother.text
    donation = await api.post("/v1/transfers", son.token, {"from_member_id": son.id, "to_pool": True, "minutes": 15})
    assert donation.status_code == 201, donation.text
    assert await api.balance(neighbour.account_id) == 0


@pytest.mark.parametrize("eligible", [False, True])
async def test_pool_grants_need_pool_eligible_when_required(
    api: Api, owner: asyncpg.Connection, eligible: bool
) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    donor = await api.member(community, "volunteer")
    elder = await api.member(community, "resident")
    assert (await api.credit(donor, 120)).status_code == 201
    donation = {"from_member_id": donor.id, "to_pool": True, "minutes": 120}
    assert (await api.post("/v1/transfers", donor.token, donation)).status_code == 201
    await policy(api, community, pool_requires_eligibility=True)
    grant = {"member_id": elder.id, "minutes": 30, "description": "孤寡老人"}
    if not eligible:
        await refused_and_audited(api, owner, "/v1/pool-grants", coordinator.token, grant, "not_eligible")
        return
    await owner.execute("update members set pool_eligible = true where id = $1", uuid.UUID(elder.id))
    granted = await api.post("/v1/pool-grants", coordinator.token, grant)
    assert granted.status_code == 201, granted.text
