"""Workload g's history written by SQL (bench/history.py) is what the operations would write.

A small history is seeded the fast way next to credits, gifts, donations, grants and redemptions
made by the real operations; `timebank verify` finds the whole ledger sound, every account's
statement runs on without a gap, and each seeded row has the shape the operation's row has.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from bench.seed import REPORT_MEMBERS, ReportSeeder, Seeder
from timebank.ledger.verify import verify


async def _owner(database: str) -> asyncpg.Connection:
    return await asyncpg.connect(database, server_settings={"search_path": "timebank"})


def _shape(row: asyncpg.Record) -> dict[str, Any]:
    """What must agree between a seeded row and an operation's row of the same kind."""
    return {
        "kind": row["kind"],
        "service_date": row["service_date"] is not None,
        "on_behalf_of": row["on_behalf_of"] is not None,
        "detail_keys": row["detail_keys"],
        "legs": row["legs"],
    }


SHAPES = """
    select distinct on (t.kind) t.kind, t.service_date, t.on_behalf_of,
           array(select k from jsonb_object_keys(e.details) k order by k) as detail_keys,
           (select count(*) from postings p where p.transaction_id = t.id) as legs
      from transactions t join audit_events e on e.subject_id = t.id and e.action = 'transaction.created'
     where t.request_id = any($1::text[])
     order by t.kind, t.seq
"""


async def test_the_fast_history_passes_verify_and_matches_the_operations(fresh_db: str) -> None:
    # A database of its own: verify reads the whole ledger, and other tests plant violations in theirs.
    database = fresh_db
    seeder = await Seeder.connect(database, uuid.uuid4().hex[:10], connections=2)
    try:
        history = await ReportSeeder(seeder).seed(2_000, 12)
        community = await seeder.community("ops", 2, ("volunteer", "resident"))
        coordinator, (a, b) = community.coordinator, community.members
        async with seeder.pool.acquire() as conn:
            rid = "ops-" + uuid.uuid4().hex
            calls = (
                ("post_credit($1, $2, $3, $4, $5, 60, '2026-11-01', '服务')", a.id),
                ("post_transfer($1, $2, $3, $4, $5, $6, false, 15, '赠与')", a.id, b.id),
                ("post_transfer($1, $2, $3, $4, $5, null, true, 15, '捐赠')", a.id),
                ("post_pool_grant($1, $2, $3, $4, $5, 15, '资助')", b.id),
                ("post_redemption($1, $2, $3, $4, $5, 15, '助餐', null)", b.id),
            )
            for i, (call, *members) in enumerate(calls):
                key = f"k{i}"
                done = await conn.fetchrow(
                    f"select * from {call}", coordinator, rid, key, key.encode().ljust(32, b"0"), *members
                )
                assert done is not None
                assert done["status_code"] == 201, done
    finally:
        await seeder.close()
    assert history.entries == 2_000
    owner = await _owner(database)
    try:
        report = await verify(owner)
        assert report.ok, "\n".join(f"{n}: {m}" for n, m in report.violations)
        seeded = {r["kind"]: _shape(r) for r in await owner.fetch(SHAPES, [seeder.request_id])}
        made = {r["kind"]: _shape(r) for r in await owner.fetch(SHAPES, [rid])}
        assert set(seeded) == {"credit", "transfer", "donation", "pool_grant", "redemption"}
        assert seeded == made
        slug = history.slug
        counts = await owner.fetchrow(
            """
            select count(*) as transactions,
                   count(distinct date_trunc('month', t.created_at at time zone 'Asia/Shanghai')) as months,
                   (select count(*) from members m join communities c on c.id = m.community_id
                     where c.slug = $1 and m.created_at < min(t.created_at)) as members_before
              from transactions t join communities c on c.id = t.community_id where c.slug = $1
            """,
            slug,
        )
        assert counts is not None
        assert (counts["transactions"], counts["months"]) == (1_000, 12)
        assert counts["members_before"] == REPORT_MEMBERS + 1  # and the coordinator
        # No member's balance ever went below zero on the way.
        lowest = await owner.fetchval(
            "select min(p.balance_after_minutes) from postings p join accounts a on a.id = p.account_id"
            " join communities c on c.id = a.community_id where c.slug = $1 and a.kind = 'member'",
            slug,
        )
        assert lowest == 0
    finally:
        await owner.close()
