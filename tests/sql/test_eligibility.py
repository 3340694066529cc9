"""Eligibility where hours move (SQL): each operation refuses what the community's policy does not
allow, and the batched paths leave such operations out for the single operation to refuse."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import asyncpg
import pytest

from tests.sql.support import Community, Ledger, Member
from tests.sql.test_batch_writes import post_credits, post_redemptions, post_transfers
from timebank.ledger.verify import verify


def key() -> str:
    return uuid.uuid4().hex


async def set_policy(ledger: Ledger, community: Community, **changes: Any) -> None:
    await ledger.conn.fetchval(
        "select set_policy($1, 'test', $2, $3::text::jsonb)", ledger.actor, community.slug, json.dumps(changes)
    )


async def born(owner: asyncpg.Connection, member: Member, birth_date: dt.date | None) -> None:
    await owner.execute("update members set birth_date = $2 where id = $1", member.id, birth_date)


async def refused(call: Any) -> str | None:
    with pytest.raises(asyncpg.PostgresError) as caught:
        await call
    assert caught.value.sqlstate == "TB000", caught.value
    return getattr(caught.value, "detail", None)


def years_before(day: dt.date, years: int) -> dt.date:
    return day.replace(year=day.year - years)


async def test_credits_need_the_volunteer_age_on_the_service_date(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    await set_policy(ledger, community, volunteer_min_age=18)
    young, adult, unknown = [await ledger.member(community, "volunteer") for _ in range(3)]
    service_date = dt.date(2026, 11, 1)
    await born(owner, young, dt.date(2008, 11, 2))  # 18 on 2026-11-02
    await born(owner, adult, dt.date(2008, 11, 1))  # 18 on the service date
    before = await conn.fetchval("select count(*) from transactions where community_id = $1", community.id)
    answers = await post_credits(
        conn,
        [
            (ledger.actor, young.id, 15, key()),
            (ledger.actor, adult.id, 15, key()),
            (ledger.actor, unknown.id, 15, key()),
        ],
        [service_date] * 3,
    )
    assert sorted(answers) == [2]
    for member in (young, unknown):
        assert await refused(ledger.call("post_credit", member.id, 15, service_date, "served")) == "not_eligible"
    # The birthday itself is accepted.
    await ledger.call("post_credit", young.id, 15, dt.date(2026, 11, 2), "served")
    assert await conn.fetchval("select count(*) from transactions where community_id = $1", community.id) == before + 2
    report = await verify(owner, community.id)
    assert report.ok, report.violations


async def test_redemptions_and_holds_need_the_redeem_age_today_where_the_community_is(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    # Kiritimati is 14 hours ahead of UTC: its today is often UTC's tomorrow.
    community = await ledger.community(time_zone="Pacific/Kiritimati")
    await set_policy(ledger, community, redeem_min_age=60)
    today = await conn.fetchval("select (now() at time zone 'Pacific/Kiritimati')::date")
    turning, tomorrow, unknown = [await ledger.member(community, "resident") for _ in range(3)]
    giver = await ledger.member(community, "volunteer")
    await ledger.credit(giver, 600)
    for member in (turning, tomorrow, unknown):
        await ledger.gift(giver, member, 120)
    await born(owner, turning, years_before(today, 60))
    await born(owner, tomorrow, years_before(today + dt.timedelta(days=1), 60))

    answers = await post_redemptions(
        conn,
        [
            (turning.principal_id, turning.id, None, 15, key()),
            (tomorrow.principal_id, tomorrow.id, None, 15, key()),
            (ledger.actor, unknown.id, None, 15, key()),
        ],
    )
    assert sorted(answers) == [1]
    for member in (tomorrow, unknown):
        assert await refused(ledger.redeem(member, 15)) == "not_eligible"
        assert await refused(ledger.hold(member, 15)) == "not_eligible"
    assert (await ledger.hold(turning, 15)).status_code == 201
    assert await ledger.balance(tomorrow.account_id) == 120
    assert await ledger.balance(turning.account_id) == 105


async def test_gifts_go_only_to_relatives_when_the_policy_says_so(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    son, mother, neighbour = [await ledger.member(community, "volunteer", "resident") for _ in range(3)]
    await ledger.credit(son, 300)
    # Before the rule: a gift to anyone in the community.
    assert (await ledger.gift(son, neighbour, 15)).status_code == 201
    await set_policy(ledger, community, gift_scope="relatives")
    await owner.execute(
        "insert into relatives (member_id, relative_member_id, relation, created_by)"
        " values ($1, $2, 'parent', 'test'), ($2, $1, 'child', 'test')",
        son.id,
        mother.id,
    )
    answers = await post_transfers(
        conn,
        [
            (son.principal_id, son.id, mother.id, 15, key()),
            (son.principal_id, son.id, neighbour.id, 15, key()),
        ],
    )
    assert sorted(answers) == [1]
    assert await refused(ledger.gift(son, neighbour, 15)) == "not_a_relative"
    assert (await ledger.gift(son, mother, 15)).status_code == 201
    # Donations to the pool are not gifts.
    assert (await ledger.donate(son, 15)).status_code == 201
    assert await ledger.balance(son.account_id) == 300 - 15 - 15 - 15 - 15
    assert await ledger.balance(neighbour.account_id) == 15


async def test_pool_grants_need_pool_eligible_when_required(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    donor, elder = await ledger.member(community, "volunteer"), await ledger.member(community, "resident")
    await ledger.credit(donor, 120)
    await ledger.donate(donor, 120)
    assert (await ledger.grant(elder, 15)).status_code == 201
    await set_policy(ledger, community, pool_requires_eligibility=True)
    assert await refused(ledger.grant(elder, 15)) == "not_eligible"
    await owner.execute("update members set pool_eligible = true where id = $1", elder.id)
    assert (await ledger.grant(elder, 15)).status_code == 201
    assert await ledger.balance(elder.account_id) == 30
