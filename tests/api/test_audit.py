"""Every state change writes exactly one audit event, in the same transaction, naming actor and request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.client import Api
from tests.eventually import eventually


async def _events(owner: asyncpg.Connection, request_id: str) -> list[asyncpg.Record]:
    """The request's audit events, once there are any: a refusal's is written after the answer."""
    return await eventually(
        lambda: owner.fetch("select * from audit_events where request_id = $1 order by seq", request_id),
        what=f"audit events of {request_id}",
    )


async def _post(api: Api, path: str, token: str, body: Any = None, **kwargs: Any) -> tuple[Any, str]:
    request_id = "audit-" + uuid.uuid4().hex
    response = await api.post(path, token, body, **{"X-Request-ID": request_id}, **kwargs)
    return response, request_id


async def test_each_write_leaves_one_event(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator_member = await api.member(community, "coordinator")
    volunteer = await api.member(community, "volunteer")
    elder = await api.member(community, "resident")
    coordinator = coordinator_member.token
    elder_principal = await owner.fetchval("select id from principals where member_id = $1", elder.id)
    expiry = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    steps: list[tuple[str, str, Any, str, str]] = [
        ("/v1/credits", coordinator, {"member_id": volunteer.id, "minutes": 240, "service_date": "2026-11-01"},
         "transaction.created", "transaction"),
        ("/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_member_id": elder.id, "minutes": 120},
         "transaction.created", "transaction"),
        ("/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_pool": True, "minutes": 60},
         "transaction.created", "transaction"),
        ("/v1/pool-grants", coordinator, {"member_id": elder.id, "minutes": 30}, "transaction.created", "transaction"),
        ("/v1/redemptions", coordinator, {"member_id": elder.id, "minutes": 30}, "transaction.created", "transaction"),
        ("/v1/holds", elder.token, {"member_id": elder.id, "minutes": 30, "expires_at": expiry},
         "hold.placed", "hold"),
    ]  # fmt: skip
    for path, token, body, action, subject_type in steps:
        response, request_id = await _post(api, path, token, body)
        assert response.status_code == 201, response.text
        events = await _events(owner, request_id)
        assert [e["action"] for e in events] == [action], path
        assert events[0]["subject_type"] == subject_type
        assert str(events[0]["subject_id"]) == response.json()["id"]
        assert events[0]["community_id"] == uuid.UUID(community.id)
    # A coordinator redeeming for a resident acts on its behalf, and the event says so.
    redemption = await owner.fetchrow(
        "select * from audit_events e join transactions t on t.id = e.subject_id"
        " where t.kind = 'redemption' and t.community_id = $1",
        uuid.UUID(community.id),
    )
    assert redemption["on_behalf_of"] == uuid.UUID(elder.id)
    assert redemption["actor"] != str(elder_principal)

    hold = await owner.fetchval("select id from holds where member_id = $1", elder.id)
    capture, request_id = await _post(api, f"/v1/holds/{hold}/capture", coordinator, {"minutes": 15})
    assert capture.status_code == 201, capture.text
    assert sorted(e["action"] for e in await _events(owner, request_id)) == ["hold.captured", "transaction.created"]

    reversal, request_id = await _post(
        api, f"/v1/transactions/{capture.json()['id']}/reversal", coordinator, {"reason": "录入错误"}
    )
    assert reversal.status_code == 201, reversal.text
    assert [e["action"] for e in await _events(owner, request_id)] == ["transaction.created"]


async def test_admin_actions_are_audited(api: Api, owner: asyncpg.Connection) -> None:
    slug = "c-" + uuid.uuid4().hex[:12]
    response, request_id = await _post(
        api, "/v1/communities", api.admin_token, {"slug": slug, "name": "审计"}, key=None
    )
    assert response.status_code == 201
    assert [e["action"] for e in await _events(owner, request_id)] == ["community.created"]
    policy_id = "audit-" + uuid.uuid4().hex
    changed = await api.client.put(
        f"/v1/communities/{slug}/policy",
        headers=api.auth(api.admin_token) | {"X-Request-ID": policy_id},
        json={
            "unit_minutes": 30,
            "max_transaction_minutes": 600,
            "max_balance_minutes": 6000,
            "overdraft_minutes": 0,
            "time_zone": "Asia/Urumqi",
            "volunteer_min_age": None,
            "redeem_min_age": None,
            "gift_scope": "community",
            "pool_requires_eligibility": False,
        },
    )
    assert changed.status_code == 200, changed.text
    events = await _events(owner, policy_id)
    assert [e["action"] for e in events] == ["policy.changed"]
    assert '"unit_minutes": 15' in events[0]["details"]
    assert '"unit_minutes": 30' in events[0]["details"]
    assert '"time_zone": "Asia/Urumqi"' in events[0]["details"]


async def test_rejected_write_leaves_one_event_and_no_effect(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    elder = await api.member(community, "resident")
    before = await owner.fetchval("select count(*) from transactions where community_id = $1", uuid.UUID(community.id))
    response, request_id = await _post(
        api, "/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_member_id": elder.id, "minutes": 15}
    )
    assert response.status_code == 422
    events = await _events(owner, request_id)
    assert [e["action"] for e in events] == ["write.rejected"]
    assert '"insufficient_balance"' in events[0]["details"]
    after = await owner.fetchval("select count(*) from transactions where community_id = $1", uuid.UUID(community.id))
    assert after == before


async def test_audit_list_filters_and_pages(api: Api) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    volunteer = await api.member(community, "volunteer")
    for _ in range(3):
        assert (await api.credit(volunteer, 15, token=coordinator.token)).status_code == 201
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"community": community.slug, "action": "transaction.created", "limit": 2}
        page = await api.get("/v1/audit-events", coordinator.token, **params | ({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        seen.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 3
    assert all(e["community"] == community.slug and e["action"] == "transaction.created" for e in seen)
    assert all(e["request_id"] and e["actor"] for e in seen)
    mine = await api.get("/v1/audit-events", coordinator.token, actor=seen[0]["actor"])
    assert {e["actor"] for e in mine.json()["items"]} == {seen[0]["actor"]}
    later = await api.get("/v1/audit-events", coordinator.token, after=seen[-1]["at"], action="transaction.created")
    assert later.json()["items"] == []
