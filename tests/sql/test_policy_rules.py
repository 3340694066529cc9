"""Rules that live in SQL: the policy's time zone, set_policy's changes, one member per phone and external_ref."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from tests.sql.support import Ledger


async def set_policy(ledger: Ledger, slug: str, changes: dict[str, Any]) -> None:
    await ledger.conn.fetchval(
        "select set_policy($1, 'test', $2, $3::text::jsonb)", ledger.actor, slug, json.dumps(changes)
    )


async def refusal(call: Any) -> tuple[str | None, dict[str, Any]]:
    with pytest.raises(asyncpg.PostgresError) as caught:
        await call
    assert caught.value.sqlstate == "TB000", caught.value
    hint = getattr(caught.value, "hint", None)
    return getattr(caught.value, "detail", None), json.loads(hint) if hint else {}


async def test_set_policy_changes_the_fields_given_and_records_the_whole_policy(
    ledger: Ledger, conn: asyncpg.Connection
) -> None:
    community = await ledger.community(max_balance_minutes=600)
    await set_policy(ledger, community.slug, {"time_zone": "Asia/Kolkata", "overdraft_minutes": 30})
    row = await conn.fetchrow("select * from communities where id = $1", community.id)
    assert (row["time_zone"], row["overdraft_minutes"], row["max_balance_minutes"]) == ("Asia/Kolkata", 30, 600)
    details = json.loads(
        await conn.fetchval(
            "select details::text from audit_events where subject_id = $1 and action = 'policy.changed'",
            community.id,
        )
    )
    before = {
        "unit_minutes": 15,
        "max_transaction_minutes": 1440,
        "max_balance_minutes": 600,
        "overdraft_minutes": 0,
        "time_zone": "Asia/Shanghai",
        "volunteer_min_age": None,
        "redeem_min_age": None,
        "gift_scope": "community",
        "pool_requires_eligibility": False,
    }
    assert details == {"before": before, "after": before | {"time_zone": "Asia/Kolkata", "overdraft_minutes": 30}}


@pytest.mark.parametrize("time_zone", ["Nowhere/Special", "asia/shanghai", "CST", "+08:00", None])
async def test_a_time_zone_must_be_one_postgresql_knows(ledger: Ledger, time_zone: str | None) -> None:
    community = await ledger.community()
    code, extra = await refusal(set_policy(ledger, community.slug, {"time_zone": time_zone}))
    assert code == "unknown_time_zone"
    assert [e["field"] for e in extra["errors"]] == ["$.time_zone"]
    if time_zone is not None:
        code, extra = await refusal(ledger.community(time_zone=time_zone))
        assert code == "unknown_time_zone"
        assert [e["field"] for e in extra["errors"]] == ["$.policy.time_zone"]


async def test_set_policy_refuses_fields_it_does_not_know(ledger: Ledger, conn: asyncpg.Connection) -> None:
    community = await ledger.community()
    code, _ = await refusal(set_policy(ledger, community.slug, {"unit_minutes": 30, "colour": "red"}))
    assert code == "invalid_request"
    assert await conn.fetchval("select unit_minutes from communities where id = $1", community.id) == 15


async def test_only_an_admin_sets_a_policy(ledger: Ledger) -> None:
    community = await ledger.community()
    coordinator = await ledger.member(community, "coordinator")
    code, _ = await refusal(set_policy(ledger.acting_as(coordinator.principal_id), community.slug, {}))
    assert code == "forbidden"


@pytest.mark.parametrize(
    ("column", "constraint"),
    [("phone", "members_community_id_phone_key"), ("external_ref", "members_community_id_external_ref_key")],
)
async def test_one_member_per_phone_and_external_ref_in_a_community(
    ledger: Ledger, conn: asyncpg.Connection, column: str, constraint: str
) -> None:
    community, other = await ledger.community(), await ledger.community()
    phone, ref = ("13900000000", None) if column == "phone" else (None, "REF-1")
    create = "select create_member($1, 'test', $2, $3, array['resident'], null, null, $4, $5)"
    await conn.fetchval(create, ledger.actor, community.slug, "甲", phone, ref)
    await conn.fetchval(create, ledger.actor, other.slug, "乙", phone, ref)
    with pytest.raises(asyncpg.UniqueViolationError) as caught:
        await conn.fetchval(create, ledger.actor, community.slug, "丙", phone, ref)
    assert caught.value.constraint_name == constraint
    # Members without the value never clash.
    for name in ("丁", "戊"):
        await conn.fetchval(create, ledger.actor, community.slug, name, None, None)
    assert await conn.fetchval("select count(*) from members where community_id = $1", community.id) == 3
