"""Credit batches racing each other and single credits through the API, served together: no deadlock,
the cap holds (a batch that would pass it is refused whole), and the ledger stays sound."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.sql.support import ServedApi, concurrent_api
from timebank.config import Settings
from timebank.ledger.verify import verify


@pytest.fixture(scope="module")
async def concurrent(settings: Settings, database: str, admin_token: str) -> AsyncIterator[ServedApi]:
    async with concurrent_api(settings, database, admin_token) as api:
        yield api


async def test_batches_and_credits_at_once_keep_the_cap_and_the_books(
    concurrent: ServedApi, owner: asyncpg.Connection
) -> None:
    api = concurrent
    # Each volunteer may hold 120 minutes: two of the 60-minute credits below, never three.
    community = await api.community(max_balance_minutes=120)
    volunteers = [await api.member(community, "volunteer") for _ in range(6)]
    forward = [{"member_id": v.id, "minutes": 60} for v in volunteers]
    batches = [
        {"community": community.slug, "service_date": "2026-11-01", "credits": items}
        for items in (forward, forward[::-1], forward[::2], forward[1::2])
    ]
    singles = [{"member_id": v.id, "minutes": 60, "service_date": "2026-11-01"} for v in volunteers]
    responses = await asyncio.gather(
        *(api.post("/v1/credit-batches", api.admin_token, body) for body in batches),
        *(api.post("/v1/credits", api.admin_token, body) for body in singles),
    )
    assert all(r.status_code in (201, 422) for r in responses), [r.text for r in responses]
    refused = [r.json() for r in responses if r.status_code == 422]
    assert {p["code"] for p in refused} <= {"balance_cap_exceeded"}, refused
    balances = [await api.balance(v.account_id) for v in volunteers]
    assert all(b <= 120 for b in balances), balances
    credited = sum(len(r.json()["transactions"]) * 60 for r in responses[:4] if r.status_code == 201)
    credited += sum(60 for r in responses[4:] if r.status_code == 201)
    assert sum(balances) == credited
    # Batches are all or nothing: a volunteer's balance is 60 or 120, and a refused batch left nothing.
    assert Counter(balances) - Counter({60: 6, 120: 6}) == Counter()
    report = await verify(owner, uuid.UUID(community.id))
    assert report.ok, report.violations
