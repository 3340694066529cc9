"""Service types: six to start with, added and changed by staff, read by the community."""

from __future__ import annotations

import uuid

import asyncpg

from tests.client import Api

DEFAULTS = [
    ("meals", "助餐", 60),
    ("cleaning", "助洁", 120),
    ("bathing", "助浴", 60),
    ("medical_escort", "助医", 180),
    ("companionship", "陪聊", 60),
    ("errands", "代办", 60),
]


async def test_a_new_community_starts_with_the_six_and_every_member_reads_them(api: Api) -> None:
    community = await api.community()
    resident = await api.member(community, "resident")
    response = await api.get(f"/v1/communities/{community.slug}/service-types", resident.token)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert sorted((t["code"], t["name"], t["default_minutes"]) for t in items) == sorted(DEFAULTS)
    assert all(t["active"] for t in items)
    assert response.json()["next_cursor"] is None


async def test_staff_add_and_change_types_duplicates_refused(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    path = f"/v1/communities/{community.slug}/service-types"
    body = {"code": "haircut", "name": "理发", "default_minutes": 30}
    created = await api.post(path, coordinator.token, body)
    assert created.status_code == 201, created.text
    assert created.json() == {**body, "active": True}
    assert created.headers["location"] == path
    again = await api.post(path, coordinator.token, body)
    assert again.status_code == 409
    assert again.json()["code"] == "service_type_exists"
    default = await api.post(path, api.admin_token, {"code": "meals", "name": "饭", "default_minutes": 30})
    assert default.json()["code"] == "service_type_exists"

    changed = await api.put(
        f"{path}/haircut", coordinator.token, {"name": "理发剪发", "default_minutes": 45, "active": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"code": "haircut", "name": "理发剪发", "default_minutes": 45, "active": False}
    listed = {t["code"]: t for t in (await api.get(path, coordinator.token)).json()["items"]}
    assert listed["haircut"]["active"] is False
    events = await owner.fetch(
        "select action, details from audit_events where community_id = $1 and action like 'service_type.%'"
        " order by seq",
        uuid.UUID(community.id),
    )
    assert [e["action"] for e in events] == ["service_type.created", "service_type.changed"]

    missing = await api.put(f"{path}/nothing", coordinator.token, {"name": "x", "default_minutes": 45, "active": True})
    assert missing.status_code == 404


async def test_who_may_add_or_change_types(api: Api) -> None:
    community = await api.community()
    other = await api.community()
    path = f"/v1/communities/{community.slug}/service-types"
    body = {"code": "walks", "name": "散步", "default_minutes": 60}
    replace = {"name": "散步", "default_minutes": 60, "active": True}
    for roles in (("volunteer",), ("resident",), ("auditor",)):
        member = await api.member(community, *roles)
        assert (await api.post(path, member.token, body)).status_code == 403, roles
        assert (await api.put(f"{path}/meals", member.token, replace)).status_code == 403, roles
    stranger = await api.member(other, "coordinator")
    assert (await api.post(path, stranger.token, body)).status_code == 404
    assert (await api.put(f"{path}/meals", stranger.token, replace)).status_code == 404
    assert (await api.get(path, stranger.token)).status_code == 404
    assert (await api.post(path, None, body)).status_code == 401
    assert (await api.post(path, api.admin_token, body, key=None)).json()["code"] == "idempotency_key_required"


async def test_bad_types_are_400(api: Api) -> None:
    community = await api.community()
    path = f"/v1/communities/{community.slug}/service-types"
    for body in (
        {"code": "Meals", "name": "x", "default_minutes": 60},
        {"code": "m", "name": "x", "default_minutes": 60},
        {"code": "ok_code", "name": "", "default_minutes": 60},
        {"code": "ok_code", "name": "x", "default_minutes": 0},
        {"code": "ok_code", "name": "x", "default_minutes": 60, "extra": 1},
    ):
        response = await api.post(path, api.admin_token, body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "invalid_request"
