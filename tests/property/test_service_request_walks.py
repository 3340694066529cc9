"""Random walks over the service request state machine, with several actors.

A Hypothesis RuleBasedStateMachine drives one community through the SQL operations, as the
service role calls them: two residents ask (own, community and pool funding), two volunteers claim
and withdraw, a coordinator assigns, settles disputes with other minutes and cancels, anyone tries
steps they may not take, successful steps are replayed with their key, and the jobs run after
time is moved (a report aged 8 days, a hold expired). A model predicts each answer: the step's new
status, or the refusal's code. After every step the database must agree with the model (every
request's status, who provides it, the minutes it moved), every completed request must have
exactly one transaction, and everything `timebank verify` checks must hold.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.sql.support import Community, Ledger, Member, Result, app_connect, owner_connect
from timebank.ledger.verify import verify

FUNDS = 300  # each resident's hours at the start
POOL = 180
UNIT = 15
OPEN, ASSIGNED, IN_PROGRESS, REPORTED, DISPUTED, COMPLETED, CANCELLED = (
    "open", "assigned", "in_progress", "reported", "disputed", "completed", "cancelled",
)  # fmt: skip


@dataclass
class Request:
    id: uuid.UUID
    member: int  # index of the resident served
    funding: str
    minutes: int
    creator: str  # actor name
    status: str = OPEN
    provider: int | None = None  # index of the volunteer
    reported: int | None = None
    paid: int | None = None  # minutes moved on completion
    hold_expired: bool = False


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    conn: asyncpg.Connection
    owner: asyncpg.Connection
    community: Community
    residents: list[Member]
    volunteers: list[Member]
    coordinator: Member
    ledgers: dict[str, Ledger] = field(default_factory=dict)

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)


async def _call(
    ledger: Ledger, function: str, *args: Any, key: str | None = None, digest: bytes | None = None
) -> tuple[str, Result | None]:
    try:
        return "ok", await ledger.call(function, *args, key=key, digest=digest)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate != "TB000":  # a rule's refusal is expected; anything else is a failure
            raise
        return str(exc.detail), None


class ServiceRequestWalk(RuleBasedStateMachine):
    world: World

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self.available = [FUNDS, FUNDS]
        self.pool_available = POOL
        self.earned = [0, 0]
        self.replayable: list[tuple[str, str, tuple[Any, ...], str, bytes, Result]] = []
        # Set by `advance`: the request the next step is about.
        self.target: Request | None = None

    @initialize()
    def community(self) -> None:
        world = WORLD
        admin = world.run(Ledger.with_new_admin(world.conn, DATABASE))
        community = world.run(admin.community())
        residents = [world.run(admin.member(community, "resident")) for _ in range(2)]
        volunteers = [world.run(admin.member(community, "volunteer")) for _ in range(2)]
        coordinator = world.run(admin.member(community, "coordinator"))
        donor = world.run(admin.member(community, "volunteer"))
        world.run(admin.credit(donor, 2 * FUNDS + POOL))
        for resident in residents:
            world.run(admin.gift(donor, resident, FUNDS))
        world.run(admin.donate(donor, POOL))
        self.world = World(world.loop, world.conn, world.owner, community, residents, volunteers, coordinator)
        for name, member in self.actors().items():
            self.world.ledgers[name] = admin.acting_as(member.principal_id)

    def actors(self) -> dict[str, Member]:
        w = self.world
        return {
            "r0": w.residents[0],
            "r1": w.residents[1],
            "v0": w.volunteers[0],
            "v1": w.volunteers[1],
            "c": w.coordinator,
        }

    def step(self, actor: str, function: str, *args: Any) -> tuple[str, Result | None]:
        key, digest = uuid.uuid4().hex, os.urandom(32)
        code, result = self.world.run(_call(self.world.ledgers[actor], function, *args, key=key, digest=digest))
        event(f"{function}: {code}")
        if result is not None:
            self.replayable.append((actor, function, args, key, digest, result))
        return code, result

    def pick(self, index: int, *preferred: str) -> Request:
        """Mostly a request in a status where the step applies (so walks go deep); sometimes any."""
        if self.target is not None:
            return self.target
        fitting = [r for r in self.requests if r.status in preferred]
        among = fitting if fitting and index % 5 else self.requests
        return among[index % len(among)]

    # --- the model's rules: who may take which step from which status -----------------------------

    @staticmethod
    def member_index(actor: str) -> int | None:
        return int(actor[1]) if actor[0] in "rv" else None

    def served(self, actor: str, request: Request) -> bool:
        return actor == f"r{request.member}"

    def who(self, role: str, request: Request) -> str:
        """An actor by its part in the request: the provider (or v0 when none), the member served,
        the coordinator, or someone with no part in it."""
        if role == "provider":
            return f"v{request.provider}" if request.provider is not None else "v0"
        if role == "served":
            return f"r{request.member}"
        if role == "stranger":
            return f"r{1 - request.member}"
        return role

    def providing(self, actor: str, request: Request) -> bool:
        return request.provider is not None and actor == f"v{request.provider}"

    # --- rules --------------------------------------------------------------------------------------

    @rule(
        asker=st.sampled_from(["r0", "r1", "c"]),
        member=st.integers(0, 1),
        funding=st.sampled_from(["own", "own", "community", "pool"]),
        units=st.integers(1, 6),
    )
    def ask(self, asker: str, member: int, funding: str, units: int) -> None:
        if asker != "c":
            member = int(asker[1])
        minutes = units * UNIT
        code, result = self.step(asker, "create_service_request", self.world.residents[member].id, "meals", minutes,
                                 dt.datetime.now(dt.UTC) + dt.timedelta(hours=3), funding, "")  # fmt: skip
        if asker != "c" and funding != "own":
            expected = "forbidden"
        elif (funding == "own" and self.available[member] < minutes) or (
            funding == "pool" and self.pool_available < minutes
        ):
            expected = "insufficient_balance"
        else:
            expected = "ok"
        assert code == expected, (asker, funding, minutes, code)
        if result is not None:
            self.requests.append(Request(uuid.UUID(result.body["id"]), member, funding, minutes, asker))
            self.hold(self.requests[-1], minutes)

    def hold(self, request: Request, minutes: int) -> None:
        if request.funding == "own":
            self.available[request.member] -= minutes
        elif request.funding == "pool":
            self.pool_available -= minutes

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, 50), actor=st.sampled_from(["v0", "v1", "c", "r0"]), provider=st.integers(0, 1))
    def assign(self, index: int, actor: str, provider: int) -> None:
        request = self.pick(index, OPEN)
        if actor == "c":
            code, _ = self.step(actor, "assign_service_request", request.id, self.world.volunteers[provider].id)
        else:
            code, _ = self.step(actor, "assign_service_request", request.id, None)
            provider = int(actor[1])
        if actor.startswith("r"):
            expected = "not_a_volunteer"
        elif request.status != OPEN or request.hold_expired:
            expected = "invalid_transition"
        else:
            expected = "ok"
        assert code == expected, (actor, request, code)
        if code == "ok":
            request.status, request.provider = ASSIGNED, provider

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, 50), role=st.sampled_from(["provider", "provider", "c", "v1", "stranger"]))
    def check_in(self, index: int, role: str) -> None:
        request = self.pick(index, ASSIGNED)
        actor = self.who(role, request)
        code, _ = self.step(actor, "check_in_service_request", request.id)
        if not (actor == "c" or self.providing(actor, request)):
            expected = "forbidden"
        elif request.status != ASSIGNED or request.hold_expired:
            expected = "invalid_transition"
        else:
            expected = "ok"
        assert code == expected, (actor, request, code)
        if code == "ok":
            request.status = IN_PROGRESS

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, 50), role=st.sampled_from(["provider", "provider", "c", "v1"]), units=st.integers(1, 7))
    def report(self, index: int, role: str, units: int) -> None:
        request = self.pick(index, IN_PROGRESS)
        actor = self.who(role, request)
        code, _ = self.step(actor, "report_service_request", request.id, units * UNIT)
        if not (actor == "c" or self.providing(actor, request)):
            expected = "forbidden"
        elif request.status != IN_PROGRESS:
            expected = "invalid_transition"
        elif request.funding != "community" and units * UNIT > request.minutes:
            expected = "capture_exceeds_hold"
        else:
            expected = "ok"
        assert code == expected, (actor, request, code)
        if code == "ok":
            request.status, request.reported = REPORTED, units * UNIT

    @precondition(lambda self: self.requests)
    @rule(
        index=st.integers(0, 50),
        role=st.sampled_from(["served", "served", "c", "stranger", "provider"]),
        units=st.none() | st.none() | st.integers(1, 7),
    )
    def confirm(self, index: int, role: str, units: int | None) -> None:
        request = self.pick(index, REPORTED, DISPUTED)
        actor = self.who(role, request)
        minutes = None if units is None else units * UNIT
        code, _ = self.step(actor, "confirm_service_request", request.id, 4, None, minutes)
        staff = actor == "c"
        paid = minutes if minutes is not None else request.reported
        if (
            not (staff or self.served(actor, request))
            or (minutes is not None and not staff)
            or (request.status == DISPUTED and not staff)
        ):
            expected = "forbidden"
        elif request.status not in (REPORTED, DISPUTED):
            expected = "invalid_transition"
        elif request.funding != "community" and paid is not None and paid > request.minutes:
            expected = "capture_exceeds_hold"
        else:
            expected = "ok"
        assert code == expected, (actor, request, minutes, code)
        if code == "ok":
            assert paid is not None
            self.complete(request, paid)

    def complete(self, request: Request, paid: int) -> None:
        request.status, request.paid = COMPLETED, paid
        assert request.provider is not None
        self.earned[request.provider] += paid
        # The hold is captured: the rest of it is released.
        if request.funding == "own":
            self.available[request.member] += request.minutes - paid
        elif request.funding == "pool":
            self.pool_available += request.minutes - paid

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, 50), role=st.sampled_from(["served", "c", "stranger"]))
    def dispute(self, index: int, role: str) -> None:
        request = self.pick(index, REPORTED)
        actor = self.who(role, request)
        code, _ = self.step(actor, "dispute_service_request", request.id, "不对")
        if not (actor == "c" or self.served(actor, request)):
            expected = "forbidden"
        elif request.status != REPORTED:
            expected = "invalid_transition"
        else:
            expected = "ok"
        assert code == expected, (actor, request, code)
        if code == "ok":
            request.status = DISPUTED

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, 50), role=st.sampled_from(["served", "c", "stranger", "provider", "v1"]))
    def cancel(self, index: int, role: str) -> None:
        request = self.pick(index, OPEN, ASSIGNED, IN_PROGRESS, DISPUTED)
        actor = self.who(role, request)
        code, _ = self.step(actor, "cancel_service_request", request.id, "取消")
        staff = actor == "c"
        if self.providing(actor, request):
            expected = "ok" if request.status in (ASSIGNED, IN_PROGRESS) else "invalid_transition"
            assert code == expected, (actor, request, code)
            if code == "ok":
                request.status, request.provider = OPEN, None
            return
        if not (staff or self.served(actor, request) or actor == request.creator) or (
            request.status == DISPUTED and not staff
        ):
            expected = "forbidden"
        elif request.status not in (OPEN, ASSIGNED, IN_PROGRESS, DISPUTED):
            expected = "invalid_transition"
        else:
            expected = "ok"
        assert code == expected, (actor, request, code)
        if code == "ok":
            self.cancelled(request)

    def cancelled(self, request: Request) -> None:
        request.status = CANCELLED
        if request.funding == "own":
            self.available[request.member] += request.minutes
        elif request.funding == "pool":
            self.pool_available += request.minutes

    @precondition(lambda self: any(r.status in (OPEN, ASSIGNED, IN_PROGRESS, REPORTED) for r in self.requests))
    @rule(index=st.integers(0, 50), units=st.integers(1, 6), volunteer=st.sampled_from(["v0", "v1"]))
    def advance(self, index: int, units: int, volunteer: str) -> None:
        """The next step of a request under way, taken by whoever would take it: so walks reach the end."""
        self.target = self.pick(index, OPEN, ASSIGNED, IN_PROGRESS, REPORTED)
        try:
            status = self.target.status
            if status == OPEN:
                self.assign(0, volunteer, 0)
            elif status == ASSIGNED:
                self.check_in(0, "provider")
            elif status == IN_PROGRESS:
                self.report(0, "provider", min(units, self.target.minutes // UNIT))
            else:
                self.confirm(0, "served", None)
        finally:
            self.target = None

    @precondition(lambda self: self.replayable)
    @rule(index=st.integers(0, 200))
    def replay(self, index: int) -> None:
        actor, function, args, key, digest, first = self.replayable[index % len(self.replayable)]
        code, again = self.world.run(_call(self.world.ledgers[actor], function, *args, key=key, digest=digest))
        assert code == "ok"
        assert again is not None
        assert again.replayed
        assert (again.status_code, again.body) == (first.status_code, first.body)

    @precondition(lambda self: self.requests)
    @rule(index=st.integers(0, 50))
    def time_passes(self, index: int) -> None:
        """A week after a report, or past a hold's expiry: then the jobs run, as cron would."""
        request = self.pick(index, REPORTED)
        w = self.world
        if request.status == REPORTED:
            w.run(w.owner.execute(
                "update service_requests set checked_out_at = now() - interval '8 days' where id = $1", request.id
            ))  # fmt: skip
        elif request.status in (OPEN, ASSIGNED) and request.funding != "community":
            w.run(expire_hold(w.owner, request.id))
            request.hold_expired = True
        else:
            return
        run = "job-walk-" + uuid.uuid4().hex
        w.run(w.conn.fetchval("select expire_service_requests($1, 1000)", run))
        w.run(w.conn.fetchval("select auto_confirm_service_requests($1, 1000)", run))
        for other in self.requests:
            if other.status in (OPEN, ASSIGNED) and other.hold_expired:
                self.cancelled(other)
            elif other is request and other.status == REPORTED:
                assert other.reported is not None
                self.complete(other, other.reported)

    # --- what must hold after every step ------------------------------------------------------------

    @invariant()
    def database_agrees(self) -> None:
        if not hasattr(self, "world"):
            return
        w = self.world
        rows = {
            r["id"]: r
            for r in w.run(
                w.owner.fetch(
                    "select r.id, r.status, r.provider_member_id, r.transaction_id,"
                    "       (select count(*) from transactions t where t.service_request_id = r.id) as paid_by,"
                    "       (select max(p.minutes) from postings p where p.transaction_id = r.transaction_id) as paid"
                    "  from service_requests r where r.community_id = $1",
                    w.community.id,
                )
            )
        }
        assert len(rows) == len(self.requests)
        for request in self.requests:
            row = rows[request.id]
            assert row["status"] == request.status, request
            provider = None if request.provider is None else w.volunteers[request.provider].id
            if request.status != CANCELLED:
                assert row["provider_member_id"] == provider, request
            assert row["paid_by"] == (1 if request.status == COMPLETED else 0), request
            assert row["paid"] == request.paid, request
        for i, volunteer in enumerate(w.volunteers):
            assert (
                w.run(w.conn.fetchval("select balance_minutes from accounts where id = $1", volunteer.account_id))
                == (self.earned[i])
            )
        for i, resident in enumerate(w.residents):
            available = w.run(w.conn.fetchval(
                "select balance_minutes - _held_minutes(id) from accounts where id = $1", resident.account_id
            ))  # fmt: skip
            assert available == self.available[i]
        pool = w.run(
            w.conn.fetchval("select balance_minutes - _held_minutes(id) from accounts where id = $1", w.community.pool)
        )
        assert pool == self.pool_available
        report = w.run(verify(w.owner, w.community.id))
        assert report.ok, "\n".join(f"{n}: {m}" for n, m in report.violations)


async def expire_hold(owner: asyncpg.Connection, request_id: uuid.UUID) -> None:
    async with owner.transaction():
        await owner.execute("set local session_replication_role = replica")
        await owner.execute(
            "update holds set expires_at = now() - interval '1 second'"
            " where id = (select hold_id from service_requests where id = $1)",
            request_id,
        )


WORLD: World
DATABASE: str


def test_random_walks_keep_every_request_and_the_ledger_consistent(database: str) -> None:
    global WORLD, DATABASE  # noqa: PLW0603 -- the machine's class is built by Hypothesis, without arguments.
    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(app_connect(database))
        owner = loop.run_until_complete(owner_connect(database))
        DATABASE = database
        WORLD = World(loop, conn, owner, None, [], [], None)  # type: ignore[arg-type]
        try:
            run_state_machine_as_test(
                ServiceRequestWalk,
                settings=settings(
                    max_examples=int(os.environ.get("TIMEBANK_WALKS", "15")),
                    stateful_step_count=50,
                    deadline=None,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                ),
            )
        finally:
            loop.run_until_complete(conn.close())
            loop.run_until_complete(owner.close())
    finally:
        loop.close()


# Slow: started first (tests/conftest.py), so the workers finish together.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]
