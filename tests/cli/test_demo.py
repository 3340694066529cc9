# ruff: noqa: E501, PT018
"""`timebank demo`: 紫轩社区 with 22 grids and four months of life, made through the real SQL operations."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.pages.helpers import csrf_of
from timebank.app import create_app
from timebank.config import Settings
from timebank.demo import DemoError, load_demo
from timebank.ledger.verify import verify
from timebank.members.pins import pin_matches

TOKEN = re.compile(r"\btb_[A-Za-z0-9_-]{43}\b")
SIGN_IN = re.compile(
    r"^  (resident|volunteer|coordinator|auditor) +(\S+) +(\d{6}) +(\d{6}) +(http://\S+)$", re.MULTILINE
)
STATUSES = {"open", "assigned", "in_progress", "reported", "completed", "disputed", "cancelled"}
SERVICE_TYPES = {"meals", "cleaning", "bathing", "medical_escort", "companionship", "errands"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
TIMEBANK = Path(sys.executable).with_name("timebank")


@pytest.fixture
async def demo_db(fresh_db: str) -> AsyncIterator[asyncpg.Connection]:
    """An owner connection to a fresh database of the test's own."""
    conn = await asyncpg.connect(fresh_db, server_settings={"search_path": "timebank"})
    yield conn
    await conn.close()


@pytest.fixture
async def demo(fresh_db: str, settings: Settings) -> str:
    """The summary of the first `timebank demo` on a fresh database."""
    return await load_demo(settings, fresh_db)


def _months_back(now: datetime, back: int) -> str:
    year, month = now.year, now.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return f"{year:04d}-{month:02d}"


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    """How many rows each table holds; a second demo run must not change any of these."""
    tables = (
        "communities",
        "members",
        "accounts",
        "transactions",
        "postings",
        "holds",
        "hold_resolutions",
        "service_requests",
        "credit_batches",
        "relatives",
    )
    return {table: await conn.fetchval(f"select count(*) from {table}") for table in tables}


async def test_the_demo_runs_twice_adds_nothing_and_verifies(
    fresh_db: str, settings: Settings, demo: str, demo_db: asyncpg.Connection
) -> None:
    assert "紫轩社区 (zixuan) loaded" in demo
    assert "ledger verified" in demo
    before = await _counts(demo_db)
    second = await load_demo(settings, fresh_db)
    assert "already loaded" in second
    assert "ledger verified" in second
    assert await _counts(demo_db) == before
    report = await verify(demo_db)
    assert report.ok, report.violations
    # Each run issues fresh tokens and PINs for the four roles.
    assert len(set(TOKEN.findall(demo))) == 4
    assert not set(TOKEN.findall(demo)) & set(TOKEN.findall(second))


