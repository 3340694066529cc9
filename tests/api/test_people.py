"""Members additions over HTTP: member_no, pool_eligible and has_pin in every Member; PATCH with a
reason, audited before and after; PINs (Argon2id, never shown, logged or audited); relatives.

Who may call each route is pinned by the role matrix (tests/api/test_permissions.py, rows
member.patch, member.pin, relative.add, relative.list, relative.remove)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from tests.client import Api, Member
from tests.sql.support import app_connect

PIN = "482916"


async def events(owner: asyncpg.Connection, subject: str, action: str) -> list[dict[str, Any]]:
    rows = await owner.fetch(
        "select details::text from audit_events where subject_id = $1 and action = $2 order by seq",
        uuid.UUID(subject),
        action,
    )
    return [json.loads(r["details"]) for r in rows]


async def test_members_are_numbered_in_order_and_show_the_new_fields(api: Api) -> None:
    community = await api.community()
    first, second = await api.member(community, "volunteer"), await api.member(community, "resident")
    got = [(await api.get(f"/v1/members/{m.id}", api.admin_token)).json() for m in (first, second)]
    assert [m["member_no"] for m in got] == ["000001", "000002"]
    assert all(m["pool_eligible"] is False and m["has_pin"] is False for m in got)
    listed = (await api.get(f"/v1/communities/{community.slug}/members", api.admin_token)).json()["items"]
    assert [m["member_no"] for m in listed] == ["000001", "000002"]
    assert all("pin" not in key or key == "has_pin" for m in listed for key in m)
    # The number on a member's card finds the member.
    found = await api.get(f"/v1/communities/{community.slug}/members", api.admin_token, q="000002")
    assert [m["id"] for m in found.json()["items"]] == [second.id]


async def test_patch_changes_the_fields_given_and_audits_before_and_after(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident", grid="3")
    body = {"reason": "老人搬到 5 号网格", "grid": "5", "birth_date": "1941-03-09", "pool_eligible": True}
    key = uuid.uuid4().hex
    changed = await api.client.patch(
        f"/v1/members/{elder.id}", headers=api.auth(coordinator.token) | {"Idempotency-Key": key}, json=body
    )
    assert changed.status_code == 200, changed.text
    member = changed.json()
    assert (member["grid"], member["birth_date"], member["pool_eligible"]) == ("5", "1941-03-09", True)
    assert member["member_no"] == "000002"
    again = await api.client.patch(
        f"/v1/members/{elder.id}", headers=api.auth(coordinator.token) | {"Idempotency-Key": key}, json=body
    )
    assert (again.status_code, again.headers.get("idempotent-replayed")) == (200, "true")
    assert again.json() == member
    [event] = await events(owner, elder.id, "member.changed")
    assert event["reason"] == "老人搬到 5 号网格"
    assert (event["before"]["grid"], event["after"]["grid"]) == ("3", "5")
    assert (event["before"]["pool_eligible"], event["after"]["pool_eligible"]) == (False, True)
    assert event["after"]["birth_date"] == "1941-03-09"
    # Clearing a field: null.
    cleared = await api.client.patch(
        f"/v1/members/{elder.id}",
        headers=api.auth(coordinator.token) | {"Idempotency-Key": uuid.uuid4().hex},
        json={"reason": "录错了", "birth_date": None},
    )
    assert cleared.json()["birth_date"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"grid": "5"},  # no reason
        {"reason": "", "grid": "5"},
        {"reason": "x", "member_no": "000009"},
        {"reason": "x", "pin_hash": "$argon2id$"},
        {"reason": "x", "roles": []},
        {"reason": "x", "roles": ["volunteer", "volunteer"]},
        {"reason": "x", "roles": ["mayor"]},
        {"reason": "x", "pool_eligible": "yes"},
        {"reason": "x", "birth_date": "0001-01-01"},
        {"reason": "x" * 501},
    ],
)
async def test_malformed_changes_are_refused_and_change_nothing(
    api: Api, owner: asyncpg.Connection, body: dict[str, Any]
) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    before = (await api.get(f"/v1/members/{member.id}", api.admin_token)).json()
    response = await api.client.patch(
        f"/v1/members/{member.id}", headers=api.auth(api.admin_token) | {"Idempotency-Key": uuid.uuid4().hex}, json=body
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert (await api.get(f"/v1/members/{member.id}", api.admin_token)).json() == before
    assert await events(owner, member.id, "member.changed") == []


@pytest.mark.parametrize(
    ("target_roles", "new_roles", "status"),
    [
        (["volunteer"], ["volunteer", "resident"], 200),
        (["volunteer"], ["coordinator"], 403),
        (["coordinator"], ["volunteer"], 403),
        (["auditor"], ["auditor"], 403),
    ],
)
async def test_only_an_admin_changes_staff_roles(
    api: Api, target_roles: list[str], new_roles: list[str], status: int
) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    target = await api.member(community, *target_roles)
    response = await api.client.patch(
        f"/v1/members/{target.id}",
        headers=api.auth(coordinator.token) | {"Idempotency-Key": uuid.uuid4().hex},
        json={"reason": "调整", "roles": new_roles},
    )
    assert response.status_code == status, response.text
    by_admin = await api.client.patch(
        f"/v1/members/{target.id}",
        headers=api.auth(api.admin_token) | {"Idempotency-Key": uuid.uuid4().hex},
        json={"reason": "调整", "roles": new_roles},
    )
    assert by_admin.status_code == 200, by_admin.text


async def test_a_changed_phone_may_not_be_another_members(api: Api) -> None:
    community = await api.community()
    await api.member(community, "resident", phone="13900000001")
    other = await api.member(community, "resident", phone="13900000002")
    response = await api.client.patch(
        f"/v1/members/{other.id}",
        headers=api.auth(api.admin_token) | {"Idempotency-Key": uuid.uuid4().hex},
        json={"reason": "换号", "phone": "13900000001"},
    )
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "member_exists"


# --- PINs ---------------------------------------------------------------------------------------


async def set_pin(api: Api, member: Member, token: str, body: dict[str, Any], key: str | None = None) -> Any:
    return await api.post(f"/v1/members/{member.id}/pin", token, body, key=key or uuid.uuid4().hex)


async def test_staff_set_a_pin_and_the_member_changes_it_with_the_current_one(
    api: Api, owner: asyncpg.Connection
) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    # The first PIN comes from staff.
    first = await set_pin(api, elder, elder.token, {"pin": PIN})
    assert first.status_code == 403, first.text
    assert (await set_pin(api, elder, coordinator.token, {"pin": PIN})).status_code == 204
    assert (await api.get(f"/v1/members/{elder.id}", elder.token)).json()["has_pin"] is True
    stored = await owner.fetchval("select pin_hash from member_pins where member_id = $1", uuid.UUID(elder.id))
    assert stored.startswith("$argon2id$")
    assert PIN not in stored
    # The member itself: the current PIN is required and must match.
    missing = await set_pin(api, elder, elder.token, {"pin": "111111"})
    assert (missing.status_code, missing.json()["code"]) == (403, "forbidden")
    wrong = await set_pin(api, elder, elder.token, {"pin": "111111", "current_pin": "000000"})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "forbidden")
    key = uuid.uuid4().hex
    changed = await set_pin(api, elder, elder.token, {"pin": "111111", "current_pin": PIN}, key=key)
    assert changed.status_code == 204, changed.text
    # A retry of that change replays, though the PIN it proved is no longer the current one.
    retried = await set_pin(api, elder, elder.token, {"pin": "111111", "current_pin": PIN}, key=key)
    assert (retried.status_code, retried.headers.get("idempotent-replayed")) == (204, "true")
    assert [e["by"] for e in await events(owner, elder.id, "member.pin_set")] == ["staff", "self"]
    assert len(await events(owner, elder.id, "member.pin_failed")) == 1


async def test_five_wrong_pins_lock_changes_for_a_while(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    elder = await api.member(community, "resident")
    assert (await set_pin(api, elder, api.admin_token, {"pin": PIN})).status_code == 204
    for attempt in range(1, 6):
        wrong = await set_pin(api, elder, elder.token, {"pin": "222222", "current_pin": f"00000{attempt}"})
        expected = (403, "forbidden") if attempt < 5 else (429, "too_many_attempts")
        assert (wrong.status_code, wrong.json()["code"]) == expected, wrong.text
    locked = await set_pin(api, elder, elder.token, {"pin": "222222", "current_pin": PIN})
    assert (locked.status_code, locked.json()["code"]) == (429, "too_many_attempts")
    assert 1 <= int(locked.headers["retry-after"]) <= 15 * 60 + 1
    # Staff can still set a new PIN, which lifts the lock.
    assert (await set_pin(api, elder, api.admin_token, {"pin": "333333"})).status_code == 204
    ok = await set_pin(api, elder, elder.token, {"pin": "444444", "current_pin": "333333"})
    assert ok.status_code == 204, ok.text


@pytest.mark.parametrize(
    "body",
    [
        {"pin": "12345"},
        {"pin": "1234567"},
        {"pin": "12345a"},
        {"pin": 123456},
        {"pin": "１２３４５６"},  # full-width digits
        {"pin": " 123456"},
        {"pin": "123456\n"},
        {"pin": "٣٤٥٦٧٨"},  # Arabic-Indic digits
        {"pin": None},
        {},
        {"pin": "123456", "current_pin": "12345"},
        {"pin": "123456", "pin_hash": "$argon2id$v=19$x"},
    ],
)
async def test_pins_that_are_not_six_digits_are_refused_and_nothing_is_written(
    api: Api, owner: asyncpg.Connection, body: dict[str, Any]
) -> None:
    community = await api.community()
    member = await api.member(community, "resident")
    response = await set_pin(api, member, api.admin_token, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert await owner.fetchval("select count(*) from member_pins where member_id = $1", uuid.UUID(member.id)) == 0


async def test_a_pin_never_appears_in_a_response_a_log_line_or_an_audit_event(
    api: Api, owner: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    elder = await api.member(community, "resident")
    capsys.readouterr()
    answers = [
        await set_pin(api, elder, coordinator.token, {"pin": PIN}),
        await set_pin(api, elder, elder.token, {"pin": "975310", "current_pin": "000111"}),  # wrong
        await set_pin(api, elder, elder.token, {"pin": "975310", "current_pin": PIN}),
        await api.get(f"/v1/members/{elder.id}", elder.token),
        await api.get(f"/v1/communities/{community.slug}/members", coordinator.token),
        await api.get("/v1/me", elder.token),
        await api.get("/v1/audit-events", coordinator.token, community=community.slug),
    ]
    logged = capsys.readouterr()
    stored_hash = await owner.fetchval("select pin_hash from member_pins where member_id = $1", uuid.UUID(elder.id))
    texts = [a.text for a in answers] + [logged.out, logged.err]
    texts += [
        r["t"]
        for r in await owner.fetch(
            "select details::text as t from audit_events where community_id = $1", uuid.UUID(community.id)
        )
    ]
    texts += [
        r["t"]
        for r in await owner.fetch(
            "select response::text as t from idempotency_keys where principal_id in"
            " (select id from principals where member_id = any($1::uuid[]))",
            [uuid.UUID(coordinator.id), uuid.UUID(elder.id)],
        )
    ]
    for secret in (PIN, "975310", "000111", stored_hash, "$argon2"):
        assert not [t for t in texts if secret in t], secret
    assert "request_handled" in logged.out  # the log was captured


async def test_the_service_role_cannot_read_pin_hashes(database: str) -> None:
    conn = await app_connect(database)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("select pin_hash from member_pins")
        assert await conn.fetchval("select count(member_id) >= 0 from member_pins")
    finally:
        await conn.close()


# --- relatives ----------------------------------------------------------------------------------


async def add_relative(api: Api, member: Member, relative: Member, relation: str, token: str | None = None) -> Any:
    body = {"relative_member_id": relative.id, "relation": relation}
    return await api.post(f"/v1/members/{member.id}/relatives", token or api.admin_token, body)


@pytest.mark.parametrize(
    ("relation", "inverse"),
    [
        ("parent", "child"),
        ("child", "parent"),
        ("grandparent", "grandchild"),
        ("grandchild", "grandparent"),
        ("spouse", "spouse"),
        ("sibling", "sibling"),
        ("other", "other"),
    ],
)
async def test_a_link_is_recorded_for_both_sides(
    api: Api, owner: asyncpg.Connection, relation: str, inverse: str
) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    son = await api.member(community, "volunteer", name="王小明")
    mother = await api.member(community, "resident", name="李秀英")
    added = await add_relative(api, son, mother, relation, coordinator.token)
    assert added.status_code == 201, added.text
    assert added.headers["location"] == f"/v1/members/{son.id}/relatives"
    assert added.json()["member_id"] == mother.id
    assert added.json()["relation"] == relation
    mine = (await api.get(f"/v1/members/{son.id}/relatives", son.token)).json()
    theirs = (await api.get(f"/v1/members/{mother.id}/relatives", mother.token)).json()
    assert [(r["member_id"], r["display_name"], r["relation"]) for r in mine["items"]] == [
        (mother.id, "李秀英", relation)
    ]
    assert [(r["member_id"], r["display_name"], r["relation"]) for r in theirs["items"]] == [
        (son.id, "王小明", inverse)
    ]
    [event] = await events(owner, son.id, "relative.added")
    assert event == {
        "member_id": son.id,
        "relative_member_id": mother.id,
        "relation": relation,
        "inverse_relation": inverse,
    }


async def test_links_are_refused_twice_to_oneself_and_across_communities(api: Api) -> None:
    community, other = await api.community(), await api.community()
    son, mother = await api.member(community, "volunteer"), await api.member(community, "resident")
    stranger = await api.member(other, "resident")
    assert (await add_relative(api, son, mother, "parent")).status_code == 201
    for member, relative, status, code in (
        (son, mother, 409, "relative_exists"),
        (mother, son, 409, "relative_exists"),
        (son, son, 422, "same_account"),
        (son, stranger, 422, "cross_community_not_allowed"),
    ):
        response = await add_relative(api, member, relative, "sibling")
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    coordinator = await api.member(community, "coordinator")
    # A coordinator learns nothing about another community's members.
    hidden = await add_relative(api, son, stranger, "sibling", coordinator.token)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    missing = await api.post(
        f"/v1/members/{son.id}/relatives",
        coordinator.token,
        {"relative_member_id": str(uuid.uuid4()), "relation": "sibling"},
    )
    assert missing.json() | {"request_id": None} == hidden.json() | {"request_id": None}


@pytest.mark.parametrize(
    "body",
    [
        {"relation": "parent"},
        {"relative_member_id": "not-a-uuid", "relation": "parent"},
        {"relative_member_id": "RELATIVE", "relation": "cousin"},
        {"relative_member_id": "RELATIVE", "relation": "Parent"},
        {"relative_member_id": "RELATIVE", "relation": ""},
        {"relative_member_id": "RELATIVE", "relation": None},
        {"relative_member_id": "RELATIVE", "relation": "parent", "since": "2020-01-01"},
    ],
)
async def test_malformed_links_are_refused_and_nothing_is_written(
    api: Api, owner: asyncpg.Connection, body: dict[str, Any]
) -> None:
    community = await api.community()
    son, mother = await api.member(community, "volunteer"), await api.member(community, "resident")
    if body.get("relative_member_id") == "RELATIVE":
        body = body | {"relative_member_id": mother.id}
    response = await api.post(f"/v1/members/{son.id}/relatives", api.admin_token, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request"
    assert await owner.fetchval("select count(*) from relatives where member_id = $1", uuid.UUID(son.id)) == 0


async def test_unlinking_removes_both_sides_and_is_audited(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    son, mother = await api.member(community, "volunteer"), await api.member(community, "resident")
    assert (await add_relative(api, son, mother, "parent")).status_code == 201
    path = f"/v1/members/{mother.id}/relatives/{son.id}"
    key = uuid.uuid4().hex
    headers = api.auth(coordinator.token) | {"Idempotency-Key": key}
    removed = await api.client.delete(path, headers=headers)
    assert removed.status_code == 204, removed.text
    replayed = await api.client.delete(path, headers=headers)
    assert (replayed.status_code, replayed.headers.get("idempotent-replayed")) == (204, "true")
    for member in (son, mother):
        assert (await api.get(f"/v1/members/{member.id}/relatives", api.admin_token)).json()["items"] == []
    [event] = await events(owner, mother.id, "relative.removed")
    assert event == {"member_id": mother.id, "relative_member_id": son.id, "relation": "child"}
    again = await api.client.delete(path, headers=api.auth(coordinator.token) | {"Idempotency-Key": uuid.uuid4().hex})
    assert (again.status_code, again.json()["code"]) == (404, "not_found")
    # Linked again later: a new link.
    assert (await add_relative(api, son, mother, "parent")).status_code == 201
