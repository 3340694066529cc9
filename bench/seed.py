"""Loading the benchmark's data fast, through the real operations.

Everything is made as the service makes it: as the service role, by the same SECURITY DEFINER
functions the HTTP endpoints call (create_community, create_member, issue_member_token,
post_credit, post_credits: the batch operation concurrent credits go through), each credit with
its own Idempotency-Key. Only the HTTP layer is skipped, and many credits share one call, on
connections with `synchronous_commit = off`: seeding only, never while measuring.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import asyncpg

from bench.history import HistoryPlan, write_history
from timebank.auth.bootstrap import create_principal
from timebank.auth.tokens import new_token
from timebank.config import load_settings
from timebank.db import Connection, connect_kwargs
from timebank.ledger.batch import BATCHED

MAX_CAP = 2**31 - 1  # the largest balance cap: long runs never hit it
UNIT = 15
SERVICE_DATE = date(2026, 11, 1)
GIFT_FUNDING = 1_440_000  # each gift member's starting balance: 96,000 gifts of 15 minutes
BATCH = 200  # calls per statement (one database transaction) when seeding many transactions


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    account_id: uuid.UUID


@dataclass
class Community:
    slug: str
    id: uuid.UUID
    coordinator: uuid.UUID  # the coordinator's principal id
    coordinator_token: str
    members: list[Member] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # members' own tokens, when issued


@dataclass(frozen=True)
class Statement:
    """The account with a long statement."""

    member: Member
    token: str
    entries: int
    seconds: float


class Seeder:
    def __init__(self, owner_url: str, pool: asyncpg.Pool, admin: uuid.UUID, admin_token: str, run: str) -> None:
        self.owner_url = owner_url
        self.pool = pool
        self.admin = admin
        self.admin_token = admin_token
        self.run = run
        self.request_id = f"bench-seed-{run}"

    @classmethod
    async def connect(cls, owner_url: str, run: str, connections: int = 4) -> Seeder:
        """A pool of service-role connections (commits not waiting for the disk) and a new admin."""
        kwargs = connect_kwargs(load_settings({}), owner_url)
        kwargs["server_settings"] |= {"synchronous_commit": "off", "statement_timeout": "0"}
        pool = await asyncpg.create_pool(**kwargs, min_size=1, max_size=connections)
        admin_token = "tb_bench_" + uuid.uuid4().hex + uuid.uuid4().hex
        admin = await create_principal(owner_url, "admin", None, admin_token)
        return cls(owner_url, pool, admin, admin_token, run)

    async def close(self) -> None:
        await self.pool.close()

    def slug(self, name: str) -> str:
        return f"bench-{self.run[:8]}-{name}"

    async def community(
        self,
        name: str,
        members: int,
        roles: Sequence[str] = ("volunteer",),
        max_transaction_minutes: int = 1440,
        member_tokens: bool = False,
    ) -> Community:
        """A community with a coordinator (with a token) and `members` members."""
        slug = self.slug(name)
        rid = self.request_id
        async with self.pool.acquire() as conn:
            community_id = await conn.fetchval(
                "select create_community($1, $2, $3, $4, null, $5, $6, $7, 0)",
                self.admin, rid, slug, f"bench {name}", UNIT, max_transaction_minutes, MAX_CAP,
            )  # fmt: skip
            coordinator = await conn.fetchval(
                "select create_member($1, $2, $3, 'coordinator', array['coordinator'], null, null, null, null)",
                self.admin, rid, slug,
            )  # fmt: skip
            token, digest = new_token()
            principal = await conn.fetchval(
                "select issue_member_token($1, $2, $3, $4)", self.admin, rid, coordinator, digest
            )
            ids = await conn.fetch(
                "select create_member($1, $2, $3, 'v' || g, $4::text[], null, null, null, null) as id"
                "  from generate_series(1, $5) g",
                self.admin, rid, slug, list(roles), members,
            )  # fmt: skip
            member_ids = [r["id"] for r in ids]
            rows = await conn.fetch("select member_id, id from accounts where member_id = any($1::uuid[])", member_ids)
            accounts: dict[uuid.UUID, uuid.UUID] = {r["member_id"]: r["id"] for r in rows}
            community = Community(slug, community_id, principal, token)
            community.members = [Member(m, accounts[m]) for m in member_ids]
            if member_tokens:
                issued = [new_token() for _ in member_ids]
                await conn.execute(
                    "select issue_member_token($1, $2, m, h) from unnest($3::uuid[], $4::bytea[]) as t(m, h)",
                    principal, rid, member_ids, [digest for _, digest in issued],
                )  # fmt: skip
                community.tokens = [token for token, _ in issued]
        return community

    async def communities(self, count: int, members: int) -> list[Community]:
        """`count` communities of `members` volunteers each, made over the pool's connections."""
        return list(await asyncio.gather(*(self.community(f"c{i:03d}", members) for i in range(count))))

    async def gift_community(self, members: int, name: str = "gifts") -> Community:
        """Members who are volunteers and residents, each with its own token and GIFT_FUNDING minutes."""
        community = await self.community(
            name, members, ("volunteer", "resident"), max_transaction_minutes=GIFT_FUNDING, member_tokens=True
        )
        async with self.pool.acquire() as conn:
            credited = await conn.fetchval(
                """
                select count(*) filter (where r.status_code = 201)
                  from unnest($5::uuid[]) with ordinality as u(m, i)
                 cross join lateral post_credit($1, $2, $3 || i, sha256(convert_to($3 || i, 'UTF8')), m, $4, $6, 'seed')
                       as r
                """,
                community.coordinator, self.request_id, f"seed-{self.run}-fund-", GIFT_FUNDING,
                [m.id for m in community.members], SERVICE_DATE,
            )  # fmt: skip
        if credited != members:
            raise RuntimeError(f"funding the gift members: {credited} of {members} credits succeeded")
        return community

    async def statement(self, entries: int, progress: Callable[[int, float], None] | None = None) -> Statement:
        """One member whose account gets `entries` entries, credits posted BATCH at a time by post_credits.

        Every entry locks the same account, so more connections would only queue behind one
        another: this runs on one connection.
        """
        community = await self.community("statement", 1, ("volunteer", "resident"), member_tokens=True)
        member = community.members[0]
        started = time.perf_counter()
        done = 0
        async with self.pool.acquire() as conn:
            while done < entries:
                size = min(BATCH, entries - done)
                ok = await self._post_credits(
                    conn, community.coordinator, [member.id] * size, f"seed-{self.run}-st-{done}-", "bench statement"
                )
                if ok != size:
                    raise RuntimeError(f"seeding the statement: {ok} of {size} credits posted at entry {done}")
                done += size
                if progress is not None:
                    progress(done, time.perf_counter() - started)
        return Statement(member, community.tokens[0], entries, time.perf_counter() - started)

    async def _post_credits(
        self, conn: Connection, actor: uuid.UUID, members: Sequence[uuid.UUID], key_prefix: str, description: str
    ) -> int:
        """Credits of UNIT minutes, one per member listed, by post_credits (the service's batch operation)."""
        size = len(members)
        keys = [f"{key_prefix}{i}" for i in range(size)]
        rows = await conn.fetch(
            BATCHED["post_credit"].query(),
            [actor] * size, [self.request_id] * size, keys, [hashlib.sha256(k.encode()).digest() for k in keys],
            list(members), [UNIT] * size, [SERVICE_DATE] * size, [description] * size,
        )  # fmt: skip
        return len(rows)

    async def credits(
        self, communities: Sequence[Community], count: int, progress: Callable[[int, float], None] | None = None
    ) -> float:
        """`count` more credits by the admin, spread over the communities' members, on every pooled connection."""
        targets = [m.id for c in communities for m in c.members]
        if not targets:
            raise RuntimeError("no members to credit")
        started = time.perf_counter()
        next_start = 0
        done = 0

        async def worker() -> None:
            nonlocal next_start, done
            async with self.pool.acquire() as conn:
                while next_start < count:
                    first = next_start
                    size = min(BATCH, count - first)
                    next_start += size
                    members = [targets[(first + i) % len(targets)] for i in range(size)]
                    ok = await self._post_credits(
                        conn, self.admin, members, f"seed-{self.run}-cr-{first}-", "bench credit"
                    )
                    if ok != size:
                        raise RuntimeError(f"seeding credits: {ok} of {size} posted")
                    done += size
                    if progress is not None:
                        progress(done, time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(self.pool.get_max_size())))
        return time.perf_counter() - started


