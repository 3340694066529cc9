# ruff: noqa: E501, PLW2901
"""`timebank demo`: 紫轩社区, a sample community of 22 grids with four months of life.

The people and what happens to them are in timebank/demo_story.py. Everything is played through the
SQL operations the HTTP endpoints call, as the service role, each write with its own Idempotency-Key
(`demo-r17-5-confirm`, ...): service requests through their whole state machine, the system jobs,
credit batches, gifts, donations, pool grants, holds, a reversal. So the ledger, the audit trail and
`timebank verify` see exactly what real use makes.

Back-dating. Those operations stamp the moment they run (clock_timestamp()), and the monthly report
places hours by when their transaction was made, so four months of life played in a few seconds
would all land in today. The load therefore runs in one database transaction and notes, for each
step, the database clock before it (read in the same round trip as the previous write) and the
story's moment of the step; before committing, the owner connection moves every timestamp the load
wrote (created_at, updated_at, checked_in_at, audit `at` with its content hash recomputed, ...) of
the demo community's rows from the real moment to the story's, with the append-only triggers
disabled inside that same transaction (other sessions wait on the table lock for that second and
never see them off). Moments keep their order, so each account's postings keep the order of their
versions, and no balance or amount is touched: `timebank verify` stays clean. Moments planned ahead
(a request's scheduled_at, a hold's expires_at) move with the step that planned them. The details
of audit events still hold the planned moments as the operation saw them. The two system jobs run
as the server runs them, over the whole database (any other request that is due is stepped too).
A database whose public log has signed checkpoints is refused: a back-dated transaction logged
after a checkpoint is exactly what `timebank verify --checkpoints` must flag.

A community `zixuan` that already exists means the demo is loaded; a second run adds nothing,
issues fresh tokens and sets fresh demo PINs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from timebank import demo_story
from timebank.auth.bootstrap import create_principal
from timebank.auth.tokens import new_token
from timebank.config import Settings
from timebank.db import connect_kwargs
from timebank.demo_story import AUDITOR, COORDINATOR, RESIDENT, TEEN, VOLUNTEER, Story
from timebank.ledger.verify import Report, verify
from timebank.members.pins import hash_pin

SLUG = "zixuan"
NAME = "紫轩社区"
UNIT_MINUTES = 15
MAX_TRANSACTION_MINUTES = 1440
MAX_BALANCE_MINUTES = 90_000
OVERDRAFT_MINUTES = 0
VOLUNTEER_MIN_AGE = 18
REDEEM_MIN_AGE = 60

# Who gets a fresh token and PIN in the summary, and how to introduce them.
SIGN_IN: tuple[tuple[str, str], ...] = (
    ("resident", RESIDENT),
    ("volunteer", VOLUNTEER),
    ("coordinator", COORDINATOR),
    ("auditor", AUDITOR),
)


class DemoError(RuntimeError):
    """The demo could not be loaded, or the ledger failed verification afterwards."""


def _request_hash(function: str, key: str, args: Sequence[object]) -> bytes:
    """A stable hash of one call, standing in for the HTTP layer's hash of the request body."""
    return hashlib.sha256(json.dumps([function, key, *map(str, args)], ensure_ascii=False).encode()).digest()


# The columns the load writes with the clock, table by table, and which of the table's rows are the
# demo community's ($1). Each is moved from the real moment to the story's.
_STAMPED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("communities", ("created_at",), "id = $1"),
    ("members", ("created_at",), "community_id = $1"),
    ("principals", ("created_at",), "member_id in (select id from members where community_id = $1)"),
    ("accounts", ("updated_at",), "community_id = $1"),
    ("service_types", ("created_at", "updated_at"), "community_id = $1"),
    ("relatives", ("since",), "member_id in (select id from members where community_id = $1)"),
    ("credit_batches", ("created_at",), "community_id = $1"),
    ("postings", ("created_at",), "account_id in (select id from accounts where community_id = $1)"),
    ("hold_resolutions", ("resolved_at",), "hold_id in (select id from holds where community_id = $1)"),
)
_APPEND_ONLY = ("transactions", "postings", "holds", "hold_resolutions", "audit_events", "credit_batches")


