"""Service requests over HTTP: the whole state machine, each funding, each refusal and who may do what."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.client import Api
from tests.services.support import (
    ask,
    asked,
    fill_pool,
    fund,
    reported,
    step,
    stepped,
    transactions_of,
)


async def _events(owner: asyncpg.Connection, request_id: str) -> list[str]:
    rows = await owner.fetch(
        "select action from audit_events where subject_id = $1 order by seq", uuid.UUID(request_id)
    )
    return [r["action"] for r in rows]


async def test_own_hours_a_month_of_life_moves_the_hours_once(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    elder = await api.member(community, "resident", name="王奶奶")
    volunteer = await api.member(community, "volunteer", name="小李")
    await fund(api, community, elder, 120)

    created = await ask(api, elder.token, elder, 60)
    assert created.status_code == 201, created.text
    request = created.json()
    assert created.headers["location"] == f"/v1/service-requests/{request['id']}"
    assert (request["status"], request["funding"], request["member_name"]) == ("open", "own", "王奶奶")
    assert request["service_type"] == "meals"
    hold = (await api.get(f"/v1/holds/{request['hold_id']}", elder.token)).json()
    assert (hold["status"], hold["minutes"]) == ("pending", 60)
    assert (await api.account(elder.account_id))["available_minutes"] == 60

    claimed = await stepped(api, request["id"], "assign", volunteer.token, {})
    assert (claimed["status"], claimed["provider_member_id"], claimed["provider_name"]) == (
        "assigned", volunteer.id, "小李",
    )  # fmt: skip
    checked_in = await stepped(api, request["id"], "check-in", volunteer.token)
    assert checked_in["status"] == "in_progress"
    assert checked_in["checked_in_at"]
    done = await stepped(api, request["id"], "report", volunteer.token, {"minutes": 60})
    assert (done["status"], done["reported_minutes"]) == ("reported", 60)
    assert done["checked_out_at"]
    confirmed = await stepped(api, request["id"], "confirm", elder.token, {"rating": 5, "comment": "很好"})
    assert (confirmed["status"], confirmed["rating"], confirmed["comment"]) == ("completed", 5, "很好")

    transaction = (await api.get(f"/v1/transactions/{confirmed['transaction_id']}", elder.token)).json()
    assert transaction["service_request_id"] == request["id"]
    assert transaction["kind"] == "hold_capture"
    assert sorted((p["account_id"], p["minutes"]) for p in transaction["postings"]) == sorted(
        [(elder.account_id, -60), (volunteer.account_id, 60)]
    )
    assert [t["id"] for t in await transactions_of(owner, request["id"])] == [uuid.UUID(transaction["id"])]
    elder_account = await api.account(elder.account_id)
    assert (elder_account["balance_minutes"], elder_account["held_minutes"]) == (60, 0)
    assert await api.balance(volunteer.account_id) == 60
    assert await _events(owner, request["id"]) == [
        "service_request.created",
        "service_request.assigned",
        "service_request.checked_in",
        "service_request.reported",
        "service_request.completed",
    ]
    # Nothing moves twice: a second confirmation is a refused step.
    again = await step(api, request["id"], "confirm", elder.token, {"rating": 4})
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    assert again.json()["current_status"] == "completed"
    assert len(await transactions_of(owner, request["id"])) == 1


async def test_minutes_default_to_the_service_type(api: Api) -> None:
    community = await api.community()
    elder = await api.member(community, "resident")
    await fund(api, community, elder, 180)
    response = await ask(api, elder.token, elder, None, service_type="medical_escort")
    assert response.status_code == 201, response.text
    assert response.json()["minutes"] == 180


async def test_community_funding_credits_the_provider_from_issuance(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    refused = await ask(api, elder.token, elder, 60, "community")
    assert refused.status_code == 403
    request = await asked(api, coordinator.token, elder, 60, "community")
    assert request["hold_id"] is None
    await reported(api, request["id"], volunteer, 45)
    confirmed = await stepped(api, request["id"], "confirm", coordinator.token, {"rating": 4})
    transaction = (await api.get(f"/v1/transactions/{confirmed['transaction_id']}", api.admin_token)).json()
    assert (transaction["kind"], transaction["service_request_id"]) == ("credit", request["id"])
    assert sorted((p["account_id"], p["minutes"]) for p in transaction["postings"]) == sorted(
        [(community.accounts["issuance"], -45), (volunteer.account_id, 45)]
    )
    assert await api.balance(volunteer.account_id) == 45
    assert await api.balance(elder.account_id) == 0
    audit = await owner.fetchrow(
        "select actor, on_behalf_of from audit_events where subject_id = $1 and action = 'service_request.created'",
        uuid.UUID(request["id"]),
    )
    assert (audit["actor"], str(audit["on_behalf_of"])) == (str(await _principal(owner, coordinator.id)), elder.id)


async def _principal(owner: asyncpg.Connection, member_id: str) -> uuid.UUID:
    principal: uuid.UUID = await owner.fetchval("select id from principals where member_id = $1", uuid.UUID(member_id))
    return principal


async def test_pool_funding_holds_the_pools_hours(api: Api) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    empty = await ask(api, coordinator.token, elder, 60, "pool")
    assert empty.status_code == 422
    assert empty.json()["code"] == "insufficient_balance"
    await fill_pool(api, community, 90)
    assert (await ask(api, elder.token, elder, 60, "pool")).status_code == 403
    request = await asked(api, coordinator.token, elder, 60, "pool")
    pool = await api.account(community.accounts["pool"])
    assert (pool["balance_minutes"], pool["held_minutes"]) == (90, 60)
    await reported(api, request["id"], volunteer, 60)
    await stepped(api, request["id"], "confirm", elder.token, {"rating": 5})
    pool = await api.account(community.accounts["pool"])
    assert (pool["balance_minutes"], pool["held_minutes"]) == (30, 0)
    assert await api.balance(volunteer.account_id) == 60
    assert await api.balance(elder.account_id) == 0


async def test_a_dispute_settled_by_a_coordinator_with_other_minutes(api: Api) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    await fund(api, community, elder, 60)
    request = await asked(api, elder.token, elder, 60)
    await reported(api, request["id"], volunteer, 60)
    disputed = await stepped(api, request["id"], "dispute", elder.token, {"reason": "只来了半小时"})
    assert (disputed["status"], disputed["dispute_reason"]) == ("disputed", "只来了半小时")
    # The member served cannot settle it, nor change the minutes.
    assert (await step(api, request["id"], "confirm", elder.token, {"rating": 2})).status_code == 403
    assert (await step(api, request["id"], "cancel", elder.token, {"reason": "算了"})).status_code == 403
    settled = await stepped(api, request["id"], "confirm", coordinator.token, {"rating": 3, "minutes": 30})
    assert settled["status"] == "completed"
    assert await api.balance(volunteer.account_id) == 30
    elder_account = await api.account(elder.account_id)
    assert (elder_account["balance_minutes"], elder_account["held_minutes"]) == (30, 0)


async def test_a_dispute_cancelled_by_a_coordinator_releases_the_hold(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    await fund(api, community, elder, 60)
    request = await asked(api, elder.token, elder, 60)
    await reported(api, request["id"], volunteer, 60)
    await stepped(api, request["id"], "dispute", coordinator.token, {"reason": "没有来"})
    cancelled = await stepped(api, request["id"], "cancel", coordinator.token, {"reason": "服务未完成"})
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "服务未完成")
    assert (await api.account(elder.account_id))["available_minutes"] == 60
    assert await api.balance(volunteer.account_id) == 0
    assert await transactions_of(owner, request["id"]) == []


async def test_cancelling_releases_the_hold_in_the_same_transaction(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    elder = await api.member(community, "resident")
    await fund(api, community, elder, 60)
    request = await asked(api, elder.token, elder, 60)
    cancelled = await stepped(api, request["id"], "cancel", elder.token, {"reason": "改天"})
    assert cancelled["status"] == "cancelled"
    hold = await owner.fetchrow(
        "select r.status, r.resolved_at, (select xmin::text from service_requests where id = $2) as request_xmin,"
        "       (select xmin::text from hold_resolutions where hold_id = $1) as hold_xmin"
        "  from hold_resolutions r where r.hold_id = $1",
        uuid.UUID(request["hold_id"]),
        uuid.UUID(request["id"]),
    )
    assert hold["status"] == "released"
    assert hold["request_xmin"] == hold["hold_xmin"]  # one database transaction wrote both
    assert (await api.account(elder.account_id))["available_minutes"] == 60
    again = await step(api, request["id"], "cancel", elder.token, {"reason": "改天"})
    assert again.status_code == 409
    assert again.json()["current_status"] == "cancelled"


async def test_a_volunteer_withdrawing_opens_the_request_again(api: Api) -> None:
    community = await api.community()
    elder = await api.member(community, "resident")
    first = await api.member(community, "volunteer")
    second = await api.member(community, "volunteer")
    await fund(api, community, elder, 60)
    request = await asked(api, elder.token, elder, 60)
    await stepped(api, request["id"], "assign", first.token, {})
    taken = await step(api, request["id"], "assign", second.token, {})
    assert taken.status_code == 409
    assert taken.json()["current_status"] == "assigned"
    withdrawn = await stepped(api, request["id"], "cancel", first.token, {"reason": "临时有事"})
    assert (withdrawn["status"], withdrawn["provider_member_id"]) == ("open", None)
    assert (await api.account(elder.account_id))["held_minutes"] == 60
    assert (await stepped(api, request["id"], "assign", second.token))["provider_member_id"] == second.id


async def test_steps_out_of_order_are_invalid_transitions(api: Api) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    await fund(api, community, elder, 60)
    request = await asked(api, elder.token, elder, 60)
    for name, body, token in (
        ("check-in", None, coordinator.token),
        ("report", {"minutes": 60}, coordinator.token),
        ("confirm", {"rating": 5}, elder.token),
        ("dispute", {"reason": "x"}, elder.token),
    ):
        response = await step(api, request["id"], name, token, body)
        assert response.status_code == 409, (name, response.text)
        problem = response.json()
        assert (problem["code"], problem["current_status"], problem["service_request_id"]) == (
            "invalid_transition", "open", request["id"],
        )  # fmt: skip
    await reported(api, request["id"], volunteer, 60)
    second_report = await step(api, request["id"], "report", volunteer.token, {"minutes": 45})
    assert second_report.status_code == 409
    assert second_report.json()["current_status"] == "reported"
    assert (await step(api, request["id"], "cancel", elder.token, {"reason": "x"})).json()["code"] == (
        "invalid_transition"
    )


async def test_refusals_with_their_codes(api: Api) -> None:
    community = await api.community(unit_minutes=15)
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    both = await api.member(community, "resident", "volunteer")
    resident = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    await fund(api, community, elder, 60)
    await fund(api, community, both, 60)
    poor = await ask(api, elder.token, elder, 120)
    assert (poor.status_code, poor.json()["code"]) == (422, "insufficient_balance")
    odd = await ask(api, elder.token, elder, 50)
    assert (odd.status_code, odd.json()["code"]) == (422, "amount_not_multiple_of_unit")
    unknown = await ask(api, elder.token, elder, 60, service_type="flying")
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_service_type")
    late = await ask(api, elder.token, elder, 60, scheduled_at="2020-01-01T08:00:00Z")
    assert (late.status_code, late.json()["code"]) == (422, "invalid_schedule")

    request = await asked(api, elder.token, elder, 60)
    not_volunteer = await step(api, request["id"], "assign", resident.token, {})
    assert (not_volunteer.status_code, not_volunteer.json()["code"]) == (422, "not_a_volunteer")
    assigned_resident = await step(api, request["id"], "assign", coordinator.token, {"provider_member_id": resident.id})
    assert assigned_resident.json()["code"] == "not_a_volunteer"

    own = await asked(api, both.token, both, 60)
    same = await step(api, own["id"], "assign", both.token, {})
    assert (same.status_code, same.json()["code"]) == (422, "same_account")
    same_by_staff = await step(api, own["id"], "assign", coordinator.token, {"provider_member_id": both.id})
    assert same_by_staff.json()["code"] == "same_account"

    await stepped(api, request["id"], "assign", coordinator.token, {"provider_member_id": volunteer.id})
    await stepped(api, request["id"], "check-in", volunteer.token)
    above = await step(api, request["id"], "report", volunteer.token, {"minutes": 75})
    assert (above.status_code, above.json()["code"], above.json()["held_minutes"]) == (
        422, "capture_exceeds_hold", 60,
    )  # fmt: skip
    zero = await step(api, request["id"], "report", volunteer.token, {"minutes": 0})
    assert zero.json()["code"] == "amount_out_of_range"
    # The hold of a request moves only with its request (check-in replaced it by a lasting one).
    hold_id = (await api.get(f"/v1/service-requests/{request['id']}", coordinator.token)).json()["hold_id"]
    assert hold_id != request["hold_id"]
    capture = await api.post(f"/v1/holds/{hold_id}/capture", coordinator.token, {})
    assert (capture.status_code, capture.json()["code"]) == (409, "hold_belongs_to_request")
    release = await api.post(f"/v1/holds/{hold_id}/release", coordinator.token, {})
    assert release.json()["code"] == "hold_belongs_to_request"


async def test_a_double_submitted_confirm_replays(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    elder = await api.member(community, "resident")
    volunteer = await api.member(community, "volunteer")
    await fund(api, community, elder, 60)
    request = await asked(api, elder.token, elder, 60)
    await reported(api, request["id"], volunteer, 60)
    first = await step(api, request["id"], "confirm", elder.token, {"rating": 5}, key="confirm-once")
    second = await step(api, request["id"], "confirm", elder.token, {"rating": 5}, key="confirm-once")
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    other = await step(api, request["id"], "confirm", elder.token, {"rating": 4}, key="confirm-once")
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(await transactions_of(owner, request["id"])) == 1
    assert await api.balance(volunteer.account_id) == 60


async def test_ordinary_transactions_name_no_request(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    credit = await api.credit(volunteer, 60)
    assert credit.json()["service_request_id"] is None
    assert (await api.get(f"/v1/transactions/{credit.json()['id']}", api.admin_token)).json()[
        "service_request_id"
    ] is None


def _no_private_fields(body: Any) -> None:
    text = str(body)
    assert "13800000000" not in text
    assert "1941-05-06" not in text
    for item in body.get("items", [body]):
        assert "phone" not in item
        assert "birth_date" not in item


async def test_who_sees_which_requests(api: Api) -> None:
    community = await api.community()
    other = await api.community()
    coordinator = await api.member(community, "coordinator")
    auditor = await api.member(community, "auditor")
    elder = await api.member(community, "resident", name="王奶奶", phone="13800000000", birth_date="1941-05-06")
    neighbour = await api.member(community, "resident", grid="2")
    first = await api.member(community, "volunteer")
    second = await api.member(community, "volunteer")
    stranger = await api.member(other, "coordinator")
    await fund(api, community, elder, 120)
    await fund(api, community, neighbour, 60)
    open_one = await asked(api, elder.token, elder, 60)
    taken = await asked(api, elder.token, elder, 60)
    theirs = await asked(api, neighbour.token, neighbour, 60)
    await stepped(api, taken["id"], "assign", first.token, {})
    path = f"/v1/communities/{community.slug}/service-requests"

    async def listed(token: str, **params: Any) -> list[str]:
        response = await api.get(path, token, **params)
        assert response.status_code == 200, response.text
        _no_private_fields(response.json())
        return [item["id"] for item in response.json()["items"]]

    everything = [theirs["id"], taken["id"], open_one["id"]]
    assert await listed(coordinator.token) == everything
    assert await listed(auditor.token) == everything
    assert await listed(first.token) == [theirs["id"], taken["id"], open_one["id"]]
    assert await listed(second.token) == [theirs["id"], open_one["id"]]
    assert await listed(elder.token) == [taken["id"], open_one["id"]]
    assert await listed(neighbour.token) == [theirs["id"]]
    assert await listed(coordinator.token, status="assigned") == [taken["id"]]
    assert await listed(coordinator.token, grid="2") == [theirs["id"]]
    assert await listed(coordinator.token, member_id=elder.id) == [taken["id"], open_one["id"]]
    assert await listed(coordinator.token, provider_member_id=first.id) == [taken["id"]]
    assert await listed(coordinator.token, service_type="cleaning") == []
    page = await api.get(path, coordinator.token, limit=2)
    assert [i["id"] for i in page.json()["items"]] == everything[:2]
    rest = await api.get(path, coordinator.token, limit=2, cursor=page.json()["next_cursor"])
    assert [i["id"] for i in rest.json()["items"]] == everything[2:]
    assert rest.json()["next_cursor"] is None
    assert (await api.get(path, stranger.token)).status_code == 404
    assert (await api.get(path, coordinator.token, status="lost")).status_code == 400

    seen = await api.get(f"/v1/service-requests/{open_one['id']}", second.token)
    assert seen.status_code == 200
    _no_private_fields(seen.json())
    assert seen.json()["member_name"] == "王奶奶"
    assert (await api.get(f"/v1/service-requests/{taken['id']}", second.token)).status_code == 403
    assert (await api.get(f"/v1/service-requests/{taken['id']}", first.token)).status_code == 200
    assert (await api.get(f"/v1/service-requests/{theirs['id']}", elder.token)).status_code == 403
    assert (await api.get(f"/v1/service-requests/{open_one['id']}", stranger.token)).status_code == 404
    assert (await api.get(f"/v1/service-requests/{uuid.uuid4()}", coordinator.token)).status_code == 404
