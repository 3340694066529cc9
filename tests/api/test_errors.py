"""Every stable error code, provoked through the API, with its whole problem shape pinned.

Each rejected write must also leave the ledger exactly as it was and leave one audit event
(`write.rejected`, or `request.denied` for 401/403) under the request id the test sent.
`conflict_retry` and `unavailable` are not provoked here: they need colliding transactions or a
database that goes away, which the API alone cannot arrange deterministically.

The second half pins the ledger rules behind the 422s and 409s: overdraft, the pool's floor, the
balance cap, reversals under the same rules, and holds (available minutes, capture, expiry).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.client import Api, Community, Member
from tests.eventually import clock_passes, eventually
from tests.sql.support import concurrent_api
from timebank.config import Settings
from timebank.db import translate

PROBLEM_MEDIA_TYPE = "application/problem+json"


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The RFC 9457 shape: status, media type, and type/title/status/detail/code members."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert isinstance(body, dict), body
    for member in ("type", "title", "status", "detail", "code"):
        assert member in body, (member, body)
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["type"], str)
    assert body["type"].startswith(("https://", "http://")), body["type"]
    assert body["type"].rsplit("/", 1)[-1] == code, body["type"]
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert "Traceback" not in body["detail"]
    return body


def new_request_id() -> str:
    return "test-errors-" + uuid.uuid4().hex


def rid(request_id: str) -> dict[str, str]:
    """Extra headers for Api.post: our own X-Request-ID, to find the request's audit events."""
    return {"X-Request-ID": request_id}


async def ledger_state(owner: asyncpg.Connection, community: Community) -> tuple[Any, ...]:
    """Everything a write could change in a community's ledger."""
    accounts = await owner.fetch(
        "select id, balance_minutes, held_minutes, version from accounts where community_id = $1 order by id",
        uuid.UUID(community.id),
    )
    transactions = await owner.fetchval(
        "select count(*) from transactions where community_id = $1", uuid.UUID(community.id)
    )
    holds = await owner.fetchval("select count(*) from holds where community_id = $1", uuid.UUID(community.id))
    resolutions = await owner.fetchval(
        "select count(*) from hold_resolutions r join holds h on h.id = r.hold_id where h.community_id = $1",
        uuid.UUID(community.id),
    )
    return tuple(tuple(a) for a in accounts), transactions, holds, resolutions


async def principal_id(api: Api, token: str) -> str:
    response = await api.get("/v1/me", token)
    assert response.status_code == 200, response.text
    pid: str = response.json()["principal_id"]
    return pid


async def assert_audited(owner: asyncpg.Connection, request_id: str, action: str, code: str, actor: str) -> None:
    """Exactly one audit event for the request: the refusal, by the caller, naming the code.

    A refusal's event is written after the answer (a background task), so wait for it.
    """
    rows = await eventually(
        lambda: owner.fetch(
            "select actor, action, details::text as details from audit_events where request_id = $1 order by seq",
            request_id,
        ),
        what=f"the audit event of request {request_id}",
    )
    assert [(r["actor"], r["action"]) for r in rows] == [(actor, action)], [dict(r) for r in rows]
    assert json.loads(rows[0]["details"]).get("code") == code, rows[0]["details"]


def credit_body(member: Member, minutes: Any) -> dict[str, Any]:
    return {"member_id": member.id, "minutes": minutes, "service_date": "2026-11-01", "description": "served"}


async def hold(api: Api, member: Member, minutes: int, **extra: Any) -> dict[str, Any]:
    response = await api.post("/v1/holds", member.token, {"member_id": member.id, "minutes": minutes, **extra})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def funded(api: Api, community: Community, minutes: int, *roles: str) -> Member:
    member = await api.member(community, *(roles or ("volunteer", "resident")))
    response = await api.credit(member, minutes)
    assert response.status_code == 201, response.text
    return member


# --- one test per stable error code -------------------------------------------------------------


async def test_invalid_request(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post("/v1/credits", api.admin_token, credit_body(member, 1.5), **rid(request_id))
    body = assert_problem(response, 400, "invalid_request")
    assert [e["field"] for e in body["errors"]] == ["$.minutes"]
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "invalid_request", admin)


