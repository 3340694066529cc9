"""Statements: keyset pages stay stable while entries arrive; running and as-of balances are exact."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.client import Api


async def test_entries_page_newest_first_with_running_balance(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    amounts = [15, 30, 45, 60, 75, 90, 105]
    for minutes in amounts:
        assert (await api.credit(volunteer, minutes)).status_code == 201
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = await api.get(f"/v1/accounts/{volunteer.account_id}/entries", volunteer.token, **params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 3
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [e["minutes"] for e in seen] == list(reversed(amounts))
    running = 0
    for entry, minutes in zip(reversed(seen), amounts, strict=True):
        running += minutes
        assert entry["balance_after_minutes"] == running
        assert entry["kind"] == "credit"
    assert len({e["transaction_id"] for e in seen}) == len(amounts)


async def test_pages_stay_stable_while_new_entries_arrive(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    for _ in range(6):
        assert (await api.credit(volunteer, 15)).status_code == 201
    first = (await api.get(f"/v1/accounts/{volunteer.account_id}/entries", api.admin_token, limit=2)).json()
    before = [e["transaction_id"] for e in first["items"]]
    # New entries arrive between page fetches, several at once.
    results = await asyncio.gather(*(api.credit(volunteer, 30) for _ in range(4)))
    assert all(r.status_code == 201 for r in results)
    rest: list[str] = []
    cursor = first["next_cursor"]
    while cursor:
        page = (
            await api.get(f"/v1/accounts/{volunteer.account_id}/entries", api.admin_token, limit=2, cursor=cursor)
        ).json()
        rest.extend(e["transaction_id"] for e in page["items"])
        cursor = page["next_cursor"]
    # The old entries appear exactly once, and none of the new ones slip into later pages.
    assert len(before) + len(rest) == 6
    assert len(set(before + rest)) == 6
    newest = (await api.get(f"/v1/accounts/{volunteer.account_id}/entries", api.admin_token, limit=4)).json()
    assert [e["minutes"] for e in newest["items"]] == [30, 30, 30, 30]
    assert not {e["transaction_id"] for e in newest["items"]} & set(before + rest)


async def test_entries_filter_by_time(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    assert (await api.credit(volunteer, 15)).status_code == 201
    entries = (await api.get(f"/v1/accounts/{volunteer.account_id}/entries", api.admin_token)).json()["items"]
    created = entries[0]["created_at"]
    assert (await api.credit(volunteer, 30)).status_code == 201
    until = await api.get(f"/v1/accounts/{volunteer.account_id}/entries", api.admin_token, to=created)
    assert until.json()["items"] == []
    since = await api.get(f"/v1/accounts/{volunteer.account_id}/entries", api.admin_token, **{"from": created})
    assert [e["minutes"] for e in since.json()["items"]] == [30, 15]


async def test_balance_as_of_is_exact(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    before_any = datetime.now(UTC) - timedelta(seconds=1)
    moments = []
    for minutes in (15, 30, 60):
        assert (await api.credit(volunteer, minutes)).status_code == 201
        entry = (await api.get(f"/v1/accounts/{volunteer.account_id}/entries", api.admin_token, limit=1)).json()
        moments.append(entry["items"][0]["created_at"])
    path = f"/v1/accounts/{volunteer.account_id}/balance"
    assert (await api.get(path, api.admin_token, as_of=before_any.isoformat())).json()["balance_minutes"] == 0
    expected = [15, 45, 105]
    for moment, balance in zip(moments, expected, strict=True):
        answer = (await api.get(path, api.admin_token, as_of=moment)).json()
        assert answer["balance_minutes"] == balance, (moment, answer)
        assert answer["account_id"] == volunteer.account_id
    now = await api.get(path, volunteer.token)
    assert now.status_code == 200
    assert now.json()["balance_minutes"] == 105


async def test_balance_as_of_needs_a_zone(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    answer = await api.get(f"/v1/accounts/{volunteer.account_id}/balance", api.admin_token, as_of="2026-11-27T08:00:00")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_request"


async def test_community_transactions_page_and_filter(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    elder = await api.member(community, "resident")
    for _ in range(3):
        assert (await api.credit(volunteer, 15)).status_code == 201
    gift = await api.post(
        "/v1/transfers", volunteer.token, {"from_member_id": volunteer.id, "to_member_id": elder.id, "minutes": 15}
    )
    assert gift.status_code == 201
    path = f"/v1/communities/{community.slug}/transactions"
    credits = (await api.get(path, api.admin_token, kind="credit")).json()
    assert [t["kind"] for t in credits["items"]] == ["credit"] * 3
    everything: list[str] = []
    cursor = None
    while True:
        page = (await api.get(path, api.admin_token, limit=1, **({"cursor": cursor} if cursor else {}))).json()
        everything.extend(t["kind"] for t in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert everything == ["transfer", "credit", "credit", "credit"]
