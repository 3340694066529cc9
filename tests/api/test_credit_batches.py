"""Activity crediting: POST /v1/credit-batches credits up to 500 volunteers in one database
transaction, all or nothing, naming every failing item; idempotent; one audit event per transaction.
Who may call it is pinned by the role matrix (tests/api/test_permissions.py, rows credit_batch and
credit_batch.get)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from tests.client import Api, Community
from timebank.ledger.verify import verify

SERVICE_DATE = "2026-11-01"


async def register(api: Api, community: Community, count: int, *roles: str, **optional: str) -> list[str]:
    """Members registered without tokens (faster); their ids."""
    ids = []
    for n in range(count):
        response = await api.post(
            f"/v1/communities/{community.slug}/members",
            api.admin_token,
            {"display_name": f"志愿者{n}", "roles": list(roles or ("volunteer",)), **optional},
            key=None,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def batch(community: Community, credits: list[tuple[str, int]], **extra: Any) -> dict[str, Any]:
    return {
        "community": community.slug,
        "service_date": SERVICE_DATE,
        "description": "重阳节敬老活动",
        "credits": [{"member_id": m, "minutes": n} for m, n in credits],
        **extra,
    }


async def counts(owner: asyncpg.Connection, community: Community) -> tuple[int, int, int]:
    row = await owner.fetchrow(
        """select (select count(*) from transactions where community_id = $1),
                  (select count(*) from audit_events where community_id = $1 and action = 'transaction.created'),
                  (select count(*) from credit_batches where community_id = $1)""",
        uuid.UUID(community.id),
    )
    assert row is not None
    return row[0], row[1], row[2]


async def test_five_hundred_volunteers_are_credited_by_one_request(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    volunteers = await register(api, community, 500)
    body = batch(community, [(m, 60 + 15 * (i % 4)) for i, m in enumerate(volunteers)])
    key = uuid.uuid4().hex
    created = await api.post("/v1/credit-batches", coordinator.token, body, key=key)
    assert created.status_code == 201, created.text[:2000]
    answer = created.json()
    assert created.headers["location"] == f"/v1/credit-batches/{answer['id']}"
    assert answer["community"] == community.slug
    assert len(answer["transactions"]) == 500
    assert answer["total_minutes"] == sum(60 + 15 * (i % 4) for i in range(500))
    for i, (member_id, transaction) in enumerate(zip(volunteers, answer["transactions"], strict=True)):
        assert transaction["kind"] == "credit"
        assert transaction["service_date"] == SERVICE_DATE
        assert transaction["created_by"] == answer["created_by"]
        minutes = 60 + 15 * (i % 4)
        accounts = {p["account_id"]: p["minutes"] for p in transaction["postings"]}
        assert accounts[community.accounts["issuance"]] == -minutes
        assert sorted(accounts.values()) == [-minutes, minutes]
        if i % 100 == 0:
            member = (await api.get(f"/v1/members/{member_id}", api.admin_token)).json()
            assert accounts[member["account_id"]] == minutes
            assert await api.balance(member["account_id"]) == minutes
    # One transaction.created event per transaction, each naming the batch.
    events = await owner.fetch(
        "select subject_id, details::text from audit_events where community_id = $1 and action = 'transaction.created'",
        uuid.UUID(community.id),
    )
    assert sorted(str(e["subject_id"]) for e in events) == sorted(t["id"] for t in answer["transactions"])
    assert {json.loads(e["details"])["credit_batch_id"] for e in events} == {answer["id"]}
    # A retry replays; reading the batch gives the same answer.
    again = await api.post("/v1/credit-batches", coordinator.token, body, key=key)
    assert (again.status_code, again.headers.get("idempotent-replayed")) == (201, "true")
    assert again.json() == answer
    assert (await api.get(f"/v1/credit-batches/{answer['id']}", coordinator.token)).json() == answer
    assert await counts(owner, community) == (500, 500, 1)
    report = await verify(owner, uuid.UUID(community.id))
    assert report.ok, report.violations
    reused = await api.post("/v1/credit-batches", coordinator.token, body | {"description": "别的活动"}, key=key)
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")


async def test_one_bad_item_credits_nobody_and_every_bad_item_is_named(api: Api, owner: asyncpg.Connection) -> None:
    community, other = await api.community(max_balance_minutes=600), await api.community()
    good, young, full = await register(api, community, 3)
    [resident] = await register(api, community, 1, "resident")
    [stranger] = await register(api, other, 1)
    await api.patch(f"/v1/communities/{community.slug}/policy", api.admin_token, {"volunteer_min_age": 18})
    await owner.execute(
        "update members set birth_date = '2000-01-01' where id = any($1::uuid[])", [uuid.UUID(good), uuid.UUID(full)]
    )
    await owner.execute("update members set birth_date = '2008-11-02' where id = $1", uuid.UUID(young))
    credit = await api.post(
        "/v1/credits", api.admin_token, {"member_id": full, "minutes": 600, "service_date": SERVICE_DATE}
    )
    assert credit.status_code == 201, credit.text
    before = await counts(owner, community)
    missing = str(uuid.uuid4())
    items = [
        (good, 60),  # 0 fine
        (missing, 60),  # 1 no such member
        (stranger, 60),  # 2 another community's volunteer
        (resident, 60),  # 3 not a volunteer
        (young, 60),  # 4 17 on the service date
        (full, 15),  # 5 above the cap
    ]
    body = batch(community, items)
    key, request_id = uuid.uuid4().hex, "batch-" + uuid.uuid4().hex
    refused = await api.post("/v1/credit-batches", api.admin_token, body, key=key, **{"X-Request-ID": request_id})
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "not_a_member"
    assert [(e["index"], e["member_id"], e["code"]) for e in problem["errors"]] == [
        (1, missing, "not_a_member"),
        (2, stranger, "not_a_member"),
        (3, resident, "not_a_volunteer"),
        (4, young, "not_eligible"),
        (5, full, "balance_cap_exceeded"),
    ]
    assert [e["field"] for e in problem["errors"]] == [f"$.credits[{i}]" for i in range(1, 6)]
    assert "5 of 6 credits" in problem["detail"]
    assert await counts(owner, community) == before
    events = await owner.fetch("select action from audit_events where request_id = $1", request_id)
    assert [e["action"] for e in events] == ["write.rejected"]
    # Remembered: the same answer again, in Chinese on request, with the codes unchanged.
    again = await api.post("/v1/credit-batches", api.admin_token, body, key=key, **{"Accept-Language": "zh-CN"})
    assert (again.status_code, again.headers.get("idempotent-replayed")) == (422, "true")
    assert [e["code"] for e in again.json()["errors"]] == [e["code"] for e in problem["errors"]]
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e["message"]) for e in again.json()["errors"])
    # Amount rules, item by item; the first failing item gives the problem's code.
    amounts = batch(community, [(good, 20), (young, 0), (full, 15)])
    refused = await api.post("/v1/credit-batches", api.admin_token, amounts)
    assert refused.json()["code"] == "amount_not_multiple_of_unit"
    assert [e["code"] for e in refused.json()["errors"]] == [
        "amount_not_multiple_of_unit",
        "amount_out_of_range",
        "balance_cap_exceeded",
    ]
    # Without the bad items, the rest is credited; the 18th birthday is old enough.
    ok = await api.post("/v1/credit-batches", api.admin_token, batch(community, [(good, 60)]))
    assert ok.status_code == 201, ok.text
    birthday = batch(community, [(young, 60)]) | {"service_date": "2026-11-02"}
    assert (await api.post("/v1/credit-batches", api.admin_token, birthday)).status_code == 201


@pytest.mark.parametrize(
    "shape",
    ["empty", "501 items", "missing community", "no credits", "unknown field", "date", "bad slug", "fraction"],
)
async def test_malformed_batches_are_refused_and_nothing_is_written(
    api: Api, owner: asyncpg.Connection, shape: str
) -> None:
    community = await api.community()
    [volunteer] = await register(api, community, 1)
    body = batch(community, [(volunteer, 15)])
    if shape == "empty":
        body["credits"] = []
    elif shape == "501 items":
        body["credits"] = [{"member_id": str(uuid.uuid4()), "minutes": 15} for _ in range(501)]
    elif shape == "fraction":
        body["credits"][0]["minutes"] = 15.5
    elif shape == "missing community":
        del body["community"]
    elif shape == "no credits":
        del body["credits"]
    elif shape == "unknown field":
        body["credits"][0]["grid"] = "1"
    elif shape == "date":
        body["service_date"] = "2026-13-01"
    else:
        body["community"] = "Not A Slug"
    before = await counts(owner, community)
    response = await api.post("/v1/credit-batches", api.admin_token, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert await counts(owner, community) == before


async def test_batch_level_rules(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    [volunteer] = await register(api, community, 1)
    future = await api.post(
        "/v1/credit-batches", api.admin_token, batch(community, [(volunteer, 15)]) | {"service_date": "2999-01-01"}
    )
    assert (future.status_code, future.json()["code"]) == (422, "service_date_in_future")
    nowhere = await api.post(
        "/v1/credit-batches",
        api.admin_token,
        batch(community, [(volunteer, 15)]) | {"community": "nowhere-" + uuid.uuid4().hex[:8]},
    )
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, "not_found")
    assert await counts(owner, community) == (0, 0, 0)
    missing = await api.get(f"/v1/credit-batches/{uuid.uuid4()}", api.admin_token)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


async def test_a_batch_and_single_credits_keep_the_ledger_sound(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    volunteers = await register(api, community, 5)
    for member_id in volunteers[:2]:
        single = await api.post(
            "/v1/credits", api.admin_token, {"member_id": member_id, "minutes": 30, "service_date": SERVICE_DATE}
        )
        assert single.status_code == 201
    created = await api.post("/v1/credit-batches", api.admin_token, batch(community, [(m, 45) for m in volunteers]))
    assert created.status_code == 201, created.text
    report = await verify(owner, uuid.UUID(community.id))
    assert report.ok, report.violations
    issuance = await api.account(community.accounts["issuance"])
    assert issuance["balance_minutes"] == -(2 * 30 + 5 * 45)


@pytest.mark.parametrize(
    ("minutes", "code"),
    [(2**63, "amount_out_of_range"), (-(2**63) - 1, "amount_out_of_range"), (0, "amount_out_of_range")],
)
async def test_amounts_beyond_any_range_are_refused_per_item(
    api: Api, owner: asyncpg.Connection, minutes: int, code: str
) -> None:
    community = await api.community()
    volunteers = await register(api, community, 2)
    body = batch(community, [(volunteers[0], 15), (volunteers[1], minutes)])
    response = await api.post("/v1/credit-batches", api.admin_token, body)
    assert (response.status_code, response.json()["code"]) == (422, code), response.text
    assert [(e["index"], e["code"]) for e in response.json()["errors"]] == [(1, code)]
    assert await counts(owner, community) == (0, 0, 0)


async def test_a_member_twice_in_one_batch_is_named_and_nothing_is_credited(
    api: Api, owner: asyncpg.Connection
) -> None:
    community = await api.community()
    first, second = await register(api, community, 2)
    body = batch(community, [(first, 15), (second, 15), (first, 30), (first, 45)])
    response = await api.post("/v1/credit-batches", api.admin_token, body)
    assert (response.status_code, response.json()["code"]) == (422, "duplicate_member"), response.text
    assert [(e["index"], e["member_id"], e["code"]) for e in response.json()["errors"]] == [
        (2, first, "duplicate_member"),
        (3, first, "duplicate_member"),
    ]
    assert await counts(owner, community) == (0, 0, 0)
