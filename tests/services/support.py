"""Helpers for the service request tests: members with hours, requests and their steps over HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.client import Api, Community, Member


def soon(hours: float = 2) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def fund(api: Api, community: Community, member: Member, minutes: int) -> None:
    """Give `member` hours: a volunteer is credited and gifts them (residents cannot be credited)."""
    donor = await api.member(community, "volunteer", name="捐赠者")
    assert (await api.credit(donor, minutes)).status_code == 201
    gift = await api.post(
        "/v1/transfers", donor.token, {"from_member_id": donor.id, "to_member_id": member.id, "minutes": minutes}
    )
    assert gift.status_code == 201, gift.text


async def fill_pool(api: Api, community: Community, minutes: int) -> None:
    donor = await api.member(community, "volunteer", name="捐赠者")
    assert (await api.credit(donor, minutes)).status_code == 201
    donation = await api.post(
        "/v1/transfers", donor.token, {"from_member_id": donor.id, "to_pool": True, "minutes": minutes}
    )
    assert donation.status_code == 201, donation.text


async def ask(
    api: Api, token: str, member: Member, minutes: int | None = 60, funding: str = "own", **extra: Any
) -> Any:
    body: dict[str, Any] = {"member_id": member.id, "service_type": "meals", "scheduled_at": soon(), "funding": funding}
    if minutes is not None:
        body["minutes"] = minutes
    return await api.post("/v1/service-requests", token, body | extra)


async def asked(
    api: Api, token: str, member: Member, minutes: int = 60, funding: str = "own", **extra: Any
) -> dict[str, Any]:
    response = await ask(api, token, member, minutes, funding, **extra)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def step(api: Api, request_id: str, name: str, token: str, body: Any = None, key: str | None = "auto") -> Any:
    return await api.post(f"/v1/service-requests/{request_id}/{name}", token, body, key=key)


async def stepped(api: Api, request_id: str, name: str, token: str, body: Any = None) -> dict[str, Any]:
    response = await step(api, request_id, name, token, body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def reported(api: Api, request_id: str, provider: Member, minutes: int = 60) -> dict[str, Any]:
    """Claimed by the provider, checked in and reported."""
    await stepped(api, request_id, "assign", provider.token, {})
    await stepped(api, request_id, "check-in", provider.token)
    return await stepped(api, request_id, "report", provider.token, {"minutes": minutes})


async def transactions_of(owner: asyncpg.Connection, request_id: str) -> list[asyncpg.Record]:
    return await owner.fetch(
        "select * from transactions where service_request_id = $1 order by seq", uuid.UUID(request_id)
    )


async def age_request(owner: asyncpg.Connection, request_id: str, *, reported_days_ago: float) -> None:
    """Move a reported request's report into the past, as a superuser (the clock itself cannot be moved)."""
    await owner.execute(
        "update service_requests set checked_out_at = now() - make_interval(secs => $2) where id = $1",
        uuid.UUID(request_id),
        reported_days_ago * 86400,
    )


async def expire_hold_of(owner: asyncpg.Connection, request_id: str) -> None:
    """Move a request's hold expiry into the past, as a superuser with triggers off (holds are append-only)."""
    async with owner.transaction():
        await owner.execute("set local session_replication_role = replica")
        await owner.execute(
            "update holds set expires_at = now() - interval '1 second'"
            " where id = (select hold_id from service_requests where id = $1)",
            uuid.UUID(request_id),
        )