class Loader:
    """Plays the story on one connection, remembering the ids it created."""

    def __init__(self, conn: asyncpg.Connection, request_id: str, database_url: str, story: Story) -> None:
        self.conn = conn
        self.database_url = database_url
        self.request_id = request_id
        self.story = story
        self.people = {p.name: p for p in story.people}
        self.admin: uuid.UUID | None = None
        self.members: dict[str, uuid.UUID] = {}
        self.principals: dict[str, uuid.UUID] = {}
        self.requests: dict[str, uuid.UUID] = {}
        self.credits: dict[str, uuid.UUID] = {}
        # (database clock, story moment): what is stamped after that clock belongs to that moment.
        self.marks: list[tuple[datetime, datetime]] = []
        self.clock: datetime | None = None  # the database clock after the last write
        self.started: datetime | None = None  # the transaction's now()
        self.community: uuid.UUID | None = None
        self.step_count: dict[str, int] = {}

    # -- calling the operations ------------------------------------------------------------------

    async def move(self, function: str, actor: uuid.UUID, key: str, *args: object) -> dict[str, Any]:
        """Call an Idempotency-Keyed operation as `actor`; returns its body."""
        placeholders = "".join(f", ${i}" for i in range(5, 5 + len(args)))
        # The clock is read after the operation (the subquery is a fence), in the same round trip.
        row = await self.conn.fetchrow(
            f"select s.status_code, s.body, clock_timestamp() as done"
            f" from (select * from {function}($1, $2, $3, $4{placeholders}) offset 0) s",
            actor,
            self.request_id,
            "demo-" + key,
            _request_hash(function, key, args),
            *args,
        )
        if row is None or row["status_code"] not in (200, 201):
            raise DemoError(f"{function} ({key}) answered {row and row['status_code']}")
        self.clock = row["done"]
        body: dict[str, Any] = json.loads(row["body"])
        return body

    def mark(self, at: datetime) -> None:
        """Note that what follows happens, in the story, at `at`."""
        assert self.clock is not None
        self.marks.append((self.clock, at))

    async def stamped(self, call: str, *args: object) -> Any:
        """The value of a call that writes (not keyed by an Idempotency-Key), noting the clock after it."""
        row = await self.conn.fetchrow(
            f"select s.v, clock_timestamp() as done from (select {call} as v offset 0) s", *args
        )
        assert row is not None
        self.clock = row["done"]
        return row["v"]

    def planned(self, at: datetime, planned: datetime) -> datetime:
        """A moment planned at story moment `at`, as the operation must see it (from the real now)."""
        assert self.started is not None
        return self.started + (planned - at)

    async def available(self, member: str | None) -> int:
        """Minutes a member (or, for None, the pool) can spend now."""
        if member is None:
            row = await self.conn.fetchval(
                "select balance_minutes - held_minutes from accounts where community_id = $1 and kind = 'pool'",
                self.community,
            )
        else:
            row = await self.conn.fetchval(
                "select balance_minutes - held_minutes from accounts where member_id = $1", self.members[member]
            )
        return int(row)

    async def richest_resident(self, minutes: int) -> str:
        """Another of the story's residents who has the hours by then."""
        name: str | None = await self.conn.fetchval(
            "select m.display_name from members m join accounts a on a.member_id = m.id"
            " where m.community_id = $1 and m.roles = array['resident'] and a.balance_minutes - a.held_minutes >= $2"
            " order by a.balance_minutes - a.held_minutes desc, m.seq limit 1",
            self.community,
            minutes,
        )
        if name is None:
            raise DemoError(f"no resident of the demo has {minutes} minutes to spend")
        return name

    def actor_for(self, name: str) -> uuid.UUID:
        """A member acts for itself when it has a phone; the coordinator acts for one without."""
        return self.principals[name] if self.people[name].phone else self.principals[COORDINATOR]

    # -- the load ----------------------------------------------------------------------------------

    async def load(self) -> None:
        moments = await self.conn.fetchrow("select now() as started, clock_timestamp() as clock")
        assert moments is not None
        self.started, self.clock = moments["started"], moments["clock"]
        self.mark(demo_story._at(self.story.months[0], 8))
        await self.create_community()
        await self.register_members()
        steps: list[tuple[datetime, int, str, Any, dict[str, Any]]] = []
        for n, (at, kind, args) in enumerate(self.story.events):
            steps.append((at, n, kind, None, args))
        for request in self.story.requests:
            steps.append((request.created, len(steps), "create", request, {}))
            for at, kind, args in request.steps:
                steps.append((at, len(steps), kind, request, args))
        steps.sort(key=lambda step: (step[0], step[1]))
        jobs = [step for step in steps if step[2] in ("auto_confirm", "expire")]
        last = self.marks[-1][1]
        for at, _, kind, request, args in steps:
            if kind in ("auto_confirm", "expire"):
                continue
            at = max(last + timedelta(seconds=1), at)
            last = at
            self.mark(at)
            await getattr(self, "step_" + kind)(at, request, args)
        await self.run_jobs(jobs)
        self.mark(self.story.now)  # the end of the story: later stamps stay as they are
        await self.back_date()

    async def create_community(self) -> None:
        # Only an admin may create a community and appoint its staff. Its token is thrown away:
        # `timebank token create --admin` makes one for a person to use.
        token, _ = new_token()
        self.admin = await create_principal(self.database_url, "admin", None, token)
        self.community = await self.stamped(
            "create_community($1, $2, $3, $4, null, $5, $6, $7, $8, 'Asia/Shanghai', $9, $10, 'relatives', true)",
            self.admin,
            self.request_id,
            SLUG,
            NAME,
            UNIT_MINUTES,
            MAX_TRANSACTION_MINUTES,
            MAX_BALANCE_MINUTES,
            OVERDRAFT_MINUTES,
            VOLUNTEER_MIN_AGE,
            REDEEM_MIN_AGE,
        )

    async def register_members(self) -> None:
        # The admin appoints the staff; the coordinator registers everyone else, members over 80
        # are marked eligible for the pool's hours (with the reason, as PATCH /v1/members asks).
        first = demo_story._at(self.story.months[0], 8, 30)
        for n, person in enumerate(self.story.people):
            self.mark(first + timedelta(minutes=n))
            staff = not set(person.roles) <= {"volunteer", "resident"}
            member_id: uuid.UUID = await self.stamped(
                "create_member($1, $2, $3, $4, $5, $6, $7, $8, null)",
                self.admin if staff else self.principals[COORDINATOR],
                self.request_id,
                SLUG,
                person.name,
                list(person.roles),
                person.grid,
                person.birth_date,
                person.phone,
            )
            self.members[person.name] = member_id
            self.principals[person.name] = await self.conn.fetchval(
                "select id from principals where member_id = $1", member_id
            )
            if person.pool_eligible:
                await self.move(
                    "update_member",
                    self.principals[COORDINATOR],
                    f"pool-eligible-{n}",
                    member_id,
                    json.dumps({"pool_eligible": True}),
                    "80岁以上，经网格员走访核实，可使用公益时间池",
                )

    # -- the story's steps ---------------------------------------------------------------------------

    async def step_relative(self, at: datetime, _: Any, args: dict[str, Any]) -> None:
        await self.move(
            "add_relative",
            self.principals[COORDINATOR],
            f"relative-{args['child']}",
            self.members[args["child"]],
            self.members[args["parent"]],
            "parent",
        )

    async def step_gift(self, at: datetime, _: Any, args: dict[str, Any]) -> None:
        minutes = min(args["minutes"], await self.available(args["from"])) // UNIT_MINUTES * UNIT_MINUTES
        if minutes > 0:
            await self.move(
                "post_transfer",
                self.principals[args["from"]],
                f"gift-{args['from']}-{at:%m%d}-{len(self.marks)}",
                self.members[args["from"]],
                self.members[args["to"]],
                False,
                minutes,
                "给父母的服务时间",
            )

    async def step_donate(self, at: datetime, _: Any, args: dict[str, Any]) -> None:
        if args["from"] is None:  # the volunteer with the most hours to spare
            args = args | {
                "from": await self.conn.fetchval(
                    "select m.display_name from members m join accounts a on a.member_id = m.id"
                    " where m.community_id = $1 and 'volunteer' = any(m.roles)"
                    " order by a.balance_minutes - a.held_minutes desc, m.seq limit 1",
                    self.community,
                )
            }
        minutes = min(args["minutes"], await self.available(args["from"])) // UNIT_MINUTES * UNIT_MINUTES
        if minutes > 0:
            await self.move(
                "post_transfer",
                self.principals[args["from"]],
                f"donation-{args['from']}-{at:%m%d}-{len(self.marks)}",
                self.members[args["from"]],
                None,
                True,
                minutes,
                "捐入公益时间池",
            )

    async def step_grant(self, at: datetime, _: Any, args: dict[str, Any]) -> None:
        minutes = min(args["minutes"], await self.available(None)) // UNIT_MINUTES * UNIT_MINUTES
        if minutes > 0:
            await self.move(
                "post_pool_grant",
                self.principals[COORDINATOR],
                f"pool-grant-{args['to']}-{at:%m%d}-{len(self.marks)}",
                self.members[args["to"]],
                minutes,
                "公益时间池援助：高龄老人",
            )

    async def step_batch(self, at: datetime, _: Any, args: dict[str, Any]) -> None:
        volunteers = args["volunteers"]
        await self.move(
            "post_credit_batch",
            self.principals[COORDINATOR],
            f"batch-{args['day']:%Y%m}",
            SLUG,
            args["day"],
            args["description"],
            [self.members[v] for v in volunteers],
            [120] * len(volunteers),
        )

    async def step_credit(self, at: datetime, _: Any, args: dict[str, Any]) -> None:
        body = await self.move(
            "post_credit",
            self.principals[COORDINATOR],
            f"credit-{args['key']}",
            self.members[args["volunteer"]],
            args["minutes"],
            args["day"],
            args["description"],
        )
        self.credits[args["key"]] = uuid.UUID(body["id"])

    async def step_reverse(self, at: datetime, _: Any, args: dict[str, Any]) -> None:
        await self.move(
            "reverse_transaction",
            self.principals[COORDINATOR],
            f"reversal-{args['key']}",
            self.credits[args["key"]],
            args["reason"],
        )

    async def step_redeem(self, at: datetime, _: Any, args: dict[str, Any]) -> None:
        resident = args["resident"]
        if await self.available(resident) < args["minutes"]:
            resident = await self.richest_resident(args["minutes"])
        await self.move(
            "post_redemption",
            self.actor_for(resident),
            f"redemption-{resident}-{at:%m%d}-{len(self.marks)}",
            self.members[resident],
            args["minutes"],
            args["description"],
            self.members[args["provider"]] if args["provider"] else None,
        )

    async def step_hold(self, at: datetime, _: Any, args: dict[str, Any]) -> None:
        if await self.available(args["resident"]) < args["minutes"]:
            args = args | {"resident": await self.richest_resident(args["minutes"])}
        key = f"hold-{args['outcome']}"
        hold = await self.move(
            "place_hold",
            self.actor_for(args["resident"]),
            key,
            self.members[args["resident"]],
            args["minutes"],
            args["description"],
            self.planned(at, at + timedelta(days=14)),
        )
        hold_id = uuid.UUID(hold["id"])
        if args["outcome"] == "captured":
            self.mark(at + timedelta(minutes=5))
            await self.move(
                "capture_hold",
                self.principals[COORDINATOR],
                f"{key}-capture",
                hold_id,
                None,
                self.members[args["provider"]],
            )
        elif args["outcome"] == "released":
            self.mark(at + timedelta(minutes=5))
            await self.move("release_hold", self.principals[COORDINATOR], f"{key}-release", hold_id)

    # -- service requests --------------------------------------------------------------------------

    async def step_create(self, at: datetime, request: demo_story.Request, _: dict[str, Any]) -> None:
        minutes = demo_story.MINUTES[request.service_type]
        funding = request.funding
        if funding == "pool" and not self.people[request.resident].pool_eligible:
            funding = "own"
        if funding == "own" and await self.available(request.resident) < minutes:
            funding = "pool" if self.people[request.resident].pool_eligible else "community"
        if funding == "pool" and await self.available(None) < minutes:
            funding = "own" if await self.available(request.resident) >= minutes else "community"
        if funding == "community" and any(step[1] == "expire" for step in request.steps):
            raise DemoError(f"neither {request.resident} nor the pool has the hours for request {request.label}")
        actor = self.actor_for(request.resident) if funding == "own" else self.principals[COORDINATOR]
        body = await self.move(
            "create_service_request",
            actor,
            f"{request.label}-create",
            self.members[request.resident],
            request.service_type,
            minutes,
            self.planned(at, request.scheduled),
            funding,
            request.description,
        )
        self.requests[request.label] = uuid.UUID(body["id"])

    async def _step(
        self, function: str, actor: uuid.UUID, request: demo_story.Request, step: str, *args: object
    ) -> None:
        self.step_count[request.label] = n = self.step_count.get(request.label, 0) + 1
        await self.move(function, actor, f"{request.label}-{n}-{step}", self.requests[request.label], *args)

    async def step_assign(self, at: datetime, request: demo_story.Request, args: dict[str, Any]) -> None:
        volunteer = args["volunteer"]
        if args["by"] == "self":
            await self._step("assign_service_request", self.principals[volunteer], request, "claim", None)
        else:
            await self._step(
                "assign_service_request",
                self.principals[COORDINATOR],
                request,
                "assign",
                self.members[volunteer],
            )
        request.provider = volunteer

    async def step_withdraw(self, at: datetime, request: demo_story.Request, args: dict[str, Any]) -> None:
        await self._step(
            "cancel_service_request", self.principals[args["volunteer"]], request, "withdraw", args["reason"]
        )

    async def step_check_in(self, at: datetime, request: demo_story.Request, _: dict[str, Any]) -> None:
        await self._step("check_in_service_request", self.principals[request.provider], request, "check-in")

    async def step_report(self, at: datetime, request: demo_story.Request, args: dict[str, Any]) -> None:
        await self._step(
            "report_service_request", self.principals[request.provider], request, "report", args["minutes"]
        )

    async def step_confirm(self, at: datetime, request: demo_story.Request, args: dict[str, Any]) -> None:
        await self._step(
            "confirm_service_request",
            self.actor_for(request.resident),
            request,
            "confirm",
            args["rating"],
            args["comment"],
            None,
        )

    async def step_dispute(self, at: datetime, request: demo_story.Request, args: dict[str, Any]) -> None:
        await self._step(
            "dispute_service_request", self.actor_for(request.resident), request, "dispute", args["reason"]
        )

    async def step_settle(self, at: datetime, request: demo_story.Request, args: dict[str, Any]) -> None:
        await self._step(
            "confirm_service_request",
            self.principals[COORDINATOR],
            request,
            "settle",
            args["rating"],
            args["comment"],
            args["minutes"],
        )

    async def step_cancel(self, at: datetime, request: demo_story.Request, args: dict[str, Any]) -> None:
        actor = self.principals[COORDINATOR] if args["by"] == "coordinator" else self.actor_for(request.resident)
        await self._step("cancel_service_request", actor, request, "cancel", args["reason"])

    async def run_jobs(self, jobs: list[tuple[datetime, int, str, Any, dict[str, Any]]]) -> None:
        """The two system jobs, on requests whose moment came (set by the owner, back-dated already)."""
        for at, _, kind, request, _args in jobs:
            request_id = self.requests[request.label]
            async with self.as_owner():
                if kind == "expire":
                    expires = request.scheduled + timedelta(days=14)
                    await self.conn.execute("alter table holds disable trigger holds_append_only")
                    await self.conn.execute(
                        "update holds set expires_at = $2 where id = (select hold_id from service_requests where id = $1)",
                        request_id,
                        expires,
                    )
                    await self.conn.execute("alter table holds enable trigger holds_append_only")
                else:
                    reported = next(step for step in request.steps if step[1] == "report")[0]
                    await self.conn.execute(
                        "update service_requests set checked_out_at = $2 where id = $1", request_id, reported
                    )
            self.mark(at)
            function = "expire_service_requests" if kind == "expire" else "auto_confirm_service_requests"
            if await self.stamped(f"{function}($1, 100)", self.request_id) < 1:
                raise DemoError(f"{function} did not step the demo's request {request.label}")

    # -- back-dating -------------------------------------------------------------------------------

    def as_owner(self) -> _Owner:
        return _Owner(self.conn)

    async def back_date(self) -> None:
        """Move every moment the load stamped to its moment in the story (see the module's text)."""
        assert self.started is not None
        async with self.as_owner():
            await self.conn.execute(
                "create temp table demo_clock (real_at timestamptz primary key, story_at timestamptz) on commit drop"
            )
            await self.conn.executemany(
                "insert into demo_clock values ($1, $2) on conflict (real_at) do update set story_at = excluded.story_at",
                self.marks,
            )
            # The latest mark at or before the moment says where its step lies in the story.
            await self.conn.execute(
                """
                create or replace function pg_temp.story_at(p timestamptz) returns timestamptz
                language sql stable as $$
                    select coalesce((select c.story_at + (p - c.real_at) from pg_temp.demo_clock c
                                      where c.real_at <= p and p < (select max(real_at) from pg_temp.demo_clock)
                                      order by c.real_at desc limit 1), p)
                $$
                """
            )
            await self.conn.execute(
                """
                create or replace function pg_temp.story_planned(p timestamptz, p_made timestamptz)
                returns timestamptz language sql stable as $$
                    select date_trunc('minute', p + (pg_temp.story_at(p_made) - p_made) + interval '30 seconds')
                $$
                """
            )
            # The deferred zero-sum checks run now (a table with pending trigger events cannot be altered).
            await self.conn.execute("set constraints all immediate")
            for table in _APPEND_ONLY:
                await self.conn.execute(f"alter table {table} disable trigger {table}_append_only")
            c = self.community
            for table, columns, rows in _STAMPED:
                sets = ", ".join(f"{col} = pg_temp.story_at({col})" for col in columns)
                await self.conn.execute(f"update {table} set {sets} where {rows}", c)
            # Planned moments move with the step that planned them (a past one set for the jobs stays).
            await self.conn.execute(
                """
                update holds set expires_at = case when expires_at > $2 then pg_temp.story_planned(expires_at, created_at)
                                                   else expires_at end,
                                 created_at = pg_temp.story_at(created_at)
                 where community_id = $1
                """,
                c,
                self.started,
            )
            await self.conn.execute(
                """
                update service_requests
                   set scheduled_at = pg_temp.story_planned(scheduled_at, created_at),
                       checked_in_at = pg_temp.story_at(checked_in_at), checked_out_at = pg_temp.story_at(checked_out_at),
                       created_at = pg_temp.story_at(created_at), updated_at = pg_temp.story_at(updated_at)
                 where community_id = $1
                """,
                c,
            )
            # The day a service was done: a request's is the day its provider reported it; what
            # took the day it was made (gifts, grants, holds) takes the story's day.
            await self.conn.execute(
                """
                update transactions t
                   set service_date = coalesce(
                           (select (r.checked_out_at at time zone 'Asia/Shanghai')::date
                              from service_requests r where r.id = t.service_request_id),
                           case when t.kind <> 'credit' and t.service_date = ($2 at time zone 'Asia/Shanghai')::date
                                then (pg_temp.story_at(t.created_at) at time zone 'Asia/Shanghai')::date
                                else t.service_date end),
                       created_at = pg_temp.story_at(t.created_at)
                 where t.community_id = $1
                """,
                c,
                self.started,
            )
            await self.conn.execute(
                """
                update audit_events
                   set at = pg_temp.story_at(at),
                       content_hash = _audit_event_digest(id, pg_temp.story_at(at), actor, on_behalf_of, action,
                                                          subject_type, subject_id, community_id, request_id, details)
                 where community_id = $1
                """,
                c,
            )
            for table in _APPEND_ONLY:
                await self.conn.execute(f"alter table {table} enable trigger {table}_append_only")


