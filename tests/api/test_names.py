"""Names instead of ids: statement counterparties, who created a transaction, who acted in the audit trail.

Names are read when answering, from members as they are then; the stored answer of an idempotent
write keeps the name it gave.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.client import Api, Community, Member
from tests.sql.support import concurrent_api
from timebank.config import Settings
from timebank.db import Database


async def ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def entries(api: Api, member: Member, token: str | None = None, **params: Any) -> list[dict[str, Any]]:
    page = await ok(await api.get(f"/v1/accounts/{member.account_id}/entries", token or api.admin_token, **params), 200)
    items: list[dict[str, Any]] = page["items"]
    return items


async def test_entries_name_the_other_side(api: Api) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator", name="王丽华")
    volunteer = await api.member(community, "volunteer", name="周彦芳")
    elder = await api.member(community, "resident", name="李秀英")
    provider = await api.member(community, "volunteer", name="张伟")
    await ok(await api.credit(volunteer, 120))
    credit = await ok(
        await api.post(
            "/v1/credits",
            coordinator.token,
            {"member_id": volunteer.id, "minutes": 60, "service_date": "2026-11-20", "description": "助餐"},
        )
    )
    await ok(
        await api.post(
            "/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_member_id": elder.id, "minutes": 30}
        )
    )
    await ok(
        await api.post(
            "/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_pool": True, "minutes": 15}
        )
    )
    await ok(await api.post("/v1/pool-grants", coordinator.token, {"member_id": elder.id, "minutes": 15}))
    await ok(await api.post("/v1/redemptions", coordinator.token, {"member_id": elder.id, "minutes": 15}))
    hold = await ok(await api.post("/v1/holds", elder.token, {"member_id": elder.id, "minutes": 15}))
    await ok(await api.post(f"/v1/holds/{hold['id']}/capture", coordinator.token, {"provider_member_id": provider.id}))
    await ok(await api.post(f"/v1/transactions/{credit['id']}/reversal", coordinator.token, {"reason": "录错"}))

    def shape(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (e["kind"], e["minutes"], e["counterparty_member_id"], e["counterparty_name"], e["service_date"])
            for e in items
        ]

    assert shape(await entries(api, volunteer, volunteer.token)) == [
        ("reversal", -60, None, "issuance", None),
        ("donation", -15, None, "pool", None),
        ("transfer", -30, elder.id, "李秀英", None),
        ("credit", 60, None, "issuance", "2026-11-20"),
        ("credit", 120, None, "issuance", "2026-11-01"),
    ]
    assert shape(await entries(api, elder, elder.token)) == [
        ("hold_capture", -15, provider.id, "张伟", None),
        ("redemption", -15, None, "services", None),
        ("pool_grant", 15, None, "pool", None),
        ("transfer", 30, volunteer.id, "周彦芳", None),
    ]
    # The system accounts' statements name the members on the other side.
    issuance = (
        await ok(await api.get(f"/v1/accounts/{community.accounts['issuance']}/entries", api.admin_token), 200)
    )["items"]
    assert [(e["minutes"], e["counterparty_name"]) for e in issuance] == [
        (60, "周彦芳"),
        (-60, "周彦芳"),
        (-120, "周彦芳"),
    ]
    # Every entry has exactly the documented members.
    assert set(issuance[0]) == {
        "transaction_id",
        "kind",
        "minutes",
        "balance_after_minutes",
        "description",
        "service_date",
        "counterparty_member_id",
        "counterparty_name",
        "created_at",
    }


async def test_entries_of_a_transaction_with_more_than_two_postings_name_no_one(
    api: Api, owner: asyncpg.Connection
) -> None:
    community = await api.community()
    anna, ben = await api.member(community, "volunteer"), await api.member(community, "volunteer")
    # The API makes only two-posting transactions; the ledger allows more (issuance to two members at once).
    creator = await owner.fetchval("select id from principals where kind = 'admin' limit 1")
    async with owner.transaction():
        tx = await owner.fetchval(
            "insert into transactions (community_id, kind, description, service_date, created_at, created_by,"
            " request_id) values ($1, 'credit', 'group service', '2026-11-15', clock_timestamp(), $2, 'test')"
            " returning id",
            uuid.UUID(community.id),
            creator,
        )
        legs = [(community.accounts["issuance"], -30), (anna.account_id, 15), (ben.account_id, 15)]
        for account, minutes in legs:
            await owner.execute(
                "with moved as (update accounts set balance_minutes = balance_minutes + $2, version = version + 1,"
                "                      updated_at = clock_timestamp() where id = $1"
                "               returning id, balance_minutes, version, updated_at)"
                " insert into postings (transaction_id, account_id, minutes, balance_after_minutes, account_version,"
                "                       created_at)"
                " select $3, id, $2, balance_minutes, version, updated_at from moved",
                uuid.UUID(account),
                minutes,
                tx,
            )
    [entry] = await entries(api, anna)
    assert (entry["transaction_id"], entry["minutes"], entry["service_date"]) == (str(tx), 15, "2026-11-15")
    assert (entry["counterparty_member_id"], entry["counterparty_name"]) == (None, None)


async def test_a_statement_page_is_one_query_whatever_its_size(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    elder = await api.member(community, "resident", name="孙玉珍")
    for _ in range(30):
        await ok(await api.credit(volunteer, 30))
        await ok(
            await api.post(
                "/v1/transfers",
                volunteer.token,
                {"from_member_id": volunteer.id, "to_member_id": elder.id, "minutes": 15},
            )
        )
    db: Database = api.client.app.state.db
    calls: list[str] = []
    run = db.run

    def counting(work: Callable[[Any], Awaitable[Any]]) -> Awaitable[Any]:
        calls.append("query")
        return run(work)

    monkeypatch.setattr(db, "run", counting)
    sizes = {}
    for limit in (1, 60):
        calls.clear()
        items = await entries(api, volunteer, volunteer.token, limit=limit)
        assert len(items) == limit
        sizes[limit] = len(calls)
    # The account's visibility, then the page with every name: the same two round trips for 1 entry or 60.
    assert sizes == {1: 2, 60: 2}
    assert {e["counterparty_name"] for e in items} == {"孙玉珍", "issuance"}


async def test_transactions_carry_their_creators_name_everywhere(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator", name="王丽华")
    volunteer = await api.member(community, "volunteer", name="周彦芳")
    by_admin = await ok(await api.credit(volunteer, 60))
    key = uuid.uuid4().hex
    body = {"member_id": volunteer.id, "minutes": 30, "service_date": "2026-11-30", "description": "陪聊"}
    by_coordinator = await ok(await api.post("/v1/credits", coordinator.token, body, key=key))
    gift = await ok(
        await api.post(
            "/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_pool": True, "minutes": 15}
        )
    )
    assert [by_admin["created_by_name"], by_coordinator["created_by_name"], gift["created_by_name"]] == [
        "admin",
        "王丽华",
        "周彦芳",
    ]
    # A POST's answer and a later GET agree, as does the community's list.
    for answer in (by_admin, by_coordinator, gift):
        assert await ok(await api.get(f"/v1/transactions/{answer['id']}", api.admin_token), 200) == answer
    listed = await ok(await api.get(f"/v1/communities/{community.slug}/transactions", api.admin_token), 200)
    assert listed["items"] == [gift, by_coordinator, by_admin]

    # The coordinator's display name changes (corrected in the register): reads use the new name, a
    # retry of the write replays the answer as it was given.
    await owner.execute("update members set display_name = '王丽华（网格长）' where id = $1", uuid.UUID(coordinator.id))
    now = await ok(await api.get(f"/v1/transactions/{by_coordinator['id']}", api.admin_token), 200)
    assert now["created_by_name"] == "王丽华（网格长）"
    replay = await api.post("/v1/credits", coordinator.token, body, key=key)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == by_coordinator


async def test_reversals_captures_and_replays_are_named(api: Api) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator", name="网格员小陈")
    elder = await api.member(community, "volunteer", "resident", name="赵磊")
    credit = await ok(await api.credit(elder, 60))
    hold = await ok(await api.post("/v1/holds", elder.token, {"member_id": elder.id, "minutes": 15}))
    key = uuid.uuid4().hex
    capture = await ok(await api.post(f"/v1/holds/{hold['id']}/capture", coordinator.token, {}, key=key))
    replayed = await api.post(f"/v1/holds/{hold['id']}/capture", coordinator.token, {}, key=key)
    assert replayed.headers["idempotent-replayed"] == "true"
    reversal = await ok(
        await api.post(f"/v1/transactions/{capture['id']}/reversal", coordinator.token, {"reason": "错"})
    )
    assert capture["created_by_name"] == replayed.json()["created_by_name"] == reversal["created_by_name"]
    assert reversal["created_by_name"] == "网格员小陈"
    # The original now shows its reversal; its creator is still the one who captured it.
    original = await ok(await api.get(f"/v1/transactions/{capture['id']}", elder.token), 200)
    assert (original["created_by_name"], original["reversed_by"]) == ("网格员小陈", reversal["id"])
    assert (await ok(await api.get(f"/v1/transactions/{credit['id']}", elder.token), 200))["created_by_name"] == "admin"


async def test_coalesced_credits_carry_the_name_too(settings: Settings, database: str, admin_token: str) -> None:
    async with concurrent_api(settings, database, admin_token) as api:
        community = await api.community()
        coordinator = await api.member(community, "coordinator", name="协调员甲")
        volunteers = [await api.member(community, "volunteer") for _ in range(3)]
        coalescer = api.app.state.write_batches.coalescer("post_credit")
        posted = coalescer.posted
        responses = await asyncio.gather(
            *(
                api.post(
                    "/v1/credits",
                    coordinator.token,
                    {"member_id": v.id, "minutes": 15, "service_date": "2026-11-01"},
                )
                for v in volunteers * 4
            )
        )
        answers = [await ok(r) for r in responses]
        assert coalescer.posted > posted  # some went through post_credits
        assert {a["created_by_name"] for a in answers} == {"协调员甲"}
        for answer in answers:
            assert await ok(await api.get(f"/v1/transactions/{answer['id']}", admin_token), 200) == answer


async def audit_page(api: Api, community: Community, **params: Any) -> list[dict[str, Any]]:
    page = await ok(
        await api.get("/v1/audit-events", api.admin_token, community=community.slug, limit=500, **params), 200
    )
    items: list[dict[str, Any]] = page["items"]
    return items


async def test_audit_events_name_their_actor(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator", name="王丽华")
    volunteer = await api.member(community, "volunteer", name="周彦芳")
    await ok(await api.credit(volunteer, 30, token=coordinator.token))
    await ok(
        await api.post(
            "/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_pool": True, "minutes": 15}
        )
    )
    # An auditor of the community tries to credit: refused, and the refusal is in the trail.
    auditor = "tb_test_auditor_" + secrets.token_urlsafe(24)
    await owner.fetchval(
        "select create_principal_token('auditor', $1, $2, 'test')",
        community.slug,
        hashlib.sha256(auditor.encode()).digest(),
    )
    assert (await api.credit(volunteer, 15, token=auditor)).status_code == 403
    # The command line issues a token: recorded as `system`.
    await owner.fetchval(
        "select issue_member_token(null, 'test-cli', $1, $2)", uuid.UUID(volunteer.id), secrets.token_bytes(32)
    )
    # An event whose actor is no principal (say, one from before a principal was removed).
    ghost = str(uuid.uuid4())
    await owner.execute(
        "select _audit($1, null, 'write.rejected', null, null, $2, 'test-ghost', '{}'::jsonb)",
        ghost,
        uuid.UUID(community.id),
    )
    names = {(e["action"], e["actor_name"]) for e in await audit_page(api, community)}
    assert {
        ("community.created", "admin"),
        ("member.created", "admin"),
        ("transaction.created", "王丽华"),
        ("transaction.created", "周彦芳"),
        ("request.denied", "auditor"),
        ("token.issued", "system"),
        ("write.rejected", "anonymous"),
    } <= names
    [ghostly] = await audit_page(api, community, actor=ghost)
    assert ghostly["actor_name"] == "anonymous"
    # The caller without a token: `anonymous` too.
    request_id = "names-" + uuid.uuid4().hex
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    denied = await api.client.get("/v1/me", headers={"X-Request-ID": request_id})
    assert denied.status_code == 401
    await poll_event(owner, request_id)
    anonymous = await ok(await api.get("/v1/audit-events", api.admin_token, actor="anonymous", after=since), 200)
    assert {e["actor_name"] for e in anonymous["items"]} == {"anonymous"}
    assert request_id in {e["request_id"] for e in anonymous["items"]}


async def poll_event(owner: asyncpg.Connection, request_id: str) -> None:
    """Refusals are audited after the answer is sent: wait (bounded) until the event is there."""
    for _ in range(200):
        if await owner.fetchval("select count(*) from audit_events where request_id = $1", request_id):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no audit event for {request_id}")
