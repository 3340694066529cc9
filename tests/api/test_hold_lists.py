"""Holds can be found: a community's holds and a member's holds, newest first, filtered and keyset-paged.

Who may list them is pinned in test_permissions.py (rows hold.list.community and hold.list.member).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.client import Api, Member


async def ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def hold(api: Api, member: Member, minutes: int = 15, **extra: Any) -> dict[str, Any]:
    return await ok(await api.post("/v1/holds", api.admin_token, {"member_id": member.id, "minutes": minutes, **extra}))


async def every_page(api: Api, path: str, token: str, **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await ok(await api.get(path, token, **params | ({"cursor": cursor} if cursor else {})), 200)
        assert set(page) == {"items", "next_cursor"}
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_holds_by_status_newest_first(api: Api) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    anna = await api.member(community, "volunteer", "resident")
    ben = await api.member(community, "volunteer", "resident")
    for member in (anna, ben):
        await ok(await api.credit(member, 600))
    captured = await hold(api, anna, 30)
    await ok(await api.post(f"/v1/holds/{captured['id']}/capture", coordinator.token, {}))
    released = await hold(api, ben, 45)
    await ok(await api.post(f"/v1/holds/{released['id']}/release", coordinator.token, {}), 200)
    # Expiry is about time itself: this hold's moment passes (no job runs, it is still unresolved).
    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    lapsed = await hold(api, anna, 15, expires_at=soon.isoformat())
    pending = [await hold(api, member, 60) for member in (ben, anna, ben)]
    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)

    path = f"/v1/communities/{community.slug}/holds"
    everything = await every_page(api, path, coordinator.token, limit=2)
    ids = [h["id"] for h in everything]
    assert ids == [h["id"] for h in reversed([captured, released, lapsed, *pending])]
    assert [h["status"] for h in everything] == ["pending", "pending", "pending", "expired", "released", "captured"]
    # Each item is the hold exactly as GET /v1/holds/{id} shows it.
    for item in everything:
        assert item == await ok(await api.get(f"/v1/holds/{item['id']}", coordinator.token), 200)

    async def ids_with(**params: Any) -> list[str]:
        return [h["id"] for h in await every_page(api, path, coordinator.token, **params)]

    assert await ids_with(status="pending") == [h["id"] for h in reversed(pending)]
    # Expired: also a pending hold past its expires_at that no job has marked yet.
    assert await ids_with(status="expired") == [lapsed["id"]]
    assert await ids_with(status="captured") == [captured["id"]]
    assert await ids_with(status="released") == [released["id"]]
    assert await ids_with(member_id=anna.id) == [pending[1]["id"], lapsed["id"], captured["id"]]
    assert await ids_with(member_id=anna.id, status="pending") == [pending[1]["id"]]
    assert await ids_with(member_id=str(uuid.uuid4())) == []

    # A member's own list: the same holds, filtered the same way, read by the member itself.
    mine = await every_page(api, f"/v1/members/{ben.id}/holds", ben.token, limit=1)
    assert [h["id"] for h in mine] == [pending[2]["id"], pending[0]["id"], released["id"]]
    assert [h["id"] for h in await every_page(api, f"/v1/members/{ben.id}/holds", ben.token, status="released")] == [
        released["id"]
    ]


async def test_hold_pages_stay_stable_while_holds_arrive(api: Api) -> None:
    community = await api.community()
    elder = await api.member(community, "volunteer", "resident")
    await ok(await api.credit(elder, 1200))
    first_holds = [await hold(api, elder) for _ in range(4)]
    path = f"/v1/members/{elder.id}/holds"
    first = await ok(await api.get(path, elder.token, limit=2), 200)
    later = [await hold(api, elder) for _ in range(3)]
    rest = await every_page(api, path, elder.token, limit=2, cursor=first["next_cursor"])
    assert [h["id"] for h in first["items"] + rest] == [h["id"] for h in reversed(first_holds)]
    newest = await ok(await api.get(path, elder.token, limit=3), 200)
    assert [h["id"] for h in newest["items"]] == [h["id"] for h in reversed(later)]


async def test_hold_list_parameters_are_checked(api: Api) -> None:
    community = await api.community()
    elder = await api.member(community, "resident")
    for path in (f"/v1/communities/{community.slug}/holds", f"/v1/members/{elder.id}/holds"):
        for params in ({"status": "lost"}, {"limit": 0}, {"limit": 501}, {"cursor": "non sense"}):
            response = await api.get(path, api.admin_token, **params)
            assert response.status_code == 400, (path, params, response.text)
            assert response.json()["code"] == "invalid_request"
        # A cursor of the documented shape that this service did not issue: a rule, not a malformed request.
        response = await api.get(path, api.admin_token, cursor="nonsense")
        assert (response.status_code, response.json()["code"]) == (422, "invalid_cursor")
    bad_member = await api.get(f"/v1/communities/{community.slug}/holds", api.admin_token, member_id="nobody")
    assert (bad_member.status_code, bad_member.json()["code"]) == (400, "invalid_request")
    assert (await api.get(f"/v1/members/{uuid.uuid4()}/holds", api.admin_token)).status_code == 404
    assert (await api.get("/v1/communities/no-such-place/holds", api.admin_token)).status_code == 404