async def test_every_status_service_type_and_kind_of_life(demo: str, demo_db: asyncpg.Connection) -> None:
    community = await demo_db.fetchrow("select * from communities where slug = 'zixuan'")
    assert community["name"] == "紫轩社区"
    assert community["time_zone"] == "Asia/Shanghai"
    assert community["volunteer_min_age"] == 18
    cid = community["id"]
    grids = {r["grid"] for r in await demo_db.fetch("select grid from members where community_id = $1", cid)}
    assert grids == {str(n) for n in range(1, 23)}
    statuses = {
        r["status"] for r in await demo_db.fetch("select status from service_requests where community_id = $1", cid)
    }
    assert statuses == STATUSES
    cancels = {
        r["cancel_reason"]
        for r in await demo_db.fetch(
            "select cancel_reason from service_requests where community_id = $1 and status = 'cancelled'", cid
        )
    }
    assert "expired" in cancels and len(cancels) >= 2
    withdrawn = await demo_db.fetchval(
        "select count(*) from audit_events where community_id = $1 and action = 'service_request.withdrawn'", cid
    )
    assert withdrawn >= 2
    # The 7-day job confirmed one (no rating); a coordinator settled disputes with other minutes.
    assert await demo_db.fetchval(
        "select count(*) from audit_events where community_id = $1 and actor = 'system'"
        " and action = 'service_request.completed'",
        cid,
    )
    fundings = {
        r["funding"]
        for r in await demo_db.fetch(
            "select distinct funding from service_requests where community_id = $1 and status = 'completed'", cid
        )
    }
    assert fundings == {"own", "community", "pool"}
    rated = await demo_db.fetchval(
        "select count(*) from service_requests where community_id = $1 and rating is not null and comment <> ''", cid
    )
    assert rated > 50
    kinds = {r["kind"] for r in await demo_db.fetch("select kind from transactions where community_id = $1", cid)}
    assert kinds == {"credit", "transfer", "donation", "pool_grant", "redemption", "hold_capture", "reversal"}
    batches = await demo_db.fetch(
        "select b.description, count(*) as n from credit_batches b join credit_batch_transactions t on t.credit_batch_id = b.id"
        " where b.community_id = $1 group by b.id",
        cid,
    )
    assert len(batches) == 3 and all(b["n"] == 30 for b in batches)
    reversal = await demo_db.fetchrow(
        "select r.description from transactions r where r.community_id = $1 and r.kind = 'reversal'", cid
    )
    assert "录错志愿者" in reversal["description"]
    # Relatives: volunteers and their elderly parents; every gift goes to a relative.
    gifts = await demo_db.fetch(
        """
        select giver.member_id as giver, receiver.member_id as receiver
          from transactions t
          join postings g on g.transaction_id = t.id and g.minutes < 0 join accounts giver on giver.id = g.account_id
          join postings r on r.transaction_id = t.id and r.minutes > 0 join accounts receiver on receiver.id = r.account_id
         where t.community_id = $1 and t.kind = 'transfer'
        """,
        cid,
    )
    assert len(gifts) >= 10
    for gift in gifts:
        assert (
            await demo_db.fetchval(
                "select relation from relatives where member_id = $1 and relative_member_id = $2",
                gift["giver"],
                gift["receiver"],
            )
            == "parent"
        )
    holds = await demo_db.fetch(
        """
        select coalesce(r.status, 'pending') as status from holds h left join hold_resolutions r on r.hold_id = h.id
         where h.community_id = $1 and not exists (select 1 from service_requests s where s.hold_id = h.id)
        """,
        cid,
    )
    assert {h["status"] for h in holds} >= {"pending", "captured", "released"}
    # Residents: many over 60, some over 80, some without a phone (the coordinator acts for them).
    people = await demo_db.fetchrow(
        """
        select count(*) filter (where birth_date <= (now() - interval '60 years')::date) as over_60,
               count(*) filter (where birth_date <= (now() - interval '80 years')::date) as over_80,
               count(*) filter (where phone is null) as no_phone, count(*) as residents
          from members where community_id = $1 and roles = array['resident']
        """,
        cid,
    )
    assert people["over_60"] == people["residents"] >= 100
    assert people["over_80"] >= 30
    assert people["no_phone"] >= 20
    assert await demo_db.fetchval(
        """
        select count(*) from service_requests r join members m on m.id = r.member_id
         where r.community_id = $1 and m.phone is null and r.on_behalf_of = r.member_id
        """,
        cid,
    )
    # One under-age volunteer, never credited.
    teen = await demo_db.fetchrow(
        "select m.id, a.balance_minutes from members m join accounts a on a.member_id = m.id"
        " where m.community_id = $1 and 'volunteer' = any(m.roles) and m.birth_date > (now() - interval '18 years')::date",
        cid,
    )
    assert teen is not None and teen["balance_minutes"] == 0
    # Nobody's balance is negative.
    assert (
        await demo_db.fetchval(
            "select min(balance_minutes - held_minutes) from accounts where community_id = $1 and kind <> 'issuance'",
            cid,
        )
        >= 0
    )


async def test_history_is_spread_over_four_months(demo: str, demo_db: asyncpg.Connection) -> None:
    cid = await demo_db.fetchval("select id from communities where slug = 'zixuan'")
    now = datetime.now(SHANGHAI)
    months = {
        r["m"]
        for r in await demo_db.fetch(
            "select distinct to_char(created_at at time zone 'Asia/Shanghai', 'YYYY-MM') as m from transactions"
            " where community_id = $1",
            cid,
        )
    }
    assert {_months_back(now, 3), _months_back(now, 2), _months_back(now, 1)} <= months
    assert await demo_db.fetchval("select max(created_at) from transactions where community_id = $1", cid) <= now
    # Every step's moment precedes the next: a request is created, then scheduled, checked in, reported.
    assert not await demo_db.fetchval(
        """
        select count(*) from service_requests where community_id = $1
           and (checked_in_at < created_at or checked_out_at < checked_in_at or updated_at < created_at)
        """,
        cid,
    )
    # Each account's postings are in the order of their versions.
    assert not await demo_db.fetchval(
        """
        select count(*) from (
            select created_at < lag(created_at) over w as backwards from postings
             where account_id in (select id from accounts where community_id = $1)
            window w as (partition by account_id order by account_version)) p
         where backwards
        """,
        cid,
    )
    # A request's transaction is dated the day its provider reported it.
    assert not await demo_db.fetchval(
        """
        select count(*) from transactions t join service_requests r on r.id = t.service_request_id
         where t.community_id = $1 and t.service_date <> (r.checked_out_at at time zone 'Asia/Shanghai')::date
        """,
        cid,
    )


async def test_the_monthly_reports_have_something_to_show(fresh_db: str, settings: Settings, demo: str) -> None:
    token = re.search(r"^  coordinator \S+ +(tb_\S+)$", demo, re.MULTILINE)
    assert token is not None, demo
    now = datetime.now(SHANGHAI)
    async with AsyncTestClient(app=create_app(settings, fresh_db)) as client:
        for back in (3, 2, 1):
            month = _months_back(now, back)
            answer = await client.get(
                f"/v1/communities/zixuan/reports/monthly?month={month}",
                headers={"Authorization": f"Bearer {token.group(1)}"},
            )
            assert answer.status_code == 200, answer.text
            report = answer.json()
            totals = report["totals"]
            for figure in ("earned_minutes", "redeemed_minutes", "gifted_minutes", "donated_minutes"):
                assert totals[figure] > 0, (month, figure, totals)
            assert totals["services_completed"] >= 20, (month, totals)
            assert totals["active_volunteers"] >= 30, (month, totals)
            busy = [g for g in report["by_grid"] if g["earned_minutes"] > 0 and g["services_completed"] > 0]
            assert len(busy) >= 15, (month, report["by_grid"])
            by_type = {t["service_type"]: t for t in report["by_service_type"]}
            assert set(by_type) == SERVICE_TYPES
            for code, figures in by_type.items():
                assert figures["services_completed"] > 0 and figures["minutes"] > 0, (month, code, figures)