class _Owner:
    """Within the load's transaction: act as the connection's own (owner) role for a while."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def __aenter__(self) -> None:
        await self.conn.execute("reset role")

    async def __aexit__(self, *_: object) -> None:
        await self.conn.execute("select set_config('role', current_setting('timebank.demo_role'), true)")


async def _load_once(conn: asyncpg.Connection, settings: Settings, request_id: str, database_url: str) -> bool:
    """Load the demo unless it is there already; True when this run loaded it."""
    if await conn.fetchval("select 1 from communities where slug = $1", SLUG):
        return False
    if await conn.fetchval("select exists (select 1 from log_checkpoints)"):
        raise DemoError(
            "this database's public log already has signed checkpoints; the demo's back-dated history would "
            "(rightly) fail `timebank verify --checkpoints`. Load the demo into a database of its own "
            "(another TIMEBANK_DATABASE_URL, or TIMEBANK_DATA_DIR for the embedded one)."
        )
    story = demo_story.build(await conn.fetchval("select now()"))
    try:
        async with conn.transaction():
            # Played as the service role when the owner may act as it (the operations are the
            # same either way; as that role, nothing the service could not do slips in).
            app = settings.db_app_role
            role = app if await conn.fetchval("select pg_has_role($1, 'member')", app) else "none"
            await conn.execute("select set_config('timebank.demo_role', $1, true)", role)
            await conn.execute("select set_config('role', $1, true)", role)
            await Loader(conn, request_id, database_url, story).load()
            await conn.execute("reset role")
    except asyncpg.UniqueViolationError as exc:
        # Another `timebank demo` created the community meanwhile; its load stands, ours rolled back.
        if exc.constraint_name != "communities_slug_key":
            raise
        return False
    return True


class SignIn(NamedTuple):
    role: str
    name: str
    member_id: uuid.UUID
    member_no: str
    account_id: uuid.UUID
    token: str
    pin: str


async def _issue_sign_ins(conn: asyncpg.Connection, request_id: str) -> list[SignIn]:
    """For each role: a fresh token (issued as the command line) and a fresh PIN (set by the coordinator)."""
    coordinator = await conn.fetchval(
        "select p.id from principals p join members m on m.id = p.member_id join communities c on c.id = m.community_id"
        " where c.slug = $1 and m.display_name = $2",
        SLUG,
        COORDINATOR,
    )
    # Only an admin may set a staff member's PIN: the demo's admin (the first admin) does.
    admin = await conn.fetchval("select id from principals where kind = 'admin' order by created_at limit 1")
    pins = [f"{secrets.randbelow(10**6):06d}" for _ in SIGN_IN]
    hashes = await asyncio.gather(*(hash_pin(pin) for pin in pins))
    issued = []
    for (role, name), pin, pin_hash in zip(SIGN_IN, pins, hashes, strict=True):
        row = await conn.fetchrow(
            """
            select m.id, m.member_no, a.id as account_id
              from members m join communities c on c.id = m.community_id left join accounts a on a.member_id = m.id
             where c.slug = $1 and m.display_name = $2
             order by m.seq limit 1
            """,
            SLUG,
            name,
        )
        if row is None:
            raise DemoError(f"the demo community has no member {name}")
        token, digest = new_token()
        await conn.fetchval("select issue_member_token(null, $1, $2, $3)", request_id, row["id"], digest)
        key = f"demo-pin-{uuid.uuid4().hex}"
        result = await conn.fetchrow(
            "select status_code from set_member_pin($1, $2, $3, $4, $5, $6, false)",
            coordinator if role in ("resident", "volunteer") else admin,
            request_id,
            key,
            hashlib.sha256(key.encode()).digest(),
            row["id"],
            pin_hash,
        )
        if result is None or result["status_code"] not in (200, 201, 204):
            raise DemoError(f"could not set the demo PIN of {name}")
        issued.append(SignIn(role, name, row["id"], row["member_no"], row["account_id"], token, pin))
    return issued


# ---------------------------------------------------------------------------------------------
# The summary printed by `timebank demo`.
# Where `/` sends each role after sign-in (PAGES.md).
HOME_PAGES = {"resident": "/me", "volunteer": "/me", "coordinator": "/staff", "auditor": "/audit"}
# ---------------------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _hours(minutes: int) -> str:
    return f"{minutes} min ({minutes / 60:g} h)"


def _base_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104 (a comparison)
    return f"http://{host}:{settings.port}"


async def _summary(
    conn: asyncpg.Connection, settings: Settings, loaded: bool, sign_ins: list[SignIn], report: Report
) -> str:
    community = await conn.fetchrow("select id, name, unit_minutes from communities where slug = $1", SLUG)
    if community is None:
        raise DemoError(f"no community {SLUG} after loading the demo")
    cid = community["id"]
    people = await conn.fetchrow(
        """
        select count(*) as members, count(distinct grid) as grids,
               count(*) filter (where 'resident' = any(roles)) as residents,
               count(*) filter (where 'resident' = any(roles) and birth_date <= (now() - interval '60 years')::date)
                   as over_60,
               count(*) filter (where 'resident' = any(roles) and birth_date <= (now() - interval '80 years')::date)
                   as over_80,
               count(*) filter (where 'resident' = any(roles) and phone is null) as without_phone,
               count(*) filter (where 'volunteer' = any(roles)) as volunteers
          from members where community_id = $1
        """,
        cid,
    )
    assert people is not None
    statuses = await conn.fetch(
        "select status, count(*) as n from service_requests where community_id = $1 group by status order by status",
        cid,
    )
    kinds = await conn.fetch(
        "select kind, count(*) as n from transactions where community_id = $1 group by kind order by kind", cid
    )
    months = await conn.fetch(
        """
        select to_char(created_at at time zone 'Asia/Shanghai', 'YYYY-MM') as month, count(*) as n
          from transactions where community_id = $1 group by 1 order by 1
        """,
        cid,
    )
    base = _base_url(settings)
    status = "loaded" if loaded else "was already loaded; nothing was added, fresh tokens and PINs were issued"
    lines = [
        f"{community['name']} ({SLUG}) {status}.",
        f"  {people['grids']} grids (网格 1-{people['grids']}), {people['members']} members: "
        f"{people['residents']} residents ({people['over_60']} over 60, {people['over_80']} over 80, "
        f"{people['without_phone']} without a phone, acted for by the coordinator), {people['volunteers']} volunteers "
        f"(one, {TEEN}, under the policy's volunteer_min_age of {VOLUNTEER_MIN_AGE})",
        "  service requests: " + ", ".join(f"{r['status']} {r['n']}" for r in statuses),
        "  transactions: " + ", ".join(f"{k['kind']} {k['n']}" for k in kinds),
        "  by month (Asia/Shanghai): " + ", ".join(f"{m['month']} {m['n']}" for m in months),
        "",
        f"The service: {base} (start it with `timebank serve`); {base}/schema is the API reference.",
        "",
        f"In a browser, open {base}/login and sign in to community {SLUG} with a member number and PIN",
        "(PINs are set afresh on each run); each person lands on their own page:",
        "  role         name      member_no  PIN     lands on",
    ]
    lines.extend(
        f"  {_pad(s.role, 13)}{_pad(s.name, 10)}{_pad(s.member_no, 11)}{_pad(s.pin, 8)}{base}{HOME_PAGES[s.role]}"
        for s in sign_ins
    )
    lines.append("")
    lines.append("Tokens for the API (shown once; only their SHA-256 is stored):")
    lines.extend(f"  {_pad(s.role + ' ' + s.name, 22)}{s.token}" for s in sign_ins)
    lines.append("")
    lines.append(f"Try it (with `timebank serve` running at {base}):")
    by_role = {s.role: s for s in sign_ins}
    for role in ("volunteer", "resident"):
        s = by_role[role]
        lines.append(f'  curl -H "Authorization: Bearer {s.token}" {base}/v1/me')
        lines.append(f'  curl -H "Authorization: Bearer {s.token}" {base}/v1/accounts/{s.account_id}/entries')
    staff = f'  curl -H "Authorization: Bearer {by_role["coordinator"].token}"'
    last_month = months[-2]["month"] if len(months) > 1 else months[-1]["month"]
    lines.append(f'{staff} "{base}/v1/communities/{SLUG}/reports/monthly?month={last_month}"')
    lines.append(f'{staff} "{base}/v1/communities/{SLUG}/service-requests?status=open"')
    lines.append(f'{staff} "{base}/v1/communities/{SLUG}/transactions?kind=reversal"')
    # A write that moves hours: the coordinator credits the volunteer. The key makes a retry safe:
    # sent again, the same request answers the same transaction and moves nothing.
    volunteer = by_role["volunteer"]
    today = await conn.fetchval("select (now() at time zone 'Asia/Shanghai')::date")
    credit = {
        "member_id": str(volunteer.member_id),
        "minutes": 60,
        "service_date": today.isoformat(),
        "description": "助餐",
    }
    lines.append(f"{staff} -H 'Idempotency-Key: try-credit-1' -H 'Content-Type: application/json' \\")
    lines.append(f"       -d '{json.dumps(credit, ensure_ascii=False)}' {base}/v1/credits")
    lines.append("")
    lines.append(f"ledger verified: {len(report.checked)} checks, no violations")
    return "\n".join(lines)


def _owner_kwargs(settings: Settings, database_url: str) -> dict[str, Any]:
    """The owner URL's own role (it back-dates the load; the operations run as the service role)."""
    kwargs = connect_kwargs(settings, database_url)
    kwargs.pop("user", None)
    kwargs.pop("password", None)
    return kwargs


async def load_demo(settings: Settings, database_url: str) -> str:
    """Load the sample community (once), issue fresh tokens and PINs, verify the ledger; return a summary.

    The database must be migrated already (`timebank migrate`, or `timebank serve` at start).
    """
    request_id = "demo-" + uuid.uuid4().hex
    conn = await asyncpg.connect(**_owner_kwargs(settings, database_url))
    try:
        loaded = await _load_once(conn, settings, request_id, database_url)
        sign_ins = await _issue_sign_ins(conn, request_id)
        report = await verify(conn)
        if not report.ok:
            found = "; ".join(f"{name}: {message}" for name, message in report.violations)
            raise DemoError(f"the ledger failed verification: {found}")
        return await _summary(conn, settings, loaded, sign_ins, report)
    finally:
        await conn.close()
