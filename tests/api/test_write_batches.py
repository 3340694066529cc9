"""Coalesced writes over HTTP: concurrent credits share a statement and a commit, yet each request
gets exactly the answer it would get alone, with its own idempotency record and audit event."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import asyncpg
import msgspec

from tests.client import Member
from tests.eventually import eventually
from tests.sql.support import ServedApi, concurrent_api
from timebank.config import Settings
from timebank.ledger.verify import verify


def credit_body(member_id: str, minutes: int) -> dict[str, Any]:
    return {"member_id": member_id, "minutes": minutes, "service_date": "2026-11-01", "description": "served"}


async def post_credit(api: ServedApi, member_id: str, minutes: int, key: str | None = None) -> Any:
    return await api.post("/v1/credits", api.admin_token, credit_body(member_id, minutes), key=key or uuid.uuid4().hex)


async def test_concurrent_credits_share_batches_and_each_answers_as_if_alone(
    settings: Settings, database: str, admin_token: str, owner: asyncpg.Connection
) -> None:
    async with concurrent_api(settings, database, admin_token) as api:
        community = await api.community(max_balance_minutes=120)
        volunteers: list[Member] = [await api.member(community, "volunteer") for _ in range(4)]
        capped = await api.member(community, "volunteer")
        resident = await api.member(community, "resident")
        coalescer = api.app.state.write_batches.coalescer("post_credit")
        posted_before = coalescer.posted

        requests = [post_credit(api, volunteers[i % 4].id, 15) for i in range(24)]
        requests += [
            post_credit(api, resident.id, 15),  # 422 not_a_volunteer
            post_credit(api, volunteers[0].id, 20),  # 422 amount_not_multiple_of_unit
            post_credit(api, str(uuid.uuid4()), 15),  # 404 not_found
            post_credit(api, capped.id, 60),  # of these three of 60 minutes under a cap of 120,
            post_credit(api, capped.id, 60),  # two are posted and one is refused, whichever comes last
            post_credit(api, capped.id, 60),
            post_credit(api, volunteers[1].id, 30, key="same-key"),  # the same request twice at once:
            post_credit(api, volunteers[1].id, 30, key="same-key"),  # one posts, the other replays it
        ]
        responses = await asyncio.gather(*requests)

    codes = [r.status_code for r in responses]
    assert codes[:24] == [201] * 24
    assert [r.json()["code"] for r in responses[24:27]] == [
        "not_a_volunteer",
        "amount_not_multiple_of_unit",
        "not_found",
    ]
    assert sorted(codes[27:30]) == [201, 201, 422]
    assert next(r for r in responses[27:30] if r.status_code == 422).json()["code"] == "balance_cap_exceeded"
    twins = responses[30:32]
    assert [r.status_code for r in twins] == [201, 201]
    assert twins[0].json() == twins[1].json()

    # Requests really went together, and the batches posted most of them.
    assert coalescer.largest > 1
    assert coalescer.posted - posted_before >= 20

    for i, volunteer in enumerate(volunteers):
        assert await api_balance(owner, volunteer.account_id) == 6 * 15 + (30 if i == 1 else 0)
    assert await api_balance(owner, capped.account_id) == 120
    # One transaction.created event per posted credit, one write.rejected per refusal.
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    actions = Counter(
        row["action"]
        for row in await owner.fetch(
            "select action from audit_events where community_id = $1 and action in"
            " ('transaction.created', 'write.rejected')",
            uuid.UUID(community.id),
        )
    )
    assert actions["transaction.created"] == len(created) == 24 + 2 + 1
    # And one write.rejected event for each of the four refusals.
    refused = [r.headers["x-request-id"] for r in responses if r.status_code >= 400]
    rejected = await eventually(
        lambda: owner.fetchval(
            "select count(*) from timebank.audit_events where action = 'write.rejected'"
            " and request_id = any($1::text[])",
            refused,
        ),
        lambda n: n >= len(refused),
        what="write.rejected events of the refusals",
    )
    assert len(refused) == rejected == 4
    report = await verify(owner, uuid.UUID(community.id))
    assert report.ok, report.violations


async def api_balance(owner: asyncpg.Connection, account_id: str) -> int:
    balance: int = await owner.fetchval(
        "select balance_minutes from timebank.accounts where id = $1", uuid.UUID(account_id)
    )
    return balance


async def test_a_batch_that_fails_whole_sends_each_request_alone(
    settings: Settings, database: str, admin_token: str, owner: asyncpg.Connection
) -> None:
    async with concurrent_api(settings, database, admin_token) as api:
        community = await api.community()
        volunteer = await api.member(community, "volunteer")
        coalescer = api.app.state.write_batches.coalescer("post_credit")
        coalescer.query = "select this is not sql"
        responses = await asyncio.gather(*(post_credit(api, volunteer.id, 15) for _ in range(10)))
        assert [r.status_code for r in responses] == [201] * 10
        assert coalescer.posted == 0
        assert coalescer.batches >= 1
    assert await api_balance(owner, volunteer.account_id) == 150


async def test_batching_can_be_switched_off(
    settings: Settings, database: str, admin_token: str, owner: asyncpg.Connection
) -> None:
    alone = msgspec.structs.replace(settings, write_batch_max_size=1)
    async with concurrent_api(alone, database, admin_token) as api:
        community = await api.community()
        volunteer = await api.member(community, "volunteer")
        responses = await asyncio.gather(*(post_credit(api, volunteer.id, 15) for _ in range(6)))
        assert [r.status_code for r in responses] == [201] * 6
        assert api.app.state.write_batches.coalescer("post_credit").batches == 0
    assert await api_balance(owner, volunteer.account_id) == 90


async def test_concurrent_gifts_each_succeed_or_fail_on_their_own(
    settings: Settings, database: str, admin_token: str, owner: asyncpg.Connection
) -> None:
    async with concurrent_api(settings, database, admin_token) as api:
        community = await api.community()
        members = [await api.member(community, "volunteer") for _ in range(4)]
        for member in members:
            assert (await api.credit(member, 60)).status_code == 201
        coalescer = api.app.state.write_batches.coalescer("post_transfer")

        async def gift(sender: Member, recipient: Member) -> Any:
            body = {"from_member_id": sender.id, "to_member_id": recipient.id, "minutes": 30}
            return await api.post("/v1/transfers", sender.token, body)

        # Each member sends 30 minutes three times to the next: 90 > 60 + 30 received, so the
        # outcome depends on the order; every gift either posts or is refused on its own.
        pairs = [(members[i], members[(i + 1) % 4]) for i in range(4)] * 3
        responses = await asyncio.gather(*(gift(s, r) for s, r in pairs))
        assert coalescer.largest > 1

    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {201, 422}
    assert {r.json()["code"] for r in responses if r.status_code == 422} <= {"insufficient_balance"}
    balances = [await api_balance(owner, m.account_id) for m in members]
    assert sum(balances) == 4 * 60
    assert all(balance >= 0 for balance in balances)
    expected = [60] * 4
    for (sender, recipient), response in zip(pairs, responses, strict=True):
        if response.status_code == 201:
            expected[members.index(sender)] -= 30
            expected[members.index(recipient)] += 30
    assert balances == expected
    report = await verify(owner, uuid.UUID(community.id))
    assert report.ok, report.violations


async def test_cancelled_batches_send_their_waiting_requests_alone(
    settings: Settings, database: str, admin_token: str, owner: asyncpg.Connection
) -> None:
    # A batch stuck in the database (here: on an advisory lock the test holds) is cancelled, as on
    # shutdown: every request waiting for it or for the next batch is answered (None: run alone),
    # none is left hanging.
    async with concurrent_api(settings, database, admin_token) as api:
        coalescer = api.app.state.write_batches.coalescer("post_credit")
        coalescer.max_size = 1
        coalescer.query = (
            "select 1 as n, 201 as status_code, '{}' as body from (select pg_advisory_lock(4242)) x"
            " where cardinality($1::int[]) > 0"
        )
        async with owner.transaction():
            await owner.execute("select pg_advisory_xact_lock(4242)")
            waiting = [asyncio.create_task(coalescer.submit((i,))) for i in range(3)]
            # The batch is stuck once its statement waits for the lock the test holds.
            await eventually(
                lambda: owner.fetchval(
                    "select count(*) from pg_locks where locktype = 'advisory' and objid = 4242 and not granted"
                ),
                what="a batch waiting for advisory lock 4242",
            )
            assert not any(task.done() for task in waiting)
            for task in list(coalescer._tasks):
                task.cancel()
            answers = await asyncio.wait_for(asyncio.gather(*waiting), 5)
        assert answers == [None, None, None]


async def test_concurrent_redemptions_never_overdraw(
    settings: Settings, database: str, admin_token: str, owner: asyncpg.Connection
) -> None:
    async with concurrent_api(settings, database, admin_token) as api:
        community = await api.community()
        volunteer = await api.member(community, "volunteer")
        residents = [await api.member(community, "resident") for _ in range(3)]
        assert (await api.credit(volunteer, 270)).status_code == 201
        for resident in residents:
            body = {"from_member_id": volunteer.id, "to_member_id": resident.id, "minutes": 90}
            assert (await api.post("/v1/transfers", volunteer.token, body)).status_code == 201
        coalescer = api.app.state.write_batches.coalescer("post_redemption")

        async def redeem(resident: Member) -> Any:
            body = {"member_id": resident.id, "minutes": 30, "description": "meal"}
            return await api.post("/v1/redemptions", resident.token, body)

        # Four redemptions of 30 minutes each against 90 minutes: three post, one is refused.
        responses = await asyncio.gather(*(redeem(r) for r in residents for _ in range(4)))
        assert coalescer.largest > 1

    for i, resident in enumerate(residents):
        mine = responses[i * 4 : i * 4 + 4]
        assert sorted(r.status_code for r in mine) == [201, 201, 201, 422]
        assert next(r for r in mine if r.status_code == 422).json()["code"] == "insufficient_balance"
        assert await api_balance(owner, resident.account_id) == 0
    report = await verify(owner, uuid.UUID(community.id))
    assert report.ok, report.violations