async def test_the_printed_sign_in_data_works(demo: str, demo_db: asyncpg.Connection) -> None:
    rows = SIGN_IN.findall(demo)
    assert [r[0] for r in rows] == ["resident", "volunteer", "coordinator", "auditor"], demo
    for role, name, member_no, pin, _home in rows:
        member = await demo_db.fetchrow(
            "select m.id, m.display_name, m.roles, p.pin_hash from members m join communities c on c.id = m.community_id"
            " join member_pins p on p.member_id = m.id where c.slug = 'zixuan' and m.member_no = $1",
            member_no,
        )
        assert member is not None, (role, member_no)
        assert member["display_name"] == name
        assert role in member["roles"]
        assert await pin_matches(member["pin_hash"], pin)
        assert not await pin_matches(member["pin_hash"], f"{(int(pin) + 1) % 10**6:06d}")
    assert "zixuan" in demo
    assert "http://" in demo


async def test_each_printed_sign_in_opens_that_persons_page(fresh_db: str, settings: Settings, demo: str) -> None:
    """Item 1 of the pages issue: the console says where to open a browser; signing in there as each
    role lands on the page printed beside it, which shows that person."""
    assert re.search(r"open http://\S+/login and sign in to community zixuan", demo), demo
    async with AsyncTestClient(app=create_app(settings, fresh_db)) as client:
        client.follow_redirects = False
        for role, name, member_no, pin, home in SIGN_IN.findall(demo):
            client.cookies.clear()
            form = await client.get("/login")
            signed_in = await client.post(
                "/login",
                data={"csrf_token": csrf_of(form.text), "community": "zixuan", "member_no": member_no, "pin": pin},
            )
            assert signed_in.status_code == 303, (role, signed_in.text)
            landing = await client.get(signed_in.headers["location"])
            assert landing.status_code == 303, (role, landing.text)
            path = home.split("/", 3)[3]
            assert landing.headers["location"] == "/" + path, (role, landing.headers["location"], home)
            page = await client.get("/" + path)
            assert page.status_code == 200, (role, page.text[:500])
            assert name in page.text, (role, name)


async def test_the_printed_tokens_and_curl_lines_work(fresh_db: str, settings: Settings, demo: str) -> None:
    async with AsyncTestClient(app=create_app(settings, fresh_db)) as client:
        for line in demo.splitlines():
            match = re.match(r'\s*curl -H "Authorization: Bearer (tb_\S+)" "?(http://[^/\s]+)(/[^"\s]+)"?$', line)
            if match:
                answer = await client.get(match.group(3), headers={"Authorization": f"Bearer {match.group(1)}"})
                assert answer.status_code == 200, (line, answer.text)
        credit = re.search(
            r'Bearer (tb_[A-Za-z0-9_-]{43})" -H \'Idempotency-Key: ([^\']+)\'.*?-d \'([^\']+)\' (http://\S+)',
            demo,
            re.DOTALL,
        )
        assert credit is not None, demo
        token, key, body, url = credit.groups()
        assert url.endswith("/v1/credits")
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key, "Content-Type": "application/json"}
        first = await client.post("/v1/credits", headers=headers, content=body.encode())
        assert first.status_code == 201, first.text
        again = await client.post("/v1/credits", headers=headers, content=body.encode())
        assert again.headers["idempotent-replayed"] == "true"


async def test_cli_demo_command(fresh_db: str, demo_db: asyncpg.Connection) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env["TIMEBANK_DATABASE_URL"] = fresh_db
    env["TIMEBANK_LOG_FORMAT"] = "json"
    process = await asyncio.create_subprocess_exec(
        str(TIMEBANK), "demo", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    output = stdout.decode()
    assert process.returncode == 0, stderr.decode()
    assert "紫轩社区 (zixuan) loaded" in output
    assert "ledger verified" in output
    assert len(SIGN_IN.findall(output)) == 4


async def test_a_database_with_signed_checkpoints_is_refused(
    fresh_db: str, settings: Settings, demo_db: asyncpg.Connection
) -> None:
    # Back-dated transactions logged after a signed checkpoint are what verify --checkpoints flags.
    await demo_db.execute(
        "insert into log_checkpoints (tree_size, root_hash, note) values (1, $1, 'planted')", bytes(32)
    )
    with pytest.raises(DemoError, match="signed checkpoints"):
        await load_demo(settings, fresh_db)
    assert await demo_db.fetchval("select count(*) from communities where slug = 'zixuan'") == 0