async def _fresh_tokens(conn: Connection, actor: uuid.UUID, request_id: str, members: list[uuid.UUID]) -> list[str]:
    issued = [new_token() for _ in members]
    await conn.execute(
        "select issue_member_token($1, $2, m, h) from unnest($3::uuid[], $4::bytea[]) as t(m, h)",
        actor, request_id, members, [digest for _, digest in issued],
    )  # fmt: skip
    return [token for token, _ in issued]


async def discover(seeder: Seeder) -> tuple[list[Community], Community | None, Statement | None]:
    """The communities an earlier run seeded in this database (kept with --keep-database), with fresh tokens.

    Tokens are stored only as hashes, so new ones are issued for the coordinators and the members
    who act with their own. Returns (volunteer communities, gift community, statement).
    """
    async with seeder.pool.acquire() as conn:
        prefix = await conn.fetchval(
            "select substring(slug from '^bench-[0-9a-f]{8}-') from communities"
            " where slug ~ '^bench-[0-9a-f]{8}-' order by created_at desc limit 1"
        )
        if prefix is None:
            raise RuntimeError("this database has no communities seeded by the benchmark")
        found = await conn.fetch("select id, slug from communities where slug like $1 || '%' order by slug", prefix)
        communities: list[Community] = []
        gifts: Community | None = None
        statement: Statement | None = None
        for row in found:
            if row["slug"][len(prefix) :] == "report":
                continue  # workload g's community: discover_report
            members = await conn.fetch(
                "select m.id, a.id as account_id, 'coordinator' = any(m.roles) as coordinator"
                "  from members m join accounts a on a.member_id = m.id where m.community_id = $1 order by m.seq",
                row["id"],
            )
            coordinator = next(m["id"] for m in members if m["coordinator"])
            [token] = await _fresh_tokens(conn, seeder.admin, seeder.request_id, [coordinator])
            principal = await conn.fetchval("select id from principals where member_id = $1", coordinator)
            community = Community(row["slug"], row["id"], principal, token)
            community.members = [Member(m["id"], m["account_id"]) for m in members if not m["coordinator"]]
            name = row["slug"][len(prefix) :]
            if name in ("gifts", "statement"):
                community.tokens = await _fresh_tokens(
                    conn, seeder.admin, seeder.request_id, [m.id for m in community.members]
                )
            if name == "gifts":
                gifts = community
            elif name == "statement":
                member = community.members[0]
                entries = await conn.fetchval("select version from accounts where id = $1", member.account_id)
                statement = Statement(member, community.tokens[0], entries, 0.0)
            else:
                communities.append(community)
    return communities, gifts, statement


