"""`timebank demo`: a sample community made through the real SQL operations, loaded exactly once."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from timebank.app import create_app
from timebank.config import Settings
from timebank.demo import load_demo
from timebank.ledger.verify import verify

TOKEN = re.compile(r"\btb_[A-Za-z0-9_-]{43}\b")
ALL_KINDS = {"credit", "transfer", "donation", "pool_grant", "redemption", "hold_capture", "reversal"}
MEMBER_COUNT = 11  # one coordinator, six volunteers, four elderly residents
TIMEBANK = Path(sys.executable).with_name("timebank")


@pytest.fixture
async def demo_db(fresh_db: str) -> AsyncIterator[asyncpg.Connection]:
    """An owner connection to a fresh database of the test's own."""
    conn = await asyncpg.connect(fresh_db, server_settings={"search_path": "timebank"})
    yield conn
    await conn.close()


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    """How many rows each table holds; a second demo run must not change any of these."""
    tables = ("communities", "members", "accounts", "transactions", "postings", "holds", "hold_resolutions")
    return {table: await conn.fetchval(f"select count(*) from {table}") for table in tables}


async def _authenticate(conn: asyncpg.Connection, token: str) -> asyncpg.Record:
    row = await conn.fetchrow("select * from authenticate(sha256(convert_to($1, 'UTF8')))", token)
    assert row is not None
    # authenticate() returns a composite: an unknown token yields one row of nulls, not no row.
    assert row["id"] is not None, f"token {token[:8]}... does not authenticate"
    return row


async def test_demo_loads_once_and_verifies(fresh_db: str, settings: Settings, demo_db: asyncpg.Connection) -> None:
    first = await load_demo(settings, fresh_db)

    community_id = await demo_db.fetchval("select id from communities where slug = 'zixuan'")
    assert community_id is not None
    assert await demo_db.fetchval("select name from communities where id = $1", community_id) == "紫轩社区"
    assert await demo_db.fetchval("select unit_minutes from communities where id = $1", community_id) == 15
    assert await demo_db.fetchval("select count(*) from members where community_id = $1", community_id) == MEMBER_COUNT
    kinds = {
        row["kind"]: row["n"]
        for row in await demo_db.fetch(
            "select kind, count(*) as n from transactions where community_id = $1 group by kind", community_id
        )
    }
    assert set(kinds) == ALL_KINDS
    assert kinds["credit"] >= 10
    assert "already loaded" not in first
    assert "ledger verified" in first
    before = await _counts(demo_db)

    second = await load_demo(settings, fresh_db)
    assert "already loaded" in second
    assert "ledger verified" in second
    assert await _counts(demo_db) == before
    report = await verify(demo_db)
    assert report.ok, report.violations

    # Each run issues three fresh tokens (coordinator, volunteer, resident), all of which work.
    first_tokens, second_tokens = TOKEN.findall(first), TOKEN.findall(second)
    assert len(set(first_tokens)) == 3
    assert len(set(second_tokens)) == 3
    assert not set(first_tokens) & set(second_tokens)
    for tokens in (first_tokens, second_tokens):
        roles = []
        for token in dict.fromkeys(tokens):
            principal = await _authenticate(demo_db, token)
            assert principal["community_id"] == community_id
            roles.append(principal["roles"])
        assert [set(r) for r in roles] == [{"coordinator"}, {"volunteer"}, {"resident"}]


