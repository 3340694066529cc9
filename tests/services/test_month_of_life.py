"""A month of life in one community, over HTTP, as issue 10 tells it: every way hours are earned
and spent through service requests, each moving the hours once, by exactly the minutes confirmed,
in the transaction that names the request; the jobs included; verify agrees at the end."""

from __future__ import annotations

import uuid

import asyncpg

from tests.client import Api
from tests.services.support import (
    age_request,
    asked,
    expire_hold_of,
    fill_pool,
    fund,
    reported,
    stepped,
    transactions_of,
)
from timebank.config import Settings
from timebank.db import Database
from timebank.ledger.verify import verify
from timebank.services.service import run_jobs_once


async def test_a_month_of_life(api: Api, owner: asyncpg.Connection, settings: Settings, database: str) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator", name="网格员小张")
    wang = await api.member(community, "resident", name="王奶奶", grid="3")
    li = await api.member(community, "resident", name="李爷爷", grid="5")  # no phone: the coordinator acts for him
    zhou = await api.member(community, "volunteer", name="周彦芳")
    chen = await api.member(community, "volunteer", name="陈志强")
    await fund(api, community, wang, 300)
    await fund(api, community, li, 180)
    await fill_pool(api, community, 120)
    paid: dict[str, int] = {}

    async def confirmed_once(request_id: str, provider_id: str, minutes: int) -> None:
        (transaction,) = await transactions_of(owner, request_id)
        body = (await api.get(f"/v1/transactions/{transaction['id']}", coordinator.token)).json()
        assert body["service_request_id"] == request_id
        credited = [p["minutes"] for p in body["postings"] if p["minutes"] > 0]
        assert credited == [minutes]
        paid[provider_id] = paid.get(provider_id, 0) + minutes

    # 1. 王奶奶 asks for 助餐 with her own hours; 周 claims, checks in, reports 60; 5 stars.
    meal = await asked(api, wang.token, wang, 60)
    await reported(api, meal["id"], zhou, 60)
    done = await stepped(api, meal["id"], "confirm", wang.token, {"rating": 5, "comment": "饭菜很香"})
    assert (done["status"], done["rating"]) == ("completed", 5)
    await confirmed_once(meal["id"], zhou.id, 60)

    # 2. 李爷爷 has no phone: the coordinator asks and confirms for him (recorded on his behalf).
    cleaning = await asked(api, coordinator.token, li, 120, service_type="cleaning")
    await reported(api, cleaning["id"], chen, 120)
    await stepped(api, cleaning["id"], "confirm", coordinator.token, {"rating": 4})
    await confirmed_once(cleaning["id"], chen.id, 120)
    behalf = await owner.fetchval(
        "select on_behalf_of from audit_events where subject_id = $1 and action = 'service_request.completed'",
        uuid.UUID(cleaning["id"]),
    )
    assert str(behalf) == li.id

    # 3. Paid by the community (credited from issuance) and by the pool.
    escort = await asked(api, coordinator.token, li, 180, "community", service_type="medical_escort")
    await reported(api, escort["id"], zhou, 180)
    await stepped(api, escort["id"], "confirm", li.token, {"rating": 5})
    await confirmed_once(escort["id"], zhou.id, 180)
    bath = await asked(api, coordinator.token, wang, 60, "pool", service_type="bathing")
    await reported(api, bath["id"], chen, 60)
    await stepped(api, bath["id"], "confirm", wang.token, {"rating": 5})
    await confirmed_once(bath["id"], chen.id, 60)

    # 4. A dispute, settled by the coordinator with other minutes.
    chat = await asked(api, wang.token, wang, 60, service_type="companionship")
    await reported(api, chat["id"], chen, 60)
    await stepped(api, chat["id"], "dispute", wang.token, {"reason": "只聊了半小时"})
    await stepped(api, chat["id"], "confirm", coordinator.token, {"rating": 3, "minutes": 30})
    await confirmed_once(chat["id"], chen.id, 30)

    # 5. A cancellation (the hold released at once) and a withdrawal (open again for another volunteer).
    errand = await asked(api, wang.token, wang, 60, service_type="errands")
    await stepped(api, errand["id"], "cancel", wang.token, {"reason": "女儿回来了"})
    second_meal = await asked(api, wang.token, wang, 60)
    await stepped(api, second_meal["id"], "assign", zhou.token, {})
    reopened = await stepped(api, second_meal["id"], "cancel", zhou.token, {"reason": "临时出差"})
    assert (reopened["status"], reopened["provider_member_id"]) == ("open", None)
    await reported(api, second_meal["id"], chen, 45)

    # 6. The jobs: that report is never confirmed (auto-confirmed after 7 days); an unclaimed request expires.
    unclaimed = await asked(api, li.token, li, 60)
    await age_request(owner, second_meal["id"], reported_days_ago=8)
    await expire_hold_of(owner, unclaimed["id"])
    db = await Database.connect(settings, database)
    try:
        await run_jobs_once(db, "job-month-" + uuid.uuid4().hex)
    finally:
        await db.close()
    assert (await api.get(f"/v1/service-requests/{second_meal['id']}", wang.token)).json()["status"] == "completed"
    await confirmed_once(second_meal["id"], chen.id, 45)
    expired = (await api.get(f"/v1/service-requests/{unclaimed['id']}", li.token)).json()
    assert (expired["status"], expired["cancel_reason"]) == ("cancelled", "expired")
    for request in (errand, unclaimed):
        assert await transactions_of(owner, request["id"]) == []

    # The month's balances: each provider earned exactly what was confirmed; nothing is held any more.
    assert await api.balance(zhou.account_id) == paid[zhou.id] == 240
    assert await api.balance(chen.account_id) == paid[chen.id] == 255
    wang_account = await api.account(wang.account_id)
    assert (wang_account["balance_minutes"], wang_account["held_minutes"]) == (300 - 60 - 30 - 45, 0)
    li_account = await api.account(li.account_id)
    assert (li_account["balance_minutes"], li_account["held_minutes"]) == (180 - 120, 0)
    pool = await api.account(community.accounts["pool"])
    assert (pool["balance_minutes"], pool["held_minutes"]) == (60, 0)
    listed = await api.get(f"/v1/communities/{community.slug}/service-requests", coordinator.token, limit=50)
    statuses = sorted(item["status"] for item in listed.json()["items"])
    assert statuses == ["cancelled", "cancelled", *["completed"] * 6]
    report = await verify(owner, uuid.UUID(community.id))
    assert report.ok, report.violations