@dataclass(frozen=True)
class ReportHistory:
    """The community with a long history for the monthly report (workload g)."""

    slug: str
    coordinator_token: str
    entries: int
    month: str  # the month measured, YYYY-MM
    months: int
    seconds: float


REPORT_GRIDS = 22
REPORT_MEMBERS = 1000
REPORT_ZONE = "Asia/Shanghai"


class ReportSeeder:
    """A community of REPORT_MEMBERS members in REPORT_GRIDS grids with `entries` entries of every
    everyday kind, spread evenly over `months` calendar months that end before the current one.

    The community, its members and its coordinator are made by the real operations; the history is
    written by SQL in one database transaction (bench/history.py): the rows the operations would
    write, a million entries in about a minute instead of 25 through the operations one by one.
    """

    def __init__(self, seeder: Seeder) -> None:
        self.seeder = seeder

    async def seed(
        self, entries: int, months: int, progress: Callable[[int, float], None] | None = None
    ) -> ReportHistory:
        s = self.seeder
        started = time.perf_counter()
        community = await s.community("report", 0)
        async with s.pool.acquire() as conn:
            ids = await conn.fetch(
                "select create_member($1, $2, $3, 'r' || g, array['volunteer', 'resident'], ((g % $5) + 1)::text,"
                " null, null, null) as id from generate_series(1, $4) g",
                s.admin, s.request_id, community.slug, REPORT_MEMBERS, REPORT_GRIDS,
            )  # fmt: skip
            rows = await conn.fetch(
                "select member_id, id from accounts where member_id = any($1::uuid[])", [r["id"] for r in ids]
            )
            accounts = {r["member_id"]: r["id"] for r in rows}
            members = [r["id"] for r in ids]
            system = {
                r["kind"]: r["id"]
                for r in await conn.fetch(
                    "select kind, id from accounts where community_id = $1 and member_id is null", community.id
                )
            }
        owner = await asyncpg.connect(s.owner_url, server_settings={"search_path": "timebank"})
        try:
            start, end, middle = await _months(owner, months)
            # The members joined the day before their history begins (seeding only: the owner, triggers off).
            async with owner.transaction():
                await owner.execute("set local session_replication_role = replica")
                await owner.execute(
                    "update members set created_at = $2::timestamptz - interval '1 day' where community_id = $1",
                    community.id, start,
                )  # fmt: skip
            plan = HistoryPlan(
                community.id, community.coordinator, s.request_id, (entries + 1) // 2, start, end, members,
                [accounts[m] for m in members], system["issuance"], system["pool"], system["services"], REPORT_ZONE,
            )  # fmt: skip
            written = await write_history(owner, plan)
        finally:
            await owner.close()
        if progress is not None:
            progress(written, time.perf_counter() - started)
        return ReportHistory(community.slug, community.coordinator_token, written, middle, months,
                             time.perf_counter() - started)  # fmt: skip