async def test_unauthenticated(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    before = await ledger_state(owner, community)
    for token in (None, "tb_not_a_known_token"):
        request_id = new_request_id()
        response = await api.post("/v1/credits", token, credit_body(member, 60), **rid(request_id))
        assert_problem(response, 401, "unauthenticated")
        assert await ledger_state(owner, community) == before
        await assert_audited(owner, request_id, "request.denied", "unauthenticated", "anonymous")


async def test_forbidden(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    actor = await principal_id(api, volunteer.token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    # A volunteer may be credited but may not credit anyone, not even itself.
    response = await api.post("/v1/credits", volunteer.token, credit_body(volunteer, 60), **rid(request_id))
    assert_problem(response, 403, "forbidden")
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "request.denied", "forbidden", actor)


async def test_not_found(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    await api.member(community, "volunteer")
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    ghost = str(uuid.uuid4())
    response = await api.post(
        "/v1/credits",
        api.admin_token,
        {"member_id": ghost, "minutes": 60, "service_date": "2026-11-01"},
        **rid(request_id),
    )
    assert_problem(response, 404, "not_found")
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "not_found", admin)
    # Reads answer not_found with the same shape.
    read = await api.get(f"/v1/accounts/{uuid.uuid4()}", api.admin_token)
    assert_problem(read, 404, "not_found")


async def test_idempotency_key_required(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post("/v1/credits", api.admin_token, credit_body(member, 60), key=None, **rid(request_id))
    assert_problem(response, 400, "idempotency_key_required")
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "idempotency_key_required", admin)


async def test_idempotency_key_reused(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    admin = await principal_id(api, api.admin_token)
    key = "reused-" + uuid.uuid4().hex
    first = await api.post("/v1/credits", api.admin_token, credit_body(member, 60), key=key)
    assert first.status_code == 201, first.text
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post("/v1/credits", api.admin_token, credit_body(member, 120), key=key, **rid(request_id))
    assert_problem(response, 409, "idempotency_key_reused")
    assert "idempotent-replayed" not in response.headers
    assert await ledger_state(owner, community) == before
    assert await api.balance(member.account_id) == 60
    await assert_audited(owner, request_id, "write.rejected", "idempotency_key_reused", admin)


async def test_community_exists(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community(unit_minutes=15)
    admin = await principal_id(api, api.admin_token)
    request_id = new_request_id()
    response = await api.post(
        "/v1/communities",
        api.admin_token,
        {"slug": community.slug, "name": "另一个社区", "policy": {"unit_minutes": 60}},
        key=None,
        **rid(request_id),
    )
    body = assert_problem(response, 409, "community_exists")
    assert body["detail"] == f"a community with slug {community.slug} already exists"
    assert [e["field"] for e in body["errors"]] == ["$.slug"]
    kept = await api.get(f"/v1/communities/{community.slug}", api.admin_token)
    assert kept.status_code == 200, kept.text
    assert kept.json()["id"] == community.id
    assert kept.json()["name"] == f"社区 {community.slug}"
    assert kept.json()["policy"]["unit_minutes"] == 15
    assert await owner.fetchval("select count(*) from communities where slug = $1", community.slug) == 1
    await assert_audited(owner, request_id, "write.rejected", "community_exists", admin)


async def test_community_exists_when_two_creations_race(owner: asyncpg.Connection) -> None:
    """Two creations can both pass the function's check; the unique index stops the second, in plain words."""
    slug = "race-" + uuid.uuid4().hex[:10]
    insert = "insert into communities (slug, name) values ($1, 'x')"
    transaction = owner.transaction()
    await transaction.start()
    try:
        await owner.execute(insert, slug)
        with pytest.raises(asyncpg.UniqueViolationError) as caught:
            await owner.execute(insert, slug)
    finally:
        await transaction.rollback()  # nothing stays behind
    error = translate(caught.value)
    assert error is not None
    problem = error.to_problem()
    assert (problem.status, problem.code) == (409, "community_exists")
    assert problem.detail == "a community with this slug already exists"
    assert [e.field for e in problem.errors or []] == ["$.slug"]


@pytest.mark.parametrize(("field", "value"), [("phone", "13912345678"), ("external_ref", "身份证-4401-0001")])
async def test_member_exists(api: Api, owner: asyncpg.Connection, field: str, value: str) -> None:
    community = await api.community()
    first = await api.member(community, "volunteer", **{field: value})
    admin = await principal_id(api, api.admin_token)
    before = await owner.fetchval("select count(*) from members where community_id = $1", uuid.UUID(community.id))
    request_id = new_request_id()
    response = await api.post(
        f"/v1/communities/{community.slug}/members",
        api.admin_token,
        {"display_name": "另一个人", "roles": ["resident"], field: value},
        key=None,
        **rid(request_id),
    )
    body = assert_problem(response, 409, "member_exists")
    assert body["detail"] == f"another member of this community already has this {field}"
    assert "_key" not in body["detail"]
    assert [e["field"] for e in body["errors"]] == [f"$.{field}"]
    after = await owner.fetchval("select count(*) from members where community_id = $1", uuid.UUID(community.id))
    assert after == before
    await assert_audited(owner, request_id, "write.rejected", "member_exists", admin)
    # The first member keeps it; another community may have a member with the same value.
    kept = await api.get(f"/v1/members/{first.id}", api.admin_token)
    assert kept.json()[field] == value
    elsewhere = await api.community()
    await api.member(elsewhere, "volunteer", **{field: value})


async def test_members_without_phone_or_external_ref_never_clash(api: Api) -> None:
    community = await api.community()
    for _ in range(3):
        await api.member(community, "resident")
    await api.member(community, "resident", phone="13800000001", external_ref="A-1")
    await api.member(community, "resident", phone="13800000002", external_ref="A-2")


async def test_member_exists_is_enforced_by_the_database(settings: Settings, database: str, admin_token: str) -> None:
    """Registrations racing with the same phone: exactly one is taken."""
    async with concurrent_api(settings, database, admin_token) as api:
        community = await api.community()
        responses = await asyncio.gather(
            *(
                api.post(
                    f"/v1/communities/{community.slug}/members",
                    admin_token,
                    {"display_name": f"同号{i}", "roles": ["resident"], "phone": "13700000000"},
                    key=None,
                )
                for i in range(6)
            )
        )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"member_exists"}


async def test_amount_not_multiple_of_unit(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community(unit_minutes=15)
    member = await api.member(community, "volunteer")
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post("/v1/credits", api.admin_token, credit_body(member, 20), **rid(request_id))
    body = assert_problem(response, 422, "amount_not_multiple_of_unit")
    assert body.get("unit_minutes") == 15
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "amount_not_multiple_of_unit", admin)


async def test_amount_out_of_range(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community(unit_minutes=15, max_transaction_minutes=120)
    member = await api.member(community, "volunteer")
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    for minutes in (0, -15, 135):
        request_id = new_request_id()
        response = await api.post("/v1/credits", api.admin_token, credit_body(member, minutes), **rid(request_id))
        body = assert_problem(response, 422, "amount_out_of_range")
        assert body.get("max_transaction_minutes") == 120
        assert await ledger_state(owner, community) == before
        await assert_audited(owner, request_id, "write.rejected", "amount_out_of_range", admin)
    # The maximum itself is allowed.
    assert (await api.credit(member, 120)).status_code == 201


async def test_insufficient_balance(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    resident = await funded(api, community, 45)
    actor = await principal_id(api, resident.token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post(
        "/v1/redemptions", resident.token, {"member_id": resident.id, "minutes": 60}, **rid(request_id)
    )
    body = assert_problem(response, 422, "insufficient_balance")
    assert body.get("account_id") == resident.account_id
    assert body.get("available_minutes") == 45
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "insufficient_balance", actor)


async def test_balance_cap_exceeded(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community(max_balance_minutes=120)
    member = await funded(api, community, 120, "volunteer")
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post("/v1/credits", api.admin_token, credit_body(member, 15), **rid(request_id))
    body = assert_problem(response, 422, "balance_cap_exceeded")
    assert body.get("account_id") == member.account_id
    assert body.get("cap_minutes") == 120
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "balance_cap_exceeded", admin)


async def test_not_a_volunteer(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    resident = await api.member(community, "resident")
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post("/v1/credits", api.admin_token, credit_body(resident, 60), **rid(request_id))
    assert_problem(response, 422, "not_a_volunteer")
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "not_a_volunteer", admin)


async def test_same_account(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await funded(api, community, 60)
    actor = await principal_id(api, member.token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post(
        "/v1/transfers",
        member.token,
        {"from_member_id": member.id, "to_member_id": member.id, "minutes": 30},
        **rid(request_id),
    )
    assert_problem(response, 422, "same_account")
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "same_account", actor)


async def test_cross_community_not_allowed(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    elsewhere = await api.community()
    member = await funded(api, community, 60)
    stranger = await api.member(elsewhere, "resident")
    actor = await principal_id(api, member.token)
    before, before_elsewhere = await ledger_state(owner, community), await ledger_state(owner, elsewhere)
    request_id = new_request_id()
    response = await api.post(
        "/v1/transfers",
        member.token,
        {"from_member_id": member.id, "to_member_id": stranger.id, "minutes": 30},
        **rid(request_id),
    )
    assert_problem(response, 422, "cross_community_not_allowed")
    assert await ledger_state(owner, community) == before
    assert await ledger_state(owner, elsewhere) == before_elsewhere
    await assert_audited(owner, request_id, "write.rejected", "cross_community_not_allowed", actor)


async def test_already_reversed(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    credit = await api.credit(member, 60)
    assert credit.status_code == 201, credit.text
    path = f"/v1/transactions/{credit.json()['id']}/reversal"
    first = await api.post(path, api.admin_token, {"reason": "entered twice"})
    assert first.status_code == 201, first.text
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post(path, api.admin_token, {"reason": "entered twice"}, **rid(request_id))
    body = assert_problem(response, 409, "already_reversed")
    assert body.get("reversed_by") == first.json()["id"]
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "already_reversed", admin)


async def test_cannot_reverse_reversal(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    credit = await api.credit(member, 60)
    reversal = await api.post(f"/v1/transactions/{credit.json()['id']}/reversal", api.admin_token, {"reason": "x"})
    assert reversal.status_code == 201, reversal.text
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post(
        f"/v1/transactions/{reversal.json()['id']}/reversal", api.admin_token, {"reason": "undo"}, **rid(request_id)
    )
    assert_problem(response, 409, "cannot_reverse_reversal")
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "cannot_reverse_reversal", admin)


async def test_hold_not_pending(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    resident = await funded(api, community, 120)
    placed = await hold(api, resident, 60)
    released = await api.post(f"/v1/holds/{placed['id']}/release", api.admin_token)
    assert released.status_code == 200, released.text
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post(f"/v1/holds/{placed['id']}/release", api.admin_token, **rid(request_id))
    body = assert_problem(response, 409, "hold_not_pending")
    assert body.get("hold_id") == placed["id"]
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "hold_not_pending", admin)


async def test_capture_exceeds_hold(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    resident = await funded(api, community, 120)
    placed = await hold(api, resident, 60)
    admin = await principal_id(api, api.admin_token)
    before = await ledger_state(owner, community)
    request_id = new_request_id()
    response = await api.post(f"/v1/holds/{placed['id']}/capture", api.admin_token, {"minutes": 75}, **rid(request_id))
    body = assert_problem(response, 422, "capture_exceeds_hold")
    assert body.get("held_minutes") == 60
    assert await ledger_state(owner, community) == before
    await assert_audited(owner, request_id, "write.rejected", "capture_exceeds_hold", admin)
    still = await api.get(f"/v1/holds/{placed['id']}", api.admin_token)
    assert still.json()["status"] == "pending"


# --- ledger rules -------------------------------------------------------------------------------


async def test_overdraft_lets_a_member_go_that_far_below_zero_and_no_further(api: Api) -> None:
    community = await api.community(overdraft_minutes=60)
    resident = await api.member(community, "resident")
    account = await api.account(resident.account_id)
    assert account["floor_minutes"] == -60
    spent = await api.post("/v1/redemptions", resident.token, {"member_id": resident.id, "minutes": 45})
    assert spent.status_code == 201, spent.text
    too_far = await api.post("/v1/redemptions", resident.token, {"member_id": resident.id, "minutes": 30})
    assert_problem(too_far, 422, "insufficient_balance")
    to_floor = await api.post("/v1/redemptions", resident.token, {"member_id": resident.id, "minutes": 15})
    assert to_floor.status_code == 201, to_floor.text
    assert await api.balance(resident.account_id) == -60
    beyond = await api.post("/v1/redemptions", resident.token, {"member_id": resident.id, "minutes": 15})
    assert_problem(beyond, 422, "insufficient_balance")
    assert await api.balance(resident.account_id) == -60


async def test_without_overdraft_a_member_never_goes_negative(api: Api) -> None:
    community = await api.community()
    resident = await api.member(community, "resident")
    assert (await api.account(resident.account_id))["floor_minutes"] == 0
    response = await api.post("/v1/redemptions", resident.token, {"member_id": resident.id, "minutes": 15})
    assert_problem(response, 422, "insufficient_balance")
    assert await api.balance(resident.account_id) == 0


async def test_pool_never_goes_below_zero(api: Api) -> None:
    community = await api.community()
    donor = await funded(api, community, 60)
    elder = await api.member(community, "resident")
    pool = community.accounts["pool"]
    assert (await api.account(pool))["floor_minutes"] == 0
    donation = await api.post(
        "/v1/transfers", donor.token, {"from_member_id": donor.id, "to_pool": True, "minutes": 30}
    )
    assert donation.status_code == 201, donation.text
    assert donation.json()["kind"] == "donation"
    grant = {"member_id": elder.id, "minutes": 45, "description": "独居老人"}
    too_much = await api.post("/v1/pool-grants", api.admin_token, grant)
    body = assert_problem(too_much, 422, "insufficient_balance")
    assert body.get("account_id") == pool
    assert await api.balance(pool) == 30
    assert await api.balance(elder.account_id) == 0
    exact = await api.post("/v1/pool-grants", api.admin_token, dict(grant, minutes=30))
    assert exact.status_code == 201, exact.text
    assert await api.balance(pool) == 0
    empty = await api.post("/v1/pool-grants", api.admin_token, dict(grant, minutes=15))
    assert_problem(empty, 422, "insufficient_balance")


async def test_cap_applies_to_every_movement_into_a_member(api: Api) -> None:
    community = await api.community(max_balance_minutes=120)
    full = await funded(api, community, 120)
    giver = await funded(api, community, 120)
    assert (await api.account(full.account_id))["cap_minutes"] == 120
    pool_filler = await api.post(
        "/v1/transfers", giver.token, {"from_member_id": giver.id, "to_pool": True, "minutes": 60}
    )
    assert pool_filler.status_code == 201, pool_filler.text

    gift = await api.post(
        "/v1/transfers", giver.token, {"from_member_id": giver.id, "to_member_id": full.id, "minutes": 15}
    )
    assert_problem(gift, 422, "balance_cap_exceeded")
    grant = await api.post("/v1/pool-grants", api.admin_token, {"member_id": full.id, "minutes": 15})
    assert_problem(grant, 422, "balance_cap_exceeded")
    paid = await api.post(
        "/v1/redemptions", giver.token, {"member_id": giver.id, "minutes": 15, "provider_member_id": full.id}
    )
    assert_problem(paid, 422, "balance_cap_exceeded")
    placed = await hold(api, giver, 15)
    captured = await api.post(f"/v1/holds/{placed['id']}/capture", api.admin_token, {"provider_member_id": full.id})
    assert_problem(captured, 422, "balance_cap_exceeded")

    assert await api.balance(full.account_id) == 120
    assert await api.balance(giver.account_id) == 60
    assert await api.balance(community.accounts["pool"]) == 60
    # The refused capture left the hold pending.
    assert (await api.get(f"/v1/holds/{placed['id']}", api.admin_token)).json()["status"] == "pending"


async def test_reversal_that_would_break_a_floor_is_refused(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    relative = await api.member(community, "resident")
    credit = await api.credit(volunteer, 60)
    assert credit.status_code == 201, credit.text
    credit_id = credit.json()["id"]
    gift = await api.post(
        "/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_member_id": relative.id, "minutes": 60}
    )
    assert gift.status_code == 201, gift.text
    reversal = await api.post(f"/v1/transactions/{credit_id}/reversal", api.admin_token, {"reason": "wrong person"})
    body = assert_problem(reversal, 422, "insufficient_balance")
    assert body.get("account_id") == volunteer.account_id
    assert await api.balance(volunteer.account_id) == 0
    original = await api.get(f"/v1/transactions/{credit_id}", api.admin_token)
    assert original.json()["reversed_by"] is None


async def test_reversal_that_would_break_the_cap_is_refused(api: Api) -> None:
    community = await api.community(max_balance_minutes=120)
    giver = await funded(api, community, 120, "volunteer")
    relative = await api.member(community, "resident")
    gift = await api.post(
        "/v1/transfers", giver.token, {"from_member_id": giver.id, "to_member_id": relative.id, "minutes": 60}
    )
    assert gift.status_code == 201, gift.text
    assert (await api.credit(giver, 60)).status_code == 201
    reversal = await api.post(f"/v1/transactions/{gift.json()['id']}/reversal", api.admin_token, {"reason": "x"})
    body = assert_problem(reversal, 422, "balance_cap_exceeded")
    assert body.get("account_id") == giver.account_id
    assert await api.balance(giver.account_id) == 120
    assert await api.balance(relative.account_id) == 60


async def test_reversal_of_a_hold_capture(api: Api) -> None:
    community = await api.community()
    resident = await funded(api, community, 120)
    placed = await hold(api, resident, 60)
    capture = await api.post(f"/v1/holds/{placed['id']}/capture", api.admin_token, {})
    assert capture.status_code == 201, capture.text
    assert capture.json()["kind"] == "hold_capture"
    assert capture.json()["hold_id"] == placed["id"]
    services = community.accounts["services"]
    assert await api.balance(services) == 60
    reversal = await api.post(
        f"/v1/transactions/{capture.json()['id']}/reversal", api.admin_token, {"reason": "服务取消"}
    )
    assert reversal.status_code == 201, reversal.text
    data = reversal.json()
    assert data["kind"] == "reversal"
    assert data["reverses"] == capture.json()["id"]
    assert sorted((p["account_id"], p["minutes"]) for p in data["postings"]) == sorted(
        [(resident.account_id, 60), (services, -60)]
    )
    again = await api.get(f"/v1/transactions/{capture.json()['id']}", api.admin_token)
    assert again.json()["reversed_by"] == data["id"]
    account = await api.account(resident.account_id)
    assert (account["balance_minutes"], account["held_minutes"], account["available_minutes"]) == (120, 0, 120)
    assert await api.balance(services) == 0
    # The hold stays captured: reversing the money does not reopen the booking.
    assert (await api.get(f"/v1/holds/{placed['id']}", api.admin_token)).json()["status"] == "captured"


async def test_holds_reduce_available_minutes(api: Api) -> None:
    community = await api.community()
    resident = await funded(api, community, 120)
    first = await hold(api, resident, 45)
    assert first["status"] == "pending"
    account = await api.account(resident.account_id)
    assert (account["balance_minutes"], account["held_minutes"], account["available_minutes"]) == (120, 45, 75)
    redeem = await api.post("/v1/redemptions", resident.token, {"member_id": resident.id, "minutes": 90})
    body = assert_problem(redeem, 422, "insufficient_balance")
    assert body.get("available_minutes") == 75
    second = await api.post("/v1/holds", resident.token, {"member_id": resident.id, "minutes": 90})
    assert_problem(second, 422, "insufficient_balance")
    gift_target = await api.member(community, "resident")
    gift = await api.post(
        "/v1/transfers", resident.token, {"from_member_id": resident.id, "to_member_id": gift_target.id, "minutes": 90}
    )
    assert_problem(gift, 422, "insufficient_balance")
    ok = await api.post("/v1/redemptions", resident.token, {"member_id": resident.id, "minutes": 75})
    assert ok.status_code == 201, ok.text
    account = await api.account(resident.account_id)
    assert (account["balance_minutes"], account["held_minutes"], account["available_minutes"]) == (45, 45, 0)


async def test_partial_capture_releases_the_rest(api: Api) -> None:
    community = await api.community()
    resident = await funded(api, community, 120)
    provider = await api.member(community, "volunteer")
    placed = await hold(api, resident, 60)
    capture = await api.post(
        f"/v1/holds/{placed['id']}/capture", api.admin_token, {"minutes": 30, "provider_member_id": provider.id}
    )
    assert capture.status_code == 201, capture.text
    assert sorted((p["account_id"], p["minutes"]) for p in capture.json()["postings"]) == sorted(
        [(resident.account_id, -30), (provider.account_id, 30)]
    )
    account = await api.account(resident.account_id)
    assert (account["balance_minutes"], account["held_minutes"], account["available_minutes"]) == (90, 0, 90)
    assert await api.balance(provider.account_id) == 30
    resolved = (await api.get(f"/v1/holds/{placed['id']}", api.admin_token)).json()
    assert resolved["status"] == "captured"
    assert resolved["transaction_id"] == capture.json()["id"]
    assert resolved["resolved_at"] is not None


async def test_a_hold_is_resolved_exactly_once(api: Api) -> None:
    community = await api.community()
    resident = await funded(api, community, 120)
    captured = await hold(api, resident, 30)
    released = await hold(api, resident, 30)
    assert (await api.post(f"/v1/holds/{captured['id']}/capture", api.admin_token, {})).status_code == 201
    assert (await api.post(f"/v1/holds/{released['id']}/release", api.admin_token)).status_code == 200
    for hold_id in (captured["id"], released["id"]):
        for action, body in (("capture", {}), ("capture", {"minutes": 15}), ("release", None)):
            response = await api.post(f"/v1/holds/{hold_id}/{action}", api.admin_token, body)
            problem = assert_problem(response, 409, "hold_not_pending")
            assert problem.get("hold_id") == hold_id
    account = await api.account(resident.account_id)
    assert (account["balance_minutes"], account["held_minutes"], account["available_minutes"]) == (90, 0, 90)


async def test_expires_at_in_the_past_is_refused(api: Api) -> None:
    community = await api.community()
    resident = await funded(api, community, 120)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    response = await api.post(
        "/v1/holds", resident.token, {"member_id": resident.id, "minutes": 30, "expires_at": past}
    )
    # Schema-valid (a zoned timestamp), refused by a rule that depends on the clock: 422.
    body = assert_problem(response, 422, "invalid_expiry")
    assert [e["field"] for e in body["errors"]] == ["$.expires_at"]
    account = await api.account(resident.account_id)
    assert (account["held_minutes"], account["available_minutes"]) == (0, 120)


async def test_an_expired_hold_stops_counting_and_cannot_be_captured(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    resident = await funded(api, community, 120)
    # Three seconds: room for a busy machine between placing the hold and the checks before its expiry.
    expires_at = datetime.now(UTC) + timedelta(seconds=3)
    placed = await hold(api, resident, 60, expires_at=expires_at.isoformat())
    assert (await api.account(resident.account_id))["available_minutes"] == 60
    # Before its expiry, the job leaves the hold alone.
    await owner.fetchval("select expire_holds($1, 1000)", "test-expiry-early-" + uuid.uuid4().hex)
    assert (
        await owner.fetchval("select count(*) from hold_resolutions where hold_id = $1", uuid.UUID(placed["id"])) == 0
    )
    assert (await api.get(f"/v1/holds/{placed['id']}", api.admin_token)).json()["status"] == "pending"

    # Wait (bounded) for the expiry to pass; no job runs in the tests, so reads alone must see it.
    await clock_passes(owner, expires_at)
    account = await api.account(resident.account_id)
    assert (account["balance_minutes"], account["held_minutes"], account["available_minutes"]) == (120, 0, 120)
    seen = (await api.get(f"/v1/holds/{placed['id']}", api.admin_token)).json()
    assert seen["status"] == "expired"

    capture = await api.post(f"/v1/holds/{placed['id']}/capture", api.admin_token, {})
    assert_problem(capture, 409, "hold_not_pending")
    release = await api.post(f"/v1/holds/{placed['id']}/release", api.admin_token)
    assert_problem(release, 409, "hold_not_pending")
    assert await api.balance(resident.account_id) == 120
    spend = await api.post("/v1/redemptions", resident.token, {"member_id": resident.id, "minutes": 120})
    assert spend.status_code == 201, spend.text

    # The expiry job then writes the resolution down, once, as the system.
    run_id = "test-expiry-" + uuid.uuid4().hex
    assert await owner.fetchval("select expire_holds($1, 1000)", run_id) >= 1
    resolution = await owner.fetchrow(
        "select status, resolved_by from hold_resolutions where hold_id = $1", uuid.UUID(placed["id"])
    )
    assert resolution is not None
    assert (resolution["status"], resolution["resolved_by"]) == ("expired", "system")
    assert await owner.fetchval("select held_minutes from accounts where id = $1", uuid.UUID(resident.account_id)) == 0
    events = await owner.fetch(
        "select actor, action from audit_events where request_id = $1 and subject_id = $2",
        run_id,
        uuid.UUID(placed["id"]),
    )
    assert [(e["actor"], e["action"]) for e in events] == [("system", "hold.expired")]
    final = (await api.get(f"/v1/holds/{placed['id']}", api.admin_token)).json()
    assert final["status"] == "expired"
    assert final["resolved_at"] is not None
