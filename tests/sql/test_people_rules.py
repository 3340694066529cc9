"""People rules in SQL: ages counted in the community's time zone, the eligibility helpers that the
operations moving hours call, member numbers given in order and never changed."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.sql.support import Community, Ledger, Member, owner_connect


@pytest.fixture
async def owner_conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await owner_connect(database)
    yield connection
    await connection.close()


async def set_policy(ledger: Ledger, community: Community, changes: dict[str, Any]) -> None:
    await ledger.conn.fetchval(
        "select set_policy($1, 'test', $2, $3::text::jsonb)", ledger.actor, community.slug, json.dumps(changes)
    )


async def refusal(call: Any) -> tuple[str | None, str]:
    with pytest.raises(asyncpg.PostgresError) as caught:
        await call
    assert caught.value.sqlstate == "TB000", caught.value
    return getattr(caught.value, "detail", None), caught.value.args[0]


async def born(owner: asyncpg.Connection, member: Member, birth_date: dt.date | None) -> None:
    await owner.execute("update members set birth_date = $2 where id = $1", member.id, birth_date)


@pytest.mark.parametrize(
    ("birth_date", "on", "age"),
    [
        ("2008-12-07", "2026-12-06", 17),
        ("2008-12-07", "2026-12-07", 18),
        ("1956-04-02", "2026-04-01", 69),
        ("1956-04-02", "2026-04-02", 70),
        # Born on 29 February: a year older on 1 March in a common year, on the 29th in a leap year.
        ("2008-02-29", "2026-02-28", 17),
        ("2008-02-29", "2026-03-01", 18),
        ("2008-02-29", "2028-02-29", 20),
        ("2026-12-07", "2026-12-07", 0),
    ],
)
async def test_age_on_counts_whole_years(owner_conn: asyncpg.Connection, birth_date: str, on: str, age: int) -> None:
    got = await owner_conn.fetchval(
        "select _age_on($1, $2)", dt.date.fromisoformat(birth_date), dt.date.fromisoformat(on)
    )
    assert got == age


@pytest.mark.parametrize("time_zone", ["Asia/Shanghai", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
async def test_today_is_the_date_where_the_community_is(
    ledger: Ledger, owner_conn: asyncpg.Connection, time_zone: str
) -> None:
    community = await ledger.community(time_zone=time_zone)
    before = dt.datetime.now(ZoneInfo(time_zone)).date()
    got = await owner_conn.fetchval("select _today($1)", community.id)
    after = dt.datetime.now(ZoneInfo(time_zone)).date()
    assert got in (before, after)


async def test_volunteer_age_rule_applies_only_when_set(ledger: Ledger, owner_conn: asyncpg.Connection) -> None:
    community = await ledger.community()
    member = await ledger.member(community, "volunteer")
    check = "select _require_volunteer_age($1, $2, $3)"
    # No rule: even a member without a birth date may volunteer.
    await owner_conn.execute(check, community.id, member.id, dt.date(2026, 12, 1))
    await set_policy(ledger, community, {"volunteer_min_age": 18})
    code, message = await refusal(owner_conn.execute(check, community.id, member.id, dt.date(2026, 12, 1)))
    assert code == "not_eligible"
    assert "no birth_date" in message
    await born(owner_conn, member, dt.date(2008, 12, 7))
    # The birthday edge: the day before the 18th birthday refused, the birthday itself accepted.
    code, message = await refusal(owner_conn.execute(check, community.id, member.id, dt.date(2026, 12, 6)))
    assert code == "not_eligible"
    assert "at least 18" in message
    assert " is 17 on 2026-12-06" in message
    await owner_conn.execute(check, community.id, member.id, dt.date(2026, 12, 7))


async def test_redeem_age_rule_applies_only_when_set(ledger: Ledger, owner_conn: asyncpg.Connection) -> None:
    community = await ledger.community()
    member = await ledger.member(community, "resident")
    check = "select _require_redeem_age($1, $2, $3)"
    await owner_conn.execute(check, community.id, member.id, dt.date(2026, 12, 1))
    await set_policy(ledger, community, {"redeem_min_age": 60, "volunteer_min_age": 18})
    code, message = await refusal(owner_conn.execute(check, community.id, member.id, dt.date(2026, 12, 1)))
    assert (code, "no birth_date" in message) == ("not_eligible", True)
    await born(owner_conn, member, dt.date(1966, 12, 7))
    code, message = await refusal(owner_conn.execute(check, community.id, member.id, dt.date(2026, 12, 6)))
    assert code == "not_eligible"
    assert "at least 60" in message
    assert " is 59 on 2026-12-06" in message
    await owner_conn.execute(check, community.id, member.id, dt.date(2026, 12, 7))


async def test_pool_eligibility_applies_only_when_required(ledger: Ledger, owner_conn: asyncpg.Connection) -> None:
    community = await ledger.community()
    member = await ledger.member(community, "resident")
    check = "select _require_pool_eligible($1, $2)"
    await owner_conn.execute(check, community.id, member.id)
    await set_policy(ledger, community, {"pool_requires_eligibility": True})
    code, message = await refusal(owner_conn.execute(check, community.id, member.id))
    assert code == "not_eligible"
    assert "pool_eligible" in message
    await owner_conn.execute("update members set pool_eligible = true where id = $1", member.id)
    await owner_conn.execute(check, community.id, member.id)


async def test_member_numbers_are_given_in_order_per_community(
    ledger: Ledger, conn: asyncpg.Connection, owner_conn: asyncpg.Connection
) -> None:
    first, second = await ledger.community(), await ledger.community()
    members = [await ledger.member(first), await ledger.member(second), await ledger.member(first)]
    numbers = [await conn.fetchval("select member_no from members where id = $1", m.id) for m in members]
    assert numbers == ["000001", "000001", "000002"]
    with pytest.raises(asyncpg.PostgresError) as caught:
        await owner_conn.execute("update members set member_no = '000009' where id = $1", members[0].id)
    assert caught.value.sqlstate == "TB900"
