"""Races over a service request end with one winner: each racer on its own connection (the service
role calling the SQL operations), sent together with asyncio.gather; one race over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.services import requests_sql as sr
from tests.services.support import asked, fund, step, stepped
from tests.sql.support import Community, Ledger, Member, app_connect, concurrent_api
from tests.sql.test_concurrency import Outcome, assert_verified, outcome
from timebank.config import Settings

ROUNDS = 6


@pytest.fixture(scope="module")
async def conns(database: str) -> AsyncIterator[list[asyncpg.Connection]]:
    opened = [await app_connect(database) for _ in range(4)]
    yield opened
    for conn in opened:
        await conn.close()


async def _world(
    conns: list[asyncpg.Connection], database: str, funds: int = 600
) -> tuple[Ledger, Community, Member, Member]:
    ledger = await Ledger.with_new_admin(conns[0], database)
    community = await ledger.community()
    donor = await ledger.member(community, "volunteer")
    elder = await ledger.member(community, "resident")
    await ledger.credit(donor, funds)
    await ledger.gift(donor, elder, funds)
    return ledger, community, donor, elder


async def _transactions(owner: asyncpg.Connection, request_id: object) -> int:
    count: int = await owner.fetchval(
        "select count(*) from transactions where service_request_id = $1", uuid.UUID(str(request_id))
    )
    return count


def _codes(outcomes: list[Outcome]) -> Counter[str]:
    return Counter(o.code for o in outcomes)


async def test_two_volunteers_claiming_one_request_one_wins(
    conns: list[asyncpg.Connection], database: str, owner: asyncpg.Connection
) -> None:
    ledger, community, _, elder = await _world(conns, database)
    first = await ledger.member(community, "volunteer")
    second = await ledger.member(community, "volunteer")
    for _ in range(ROUNDS):
        request_id = (await sr.create(ledger.acting_as(elder.principal_id), elder)).body["id"]
        outcomes = await asyncio.gather(
            outcome(sr.assign(ledger.acting_as(first.principal_id, conns[1]), request_id)),
            outcome(sr.assign(ledger.acting_as(second.principal_id, conns[2]), request_id)),
        )
        assert _codes(outcomes) == Counter({"ok": 1, "TB000:invalid_transition": 1}), outcomes
        winner = next(o for o in outcomes if o.ok)
        assert winner.result is not None
        provider = await owner.fetchval(
            "select provider_member_id from service_requests where id = $1", uuid.UUID(request_id)
        )
        assert str(provider) == winner.result.body["provider_member_id"]
    await assert_verified(owner, community)


async def test_confirm_against_cancel_of_a_disputed_request_one_wins(
    conns: list[asyncpg.Connection], database: str, owner: asyncpg.Connection
) -> None:
    ledger, community, _, elder = await _world(conns, database)
    volunteer = await ledger.member(community, "volunteer")
    as_elder, as_volunteer = ledger.acting_as(elder.principal_id), ledger.acting_as(volunteer.principal_id)
    winners: Counter[str] = Counter()
    for _ in range(ROUNDS):
        request_id = (await sr.create(as_elder, elder)).body["id"]
        await sr.assign(as_volunteer, request_id)
        await sr.check_in(as_volunteer, request_id)
        await sr.report(as_volunteer, request_id, 60)
        await sr.dispute(as_elder, request_id)
        outcomes = await asyncio.gather(
            outcome(sr.confirm(ledger.acting_as(ledger.actor, conns[1]), request_id, minutes=45)),
            outcome(sr.cancel(ledger.acting_as(ledger.actor, conns[2]), request_id)),
        )
        assert _codes(outcomes) == Counter({"ok": 1, "TB000:invalid_transition": 1}), outcomes
        status = await owner.fetchval("select status from service_requests where id = $1", uuid.UUID(request_id))
        winners[status] += 1
        assert await _transactions(owner, request_id) == (1 if status == "completed" else 0)
    assert sum(winners.values()) == ROUNDS
    await assert_verified(owner, community)


async def test_confirm_against_the_auto_confirm_job_one_wins(
    conns: list[asyncpg.Connection], database: str, owner: asyncpg.Connection
) -> None:
    ledger, community, _, elder = await _world(conns, database)
    volunteer = await ledger.member(community, "volunteer")
    as_elder, as_volunteer = ledger.acting_as(elder.principal_id), ledger.acting_as(volunteer.principal_id)
    for _ in range(ROUNDS):
        request_id = (await sr.create(as_elder, elder)).body["id"]
        await sr.assign(as_volunteer, request_id)
        await sr.check_in(as_volunteer, request_id)
        await sr.report(as_volunteer, request_id, 60)
        await owner.execute(
            "update service_requests set checked_out_at = now() - interval '8 days' where id = $1",
            uuid.UUID(request_id),
        )
        confirmed, job = await asyncio.gather(
            outcome(sr.confirm(ledger.acting_as(elder.principal_id, conns[1]), request_id)),
            conns[2].fetchval("select auto_confirm_service_requests($1, 100)", "job-race-" + uuid.uuid4().hex),
        )
        row = await owner.fetchrow("select status, rating from service_requests where id = $1", uuid.UUID(request_id))
        assert row["status"] == "completed"
        assert await _transactions(owner, request_id) == 1
        if confirmed.ok:
            assert row["rating"] == 5
        else:
            assert confirmed.code == "TB000:invalid_transition"
            assert row["rating"] is None
            assert job >= 1
    assert await ledger.balance(volunteer.account_id) == 60 * ROUNDS
    await assert_verified(owner, community)


async def test_a_double_submitted_confirm_replays_on_both_connections(
    conns: list[asyncpg.Connection], database: str, owner: asyncpg.Connection
) -> None:
    ledger, community, _, elder = await _world(conns, database)
    volunteer = await ledger.member(community, "volunteer")
    as_elder, as_volunteer = ledger.acting_as(elder.principal_id), ledger.acting_as(volunteer.principal_id)
    request_id = (await sr.create(as_elder, elder)).body["id"]
    await sr.assign(as_volunteer, request_id)
    await sr.check_in(as_volunteer, request_id)
    await sr.report(as_volunteer, request_id, 60)
    key, digest = "confirm-" + uuid.uuid4().hex, uuid.uuid4().bytes * 2
    outcomes = await asyncio.gather(
        *(
            outcome(sr.confirm(ledger.acting_as(elder.principal_id, conn), request_id, key=key, digest=digest))
            for conn in conns[1:3]
        )
    )
    assert all(o.ok for o in outcomes), outcomes
    results = [o.result for o in outcomes if o.result is not None]
    assert sorted(r.replayed for r in results) == [False, True]
    assert results[0].body == results[1].body
    assert await _transactions(owner, request_id) == 1
    await assert_verified(owner, community)


async def test_volunteers_racing_over_http_one_wins(
    settings: Settings, database: str, admin_token: str, owner: asyncpg.Connection
) -> None:
    async with concurrent_api(settings, database, admin_token) as api:
        community = await api.community()
        elder = await api.member(community, "resident")
        volunteers = [await api.member(community, "volunteer") for _ in range(4)]
        await fund(api, community, elder, 60)
        request = await asked(api, elder.token, elder, 60)
        answers = await asyncio.gather(*(step(api, request["id"], "assign", v.token, {}) for v in volunteers))
        assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
        assert {a.json()["code"] for a in answers if a.status_code == 409} == {"invalid_transition"}
        winner = next(v for v, a in zip(volunteers, answers, strict=True) if a.status_code == 200)
        await stepped(api, request["id"], "check-in", winner.token)
        await stepped(api, request["id"], "report", winner.token, {"minutes": 60})
        key = uuid.uuid4().hex
        confirms = await asyncio.gather(
            *(step(api, request["id"], "confirm", elder.token, {"rating": 5}, key=key) for _ in range(3))
        )
        assert [c.status_code for c in confirms] == [200, 200, 200]
        assert sum(c.headers.get("idempotent-replayed") == "true" for c in confirms) == 2
        assert await _transactions(owner, request["id"]) == 1