async def test_demo_tells_a_community_story(fresh_db: str, settings: Settings, demo_db: asyncpg.Connection) -> None:
    summary = await load_demo(settings, fresh_db)
    community_id = await demo_db.fetchval("select id from communities where slug = 'zixuan'")
    coordinator = await demo_db.fetchval(
        "select p.id from principals p join members m on m.id = p.member_id "
        "where m.community_id = $1 and 'coordinator' = any(m.roles)",
        community_id,
    )
    assert coordinator is not None

    members = await demo_db.fetch("select * from members where community_id = $1", community_id)
    roles = [set(m["roles"]) for m in members]
    assert sum("volunteer" in r for r in roles) >= 5
    assert sum("resident" in r for r in roles) >= 4
    assert {m["grid"] for m in members} == {"1", "2"}
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", m["display_name"]) for m in members)
    for m in members:
        assert m["display_name"] in summary

    # Credits: entered by the coordinator for services spread over August to November 2026.
    credits = await demo_db.fetch(
        "select * from transactions where community_id = $1 and kind = 'credit'", community_id
    )
    assert {c["created_by"] for c in credits} == {coordinator}
    dates = [c["service_date"] for c in credits]
    assert min(dates) >= date(2026, 8, 1)
    assert max(dates) <= date(2026, 11, 30)
    assert len({d.month for d in dates}) == 4
    descriptions = " ".join(c["description"] for c in credits)
    for service in ("陪同就医", "助餐", "打扫卫生", "聊天陪伴"):
        assert service in descriptions

    # Gifts go from a volunteer to a resident; donations reach the pool; the pool helps an 80+ resident.
    gift_receivers = await demo_db.fetch(
        """
        select m.roles from transactions t join postings p on p.transaction_id = t.id
          join accounts a on a.id = p.account_id join members m on m.id = a.member_id
         where t.community_id = $1 and t.kind = 'transfer' and p.minutes > 0
        """,
        community_id,
    )
    assert gift_receivers
    assert all("resident" in r["roles"] for r in gift_receivers)
    granted = await demo_db.fetch(
        """
        select m.birth_date, m.roles, t.created_at from transactions t join postings p on p.transaction_id = t.id
          join accounts a on a.id = p.account_id join members m on m.id = a.member_id
         where t.community_id = $1 and t.kind = 'pool_grant' and p.minutes > 0
        """,
        community_id,
    )
    assert granted
    for row in granted:
        assert "resident" in row["roles"]
        assert row["birth_date"] <= date(row["created_at"].year - 80, 12, 31)

    # Redemptions: some by the resident, some recorded by the coordinator on behalf of one without a phone.
    redemptions = await demo_db.fetch(
        """
        select t.created_by, t.on_behalf_of, m.phone from transactions t
          left join members m on m.id = t.on_behalf_of
         where t.community_id = $1 and t.kind = 'redemption'
        """,
        community_id,
    )
    on_behalf = [r for r in redemptions if r["on_behalf_of"] is not None]
    assert on_behalf
    assert all(r["created_by"] == coordinator and r["phone"] is None for r in on_behalf)
    assert any(r["on_behalf_of"] is None and r["created_by"] != coordinator for r in redemptions)

    # Holds: one still pending, one captured into a hold_capture transaction, one released.
    holds = await demo_db.fetch(
        """
        select coalesce(r.status, case when h.expires_at <= now() then 'expired' else 'pending' end) as status,
               r.transaction_id
          from holds h left join hold_resolutions r on r.hold_id = h.id
         where h.community_id = $1
        """,
        community_id,
    )
    assert sorted(h["status"] for h in holds) == ["captured", "pending", "released"]

    # One mistaken credit, reversed: the reversal mirrors it and links to it.
    reversal = await demo_db.fetchrow(
        "select r.*, o.kind as original_kind from transactions r join transactions o on o.id = r.reverses "
        "where r.community_id = $1 and r.kind = 'reversal'",
        community_id,
    )
    assert reversal is not None
    assert reversal["original_kind"] == "credit"
    assert reversal["created_by"] == coordinator

    # Hours moved with deterministic Idempotency-Keys, like an API client would send them.
    keys = {r["key"] for r in await demo_db.fetch("select key from idempotency_keys")}
    assert {"demo-credit-1", "demo-reversal-1", "demo-pool-grant-1", "demo-hold-2-capture"} <= keys

    # Nobody went negative; the pool still holds what was donated but not yet granted.
    assert (
        await demo_db.fetchval(
            "select min(balance_minutes) from accounts where community_id = $1 and kind = 'member'", community_id
        )
        >= 0
    )
    assert (
        await demo_db.fetchval(
            "select balance_minutes from accounts where community_id = $1 and kind = 'pool'", community_id
        )
        >= 0
    )

    # The summary shows example calls with a token and a real account id.
    assert 'curl -H "Authorization: Bearer tb_' in summary
    assert "/v1/me" in summary
    entries = re.findall(r"/v1/accounts/([0-9a-f-]{36})/entries", summary)
    assert entries
    for account_id in entries:
        assert await demo_db.fetchval("select kind from accounts where id = $1::uuid", account_id) == "member"


async def test_cli_demo_command(fresh_db: str, demo_db: asyncpg.Connection) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env["TIMEBANK_DATABASE_URL"] = fresh_db
    env["TIMEBANK_LOG_FORMAT"] = "json"
    process = await asyncio.create_subprocess_exec(
        str(TIMEBANK), "demo", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    output = stdout.decode()
    assert process.returncode == 0, stderr.decode()
    assert "紫轩社区 (zixuan) loaded" in output
    assert "ledger verified" in output
    tokens = TOKEN.findall(output)
    assert tokens
    for token in tokens:
        await _authenticate(demo_db, token)
    assert await demo_db.fetchval("select count(*) from members") == MEMBER_COUNT


CREDIT_EXAMPLE = re.compile(
    r'Bearer (tb_[A-Za-z0-9_-]{43})" -H \'Idempotency-Key: ([^\']+)\'.*?-d \'([^\']+)\' (http://\S+)', re.DOTALL
)


async def test_the_printed_credit_example_posts_once(fresh_db: str, settings: Settings) -> None:
    summary = await load_demo(settings, fresh_db)
    match = CREDIT_EXAMPLE.search(summary)
    assert match is not None, summary
    token, key, body, url = match.groups()
    assert url.endswith("/v1/credits")
    async with AsyncTestClient(app=create_app(settings, fresh_db)) as client:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key, "Content-Type": "application/json"}
        first = await client.post("/v1/credits", headers=headers, content=body.encode())
        assert first.status_code == 201, first.text
        again = await client.post("/v1/credits", headers=headers, content=body.encode())
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