async def _months(conn: asyncpg.Connection, months: int) -> tuple[datetime, datetime, str]:
    """The `months` calendar months before the current one (in REPORT_ZONE): start, end, the middle one's name."""
    bounds = await conn.fetchrow(
        """
        select (m - make_interval(months => $1::integer))::timestamp at time zone $2::text,
               m::timestamp at time zone $2,
               to_char(m - make_interval(months => $1::integer - $1::integer / 2), 'YYYY-MM')
          from (select date_trunc('month', now() at time zone $2) as m) n
        """,
        months, REPORT_ZONE,
    )  # fmt: skip
    assert bounds is not None
    return bounds[0], bounds[1], str(bounds[2])


async def discover_report(seeder: Seeder) -> ReportHistory | None:
    """Workload g's community from an earlier run (--keep-database), with a fresh coordinator token."""
    async with seeder.pool.acquire() as conn:
        row = await conn.fetchrow(
            "select id, slug from communities where slug ~ '^bench-[0-9a-f]{8}-report$'"
            " order by created_at desc limit 1"
        )
        if row is None:
            return None
        coordinator = await conn.fetchval(
            "select id from members where community_id = $1 and 'coordinator' = any(roles)", row["id"]
        )
        [token] = await _fresh_tokens(conn, seeder.admin, seeder.request_id, [coordinator])
        span = await conn.fetchrow(
            """
            select count(*) as transactions,
                   (extract(year from age(max(created_at), min(created_at))) * 12
                    + extract(month from age(max(created_at), min(created_at))) + 1)::integer as months,
                   to_char(min(created_at) + (max(created_at) - min(created_at)) / 2 at time zone $2, 'YYYY-MM')
                       as middle
              from transactions where community_id = $1
            """,
            row["id"],
            REPORT_ZONE,
        )
    assert span is not None
    return ReportHistory(row["slug"], token, span["transactions"] * 2, span["middle"], span["months"], 0.0)
